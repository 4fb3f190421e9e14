//! The signing-key lifecycle as a pure function of the stored keys and the clock.
//!
//! ```text
//!  created ──publish_ahead──▶ activates_at ──(newer key activates)──▶ retired ──retention──▶ removed
//!   next (in JWKS, not signing)   current (signing)        retired (in JWKS, not signing)
//! ```
//!
//! - A new key is published `publish_ahead` before it signs, so relying parties that cache
//!   the JWKS (for at most its `max-age`, which must be shorter) already know it.
//! - A key stops signing when a newer key of its algorithm activates (or when retired by
//!   hand) and stays published for `retired_retention`, longer than any token it signed
//!   lives, then it is removed.
//! - Rotation is due `publish_ahead` before the current key reaches `rotation_period`.
//! - Every replica computes the same plan; creation is keyed by `(alg, generation)` under
//!   a unique constraint, so whichever replica inserts first wins and a rotation happens
//!   exactly once.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::Algorithm;

/// Where a key is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Published, not yet signing.
    Next,
    /// Signing (the newest activated key of its algorithm).
    Current,
    /// Published, no longer signing.
    Retired,
}

impl KeyState {
    /// Lower-case name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Next => "next",
            Self::Current => "current",
            Self::Retired => "retired",
        }
    }
}

impl std::str::FromStr for KeyState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "next" => Ok(Self::Next),
            "current" => Ok(Self::Current),
            "retired" => Ok(Self::Retired),
            other => Err(format!("unknown key state {other:?}")),
        }
    }
}

/// A stored signing key. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// RFC 7638 thumbprint.
    pub kid: String,
    /// Signing algorithm.
    pub alg: Algorithm,
    /// Per-algorithm sequence number; unique with `alg`.
    pub generation: i64,
    /// Stored state (kept in line with the times by [`plan`]).
    pub state: KeyState,
    /// Public JWK, JSON.
    pub public_jwk: String,
    /// Private key sealed with the key-encryption key.
    pub private_key: String,
    /// When the key was created.
    pub created_at: i64,
    /// When the key starts (or started) signing.
    pub activates_at: i64,
    /// When the key stopped signing, once known.
    pub retired_at: Option<i64>,
    /// When the key leaves the JWKS and is deleted.
    pub remove_after: Option<i64>,
}

/// The rotation settings, in seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Algorithms that always have a current key.
    pub algorithms: Vec<Algorithm>,
    /// Automatic rotation period; `None` rotates only by hand.
    pub rotation_period: Option<i64>,
    /// How long a new key is published before it signs.
    pub publish_ahead: i64,
    /// How long a retired key stays published.
    pub retired_retention: i64,
}

/// One step towards the state the policy wants at a given time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Generate and store a new key.
    Create {
        /// Algorithm of the new key.
        alg: Algorithm,
        /// Its generation (previous maximum + 1).
        generation: i64,
        /// When it starts signing (now for a first key, later for a rotation).
        activates_at: i64,
    },
    /// Bring a stored key's state and times in line.
    Update {
        /// Which key.
        kid: String,
        /// New state.
        state: KeyState,
        /// New activation time.
        activates_at: i64,
        /// New retirement time.
        retired_at: Option<i64>,
        /// New removal time.
        remove_after: Option<i64>,
    },
    /// Delete a key whose retention has passed.
    Delete {
        /// Which key.
        kid: String,
    },
}

/// What to change at time `now` so that every algorithm of `policy` has exactly one
/// current key, rotations happen on schedule and expired keys go.
pub fn plan(records: &[KeyRecord], policy: &Policy, now: i64) -> Vec<Change> {
    let mut changes = Vec::new();
    let algs: BTreeSet<Algorithm> = records
        .iter()
        .map(|r| r.alg)
        .chain(policy.algorithms.iter().copied())
        .collect();
    for alg in algs {
        let of_alg: Vec<&KeyRecord> = records.iter().filter(|r| r.alg == alg).collect();
        let max_generation = of_alg.iter().map(|r| r.generation).max().unwrap_or(0);
        let mut live = Vec::new();
        for r in &of_alg {
            if r.remove_after.is_some_and(|t| t <= now) {
                changes.push(Change::Delete { kid: r.kid.clone() });
            } else if let Some(retired) = r.retired_at.filter(|t| *t <= now) {
                let remove_after = r.remove_after.unwrap_or(retired + policy.retired_retention);
                push_update(
                    &mut changes,
                    r,
                    KeyState::Retired,
                    r.activates_at,
                    Some(retired),
                    Some(remove_after),
                );
            } else {
                live.push(*r);
            }
        }
        let mut activated: Vec<&KeyRecord> = live
            .iter()
            .copied()
            .filter(|r| r.activates_at <= now)
            .collect();
        activated.sort_by_key(|r| (r.activates_at, r.generation));
        let mut pending: Vec<&KeyRecord> = live
            .iter()
            .copied()
            .filter(|r| r.activates_at > now)
            .collect();
        pending.sort_by_key(|r| (r.activates_at, r.generation));
        let wanted = policy.algorithms.contains(&alg);

        let Some((current, superseded)) = activated.split_last() else {
            if wanted {
                match pending.first() {
                    // No signing key: the next one starts now (it has been published since it
                    // was created).
                    Some(next) => {
                        push_update(&mut changes, next, KeyState::Current, now, None, None)
                    }
                    None => changes.push(Change::Create {
                        alg,
                        generation: max_generation + 1,
                        activates_at: now,
                    }),
                }
            }
            continue;
        };
        for old in superseded {
            let retired = current.activates_at;
            push_update(
                &mut changes,
                old,
                KeyState::Retired,
                old.activates_at,
                Some(retired),
                Some(retired + policy.retired_retention),
            );
        }
        push_update(
            &mut changes,
            current,
            KeyState::Current,
            current.activates_at,
            current.retired_at,
            current.remove_after,
        );
        for next in &pending {
            push_update(
                &mut changes,
                next,
                KeyState::Next,
                next.activates_at,
                next.retired_at,
                next.remove_after,
            );
        }
        if let (true, Some(period), true) = (wanted, policy.rotation_period, pending.is_empty()) {
            let due = current.activates_at + period - policy.publish_ahead;
            if now >= due {
                changes.push(Change::Create {
                    alg,
                    generation: max_generation + 1,
                    activates_at: (now + policy.publish_ahead).max(current.activates_at + period),
                });
            }
        }
    }
    changes
}

fn push_update(
    changes: &mut Vec<Change>,
    r: &KeyRecord,
    state: KeyState,
    activates_at: i64,
    retired_at: Option<i64>,
    remove_after: Option<i64>,
) {
    if r.state != state
        || r.activates_at != activates_at
        || r.retired_at != retired_at
        || r.remove_after != remove_after
    {
        changes.push(Change::Update {
            kid: r.kid.clone(),
            state,
            activates_at,
            retired_at,
            remove_after,
        });
    }
}

/// Applies `changes` to an in-memory list, creating keys with `make(alg, generation,
/// activates_at)`: what the database does, for tests and simulations.
pub fn apply(
    records: &mut Vec<KeyRecord>,
    changes: &[Change],
    mut make: impl FnMut(Algorithm, i64, i64) -> KeyRecord,
) {
    for change in changes {
        match change {
            Change::Create {
                alg,
                generation,
                activates_at,
            } => {
                if !records
                    .iter()
                    .any(|r| r.alg == *alg && r.generation == *generation)
                {
                    records.push(make(*alg, *generation, *activates_at));
                }
            }
            Change::Update {
                kid,
                state,
                activates_at,
                retired_at,
                remove_after,
            } => {
                if let Some(r) = records.iter_mut().find(|r| &r.kid == kid) {
                    r.state = *state;
                    r.activates_at = *activates_at;
                    r.retired_at = *retired_at;
                    r.remove_after = *remove_after;
                }
            }
            Change::Delete { kid } => records.retain(|r| &r.kid != kid),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    fn policy() -> Policy {
        Policy {
            algorithms: vec![Algorithm::ES256],
            rotation_period: Some(30 * DAY),
            publish_ahead: DAY,
            retired_retention: 2 * DAY,
        }
    }

    fn make(alg: Algorithm, generation: i64, activates_at: i64) -> KeyRecord {
        KeyRecord {
            kid: format!("{alg}-{generation}"),
            alg,
            generation,
            state: KeyState::Next,
            public_jwk: String::new(),
            private_key: String::new(),
            created_at: 0,
            activates_at,
            retired_at: None,
            remove_after: None,
        }
    }

    fn step(keys: &mut Vec<KeyRecord>, now: i64) {
        // Run to a fixed point, as the background task converges over its ticks.
        for _ in 0..4 {
            let changes = plan(keys, &policy(), now);
            if changes.is_empty() {
                return;
            }
            apply(keys, &changes, make);
        }
    }

    fn state(keys: &[KeyRecord], kid: &str) -> Option<KeyState> {
        keys.iter().find(|k| k.kid == kid).map(|k| k.state)
    }

    #[test]
    fn bootstrap_creates_one_signing_key_at_once() {
        let changes = plan(&[], &policy(), 1000);
        assert_eq!(
            changes,
            vec![Change::Create {
                alg: Algorithm::ES256,
                generation: 1,
                activates_at: 1000
            }]
        );
    }

    #[test]
    fn full_lifecycle_of_one_key() {
        let mut keys = Vec::new();
        let t0 = 1_000_000;
        step(&mut keys, t0);
        assert_eq!(state(&keys, "ES256-1"), Some(KeyState::Current));

        // Not yet due.
        step(&mut keys, t0 + 28 * DAY);
        assert_eq!(keys.len(), 1);

        // Due one publish_ahead before the period ends: a next key appears, not signing.
        step(&mut keys, t0 + 29 * DAY);
        assert_eq!(state(&keys, "ES256-2"), Some(KeyState::Next));
        assert_eq!(
            keys.iter()
                .find(|k| k.kid == "ES256-2")
                .unwrap()
                .activates_at,
            t0 + 30 * DAY
        );
        assert_eq!(state(&keys, "ES256-1"), Some(KeyState::Current));

        // The period ends: the next key signs, the old one is retired but kept.
        step(&mut keys, t0 + 30 * DAY);
        assert_eq!(state(&keys, "ES256-2"), Some(KeyState::Current));
        assert_eq!(state(&keys, "ES256-1"), Some(KeyState::Retired));
        let old = keys.iter().find(|k| k.kid == "ES256-1").unwrap();
        assert_eq!(old.retired_at, Some(t0 + 30 * DAY));
        assert_eq!(old.remove_after, Some(t0 + 32 * DAY));

        // Still published until its retention ends, then removed.
        step(&mut keys, t0 + 32 * DAY - 1);
        assert!(state(&keys, "ES256-1").is_some());
        step(&mut keys, t0 + 32 * DAY);
        assert!(state(&keys, "ES256-1").is_none());
    }

    #[test]
    fn a_late_check_still_publishes_ahead() {
        let mut keys = vec![make(Algorithm::ES256, 1, 0)];
        keys[0].state = KeyState::Current;
        // The task was down past the rotation date: the new key still waits publish_ahead.
        let now = 45 * DAY;
        let changes = plan(&keys, &policy(), now);
        assert!(changes.contains(&Change::Create {
            alg: Algorithm::ES256,
            generation: 2,
            activates_at: now + DAY
        }));
    }

    #[test]
    fn manual_retirement_without_successor_promotes_or_creates() {
        let mut keys = vec![make(Algorithm::ES256, 1, 0)];
        keys[0].state = KeyState::Current;
        keys[0].retired_at = Some(10);
        let changes = plan(&keys, &policy(), 10);
        assert!(changes.contains(&Change::Create {
            alg: Algorithm::ES256,
            generation: 2,
            activates_at: 10
        }));
        assert!(changes.contains(&Change::Update {
            kid: "ES256-1".into(),
            state: KeyState::Retired,
            activates_at: 0,
            retired_at: Some(10),
            remove_after: Some(10 + 2 * DAY),
        }));

        // With a next key waiting, that key starts at once instead.
        let mut keys = vec![make(Algorithm::ES256, 1, 0), make(Algorithm::ES256, 2, 50)];
        keys[0].retired_at = Some(10);
        let changes = plan(&keys, &policy(), 10);
        assert!(changes.contains(&Change::Update {
            kid: "ES256-2".into(),
            state: KeyState::Current,
            activates_at: 10,
            retired_at: None,
            remove_after: None,
        }));
        assert!(!changes.iter().any(|c| matches!(c, Change::Create { .. })));
    }

    #[test]
    fn without_rotation_period_keys_are_kept() {
        let mut p = policy();
        p.rotation_period = None;
        let mut keys = vec![make(Algorithm::ES256, 1, 0)];
        keys[0].state = KeyState::Current;
        assert!(plan(&keys, &p, 400 * DAY).is_empty());
    }

    #[test]
    fn algorithms_outside_the_policy_are_not_created_or_rotated() {
        let mut keys = vec![make(Algorithm::RS256, 1, 0)];
        keys[0].state = KeyState::Current;
        let changes = plan(&keys, &policy(), 400 * DAY);
        assert!(!changes.iter().any(|c| matches!(
            c,
            Change::Create {
                alg: Algorithm::RS256,
                ..
            }
        )));
    }
}
