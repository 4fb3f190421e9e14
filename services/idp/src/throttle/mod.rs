//! Brute-force protection of the login form (OWASP ASVS 4.0.3 V2.2.1: anti-automation that
//! does not let an attacker lock the owner out), shared by every idp replica through the
//! database.
//!
//! The device verification page's user codes (RFC 8628 §5.1) are throttled by the same
//! counters: per browser (device cookie, else address) in place of the account, and per
//! address ([`Attempt::user_code`]).
//!
//! Two failure counters see every attempt:
//!
//! - **per account**, keyed on the account the typed username or email resolves to (so
//!   `demo` and `demo@example.com` share one counter); a name that resolves to no account is
//!   counted under its normalised form, so being throttled says nothing about whether an
//!   account exists, and both cost the same work (one look-up, the counters, one argon2id
//!   verification against a dummy hash for unknown names);
//! - **per client address** (the TCP peer: IPv4 address, IPv6 /64; forwarding headers are
//!   not trusted).
//!
//! After `*_free_failures` failures, each further failure blocks its key for
//! `base_delay · 2^(n-1)` (n = failures beyond the free ones), at most `max_delay` past the
//! last attempt. An attempt refused while a key is blocked is counted as a failure too
//! (without any password check), so an attacker who keeps hammering keeps the block at
//! `max_delay` and gains nothing: a refusal by the account's block counts against the
//! account and the address, one by the address's block against the address only. A key without failures for `reset_after` is forgotten,
//! and a periodic task purges it, so the table does not grow forever. A successful login
//! forgets the address's counter and, unless it came through the soft path below, the
//! account's.
//!
//! The **address limit is hard**: a blocked address is refused whatever it sends. The
//! **account limit is soft**: every successful password login gives the browser a device
//! cookie (a random token, stored only as its SHA-256, bound to the account and to the
//! IPv4 /24 or IPv6 /64 of the login, living `device_lifetime`), OWASP's "device cookies"
//! approach. While the account is blocked, a browser presenting a live device cookie of
//! that account from that network may still have its password checked, so the owner can
//! sign in however long an attacker elsewhere keeps the account blocked. Everyone else
//! gets the generic "too many attempts" answer until the block ends; that is where a
//! second factor will let the owner in from a new browser once idp has MFA.

mod config;
mod keys;
mod repo;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use domain::secret::digest_hex;
use storage::Database;
use tracing::instrument;

pub use self::config::ThrottleConfig;
pub(crate) use self::keys::{Account, Scope};
// email links (issue 21): the mail forms' per-address limits use the same address keys.
pub(crate) use self::keys::address_key;
use crate::IdpError;
use crate::clock::Clock;
use crate::crypto::random_b64;

/// Device cookies kept per account (the newest); older ones lose their standing.
const DEVICES_PER_ACCOUNT: i64 = 20;

/// One login attempt, as the throttle sees it.
#[derive(Debug, Clone)]
pub(crate) struct Attempt {
    /// The account it is for.
    pub(crate) account: Account,
    /// The client's address (the TCP peer), when known.
    pub(crate) address: Option<IpAddr>,
    /// The device cookie the browser sent, if any.
    pub(crate) device: Option<String>,
}

impl Attempt {
    /// The counter keys of the attempt, the account's first.
    fn keys(&self) -> Vec<(String, Scope)> {
        let mut keys = vec![(self.account.key(), Scope::Account)];
        keys.extend(
            self.address
                .map(|ip| (keys::address_key(ip), Scope::Address)),
        );
        keys
    }
}

// device grant (RFC 8628 §5.1)
impl Attempt {
    /// An attempt at a device user code (the verification page's brute-force protection,
    /// RFC 8628 §5.1): counted per browser (its device cookie, or without one its
    /// address) with the account limits, and per address with the address limits, like a
    /// password attempt. A wrong code is a failure ([`Throttle::failure`]).
    pub(crate) fn user_code(address: Option<IpAddr>, device: Option<String>) -> Self {
        let browser = match (&device, address) {
            (Some(token), _) => format!("device:{}", digest_hex(token)),
            (None, Some(ip)) => keys::address_key(ip),
            (None, None) => "unknown".to_owned(),
        };
        Self {
            account: Account::UserCodes(browser),
            address,
            device,
        }
    }
}

/// What the throttle says about an attempt before the password is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Check the password. `soft` when the account is blocked and the browser's device
    /// cookie lets it past the account limit.
    Proceed {
        /// Admitted past a blocked account by a device cookie.
        soft: bool,
    },
    /// Refuse without checking the password; the attempt has been counted.
    Refused {
        /// The limit that refused it (the address's when both are blocked).
        scope: Scope,
        /// How long until that block ends, as it stands after counting this attempt.
        retry_after: Duration,
    },
}

/// The login throttle over the idp database. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Throttle {
    db: Database,
    config: ThrottleConfig,
    clock: Arc<dyn Clock>,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Throttle {
    pub(crate) fn new(db: Database, config: ThrottleConfig, clock: Arc<dyn Clock>) -> Self {
        Self { db, config, clock }
    }

    /// The device cookie's lifetime (its `Max-Age`).
    pub(crate) fn device_lifetime(&self) -> Duration {
        self.config.device_lifetime
    }

    fn now_ms(&self) -> i64 {
        self.clock
            .now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, millis)
    }

    /// Counters whose last failure is at or before this are forgotten.
    fn stale_before(&self, now: i64) -> i64 {
        now.saturating_sub(millis(self.config.reset_after))
    }

    fn free(&self, scope: Scope) -> i64 {
        i64::from(match scope {
            Scope::Account => self.config.account_free_failures,
            Scope::Address => self.config.address_free_failures,
        })
    }

    /// The block after `failures` failures of a key of `scope` at `now`: `None` within the
    /// free failures, else `now + base_delay · 2^(n-1)` (n beyond the free ones), at most
    /// `now + max_delay`.
    fn block_until(&self, scope: Scope, failures: i64, now: i64) -> Option<i64> {
        let beyond = failures.saturating_sub(self.free(scope));
        if beyond <= 0 {
            return None;
        }
        let max = millis(self.config.max_delay);
        let delay = u32::try_from(beyond - 1)
            .ok()
            .and_then(|shift| 1_i64.checked_shl(shift))
            .filter(|f| *f > 0)
            .and_then(|f| millis(self.config.base_delay).checked_mul(f))
            .map_or(max, |d| d.min(max));
        Some(now.saturating_add(delay))
    }

    /// Counts a failure (or a refused attempt) against the keys of `attempt` (only its
    /// address's with `address_only`); returns the counters as they are now, with their
    /// scopes, and logs each key that became blocked.
    async fn count(
        &self,
        attempt: &Attempt,
        now: i64,
        address_only: bool,
    ) -> Result<Vec<(Scope, repo::Counter)>, IdpError> {
        let mut keys = attempt.keys();
        if address_only {
            keys.retain(|(_, s)| *s == Scope::Address);
        }
        let names: Vec<String> = keys.iter().map(|(k, _)| k.clone()).collect();
        let scopes: Vec<Scope> = keys.iter().map(|(_, s)| *s).collect();
        let block = |i: usize, failures: i64| {
            scopes
                .get(i)
                .and_then(|s| self.block_until(*s, failures, now))
        };
        let before = repo::counters(&self.db, &names).await?;
        let counted =
            repo::count_failures(&self.db, &names, now, self.stale_before(now), &block).await?;
        let result: Vec<(Scope, repo::Counter)> = scopes.into_iter().zip(counted).collect();
        for (scope, counter) in &result {
            let was_blocked = before
                .iter()
                .any(|b| b.id == counter.id && b.blocked_until > now);
            if counter.blocked_until > now && !was_blocked {
                tracing::info!(
                    scope = scope.label(),
                    user = attempt.account.user_id().unwrap_or_default(),
                    address = attempt.address.map(|a| a.to_string()).unwrap_or_default(),
                    failures = counter.failures,
                    blocked_ms = counter.blocked_until - now,
                    "login back-off started"
                );
            }
        }
        Ok(result)
    }

    /// Whether `attempt` may have its password checked. A blocked address refuses it; a
    /// blocked account refuses it unless the browser's device cookie is alive, belongs to
    /// the account and was given in the network the attempt comes from. A refused attempt
    /// is counted as a failure, counted in `idp_login_throttled_total{scope}` and logged.
    #[instrument(skip_all)]
    pub(crate) async fn admit(&self, attempt: &Attempt) -> Result<Verdict, IdpError> {
        let now = self.now_ms();
        let keys = attempt.keys();
        let names: Vec<String> = keys.iter().map(|(k, _)| k.clone()).collect();
        let counters = repo::counters(&self.db, &names).await?;
        let blocked = |scope: Scope| {
            keys.iter()
                .filter(|(_, s)| *s == scope)
                .any(|(k, _)| counters.iter().any(|c| &c.id == k && c.blocked_until > now))
        };
        let scope = if blocked(Scope::Address) {
            Scope::Address
        } else if blocked(Scope::Account) {
            if self.trusted_device(attempt).await? {
                return Ok(Verdict::Proceed { soft: true });
            }
            Scope::Account
        } else {
            return Ok(Verdict::Proceed { soft: false });
        };
        // A refusal extends the block that refused it. One by the address's block does not
        // count against the account: no password was tried, and counting it would let a
        // blocked address keep blocking any account it names.
        let counted = self.count(attempt, now, scope == Scope::Address).await?;
        let until = counted
            .iter()
            .filter(|(s, _)| *s == scope)
            .map(|(_, c)| c.blocked_until)
            .max()
            .unwrap_or(now);
        let retry_after =
            Duration::from_millis(u64::try_from(until.saturating_sub(now)).unwrap_or(0));
        metrics::counter!("idp_login_throttled_total", "scope" => scope.label()).increment(1);
        tracing::warn!(
            scope = scope.label(),
            user = attempt.account.user_id().unwrap_or_default(),
            address = attempt.address.map(|a| a.to_string()).unwrap_or_default(),
            retry_after_ms = until.saturating_sub(now),
            "login attempt refused by the throttle"
        );
        Ok(Verdict::Refused { scope, retry_after })
    }

    /// Whether the attempt's device cookie lets it past its account's block.
    #[instrument(skip_all)]
    async fn trusted_device(&self, attempt: &Attempt) -> Result<bool, IdpError> {
        let (Some(token), Some(user), Some(ip)) = (
            attempt.device.as_deref(),
            attempt.account.user_id(),
            attempt.address,
        ) else {
            return Ok(false);
        };
        Ok(repo::device_trusted(
            &self.db,
            &digest_hex(token),
            user,
            &keys::network(ip),
            self.now_ms(),
        )
        .await?)
    }

    /// Counts a failed password check against the account and the address.
    #[instrument(skip_all)]
    pub(crate) async fn failure(&self, attempt: &Attempt) -> Result<(), IdpError> {
        self.count(attempt, self.now_ms(), false).await?;
        Ok(())
    }

    /// After a right password: forgets the address's counter and (unless the login came
    /// through the soft path, which leaves the attacker's block in place) the account's,
    /// replaces the browser's device cookie of this user with a new one, and returns the
    /// new cookie's token (`None` without a client address, which the cookie is bound to).
    #[instrument(skip_all)]
    pub(crate) async fn success(
        &self,
        attempt: &Attempt,
        user_id: &str,
        soft: bool,
    ) -> Result<Option<::config::Secret<String>>, IdpError> {
        let now = self.now_ms();
        let mut clear: Vec<String> = attempt.address.map(keys::address_key).into_iter().collect();
        if !soft {
            clear.push(Account::User(user_id.to_owned()).key());
            clear.push(attempt.account.key());
        }
        let Some(ip) = attempt.address else {
            repo::succeed_without_device(&self.db, &clear).await?;
            return Ok(None);
        };
        let token = random_b64(32)?;
        let device = repo::Device {
            token_hash: digest_hex(&token),
            user_id: user_id.to_owned(),
            network: keys::network(ip),
            created_at: now,
            expires_at: now.saturating_add(millis(self.config.device_lifetime)),
        };
        let replaced = attempt.device.as_deref().map(digest_hex);
        repo::succeed(
            &self.db,
            &clear,
            replaced.as_deref(),
            &device,
            DEVICES_PER_ACCOUNT,
        )
        .await?;
        Ok(Some(::config::Secret::new(token)))
    }

    /// Deletes forgotten counters and expired device cookies, and sets the
    /// `idp_login_throttle_tracked` gauge to the counters left (every replica's).
    pub(crate) async fn purge(&self) -> Result<(usize, usize), IdpError> {
        let now = self.now_ms();
        let purged = repo::purge(&self.db, now, self.stale_before(now)).await?;
        #[allow(clippy::cast_precision_loss)]
        metrics::gauge!("idp_login_throttle_tracked").set(repo::count(&self.db).await? as f64);
        Ok(purged)
    }

    /// Every `every` until `stop`: [`Throttle::purge`].
    pub(crate) fn spawn_upkeep(
        &self,
        every: Duration,
        stop: impl Future<Output = ()> + Send + 'static,
    ) {
        let throttle = self.clone();
        runtime::spawn_periodic(
            "login throttle upkeep",
            every,
            runtime::FirstRun::Immediately,
            stop,
            move || {
                let throttle = throttle.clone();
                async move {
                    match throttle.purge().await {
                        Ok((0, 0)) => {}
                        Ok((counters, devices)) => tracing::debug!(
                            counters,
                            devices,
                            "forgotten login counters and expired device cookies deleted"
                        ),
                        Err(e) => tracing::warn!(error = %e, "cannot purge login throttle state"),
                    }
                }
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    /// A clock the test moves by hand (milliseconds since the epoch).
    struct Manual(AtomicU64);
    impl Clock for Manual {
        fn now(&self) -> std::time::SystemTime {
            std::time::UNIX_EPOCH + Duration::from_millis(self.0.load(Ordering::Relaxed))
        }
    }

    async fn throttle(
        config: ThrottleConfig,
    ) -> (Throttle, Arc<Manual>, storage::testing::TestDatabase) {
        let db = storage::testing::TestDatabase::sqlite(&crate::MIGRATIONS)
            .await
            .unwrap();
        let clock = Arc::new(Manual(AtomicU64::new(1_000_000_000_000)));
        let t = Throttle::new(
            db.connect(&crate::MIGRATIONS).await.unwrap(),
            config,
            clock.clone(),
        );
        (t, clock, db)
    }

    #[tokio::test]
    async fn back_off_doubles_from_base_delay_up_to_max_delay() {
        let (t, _clock, _db) = throttle(ThrottleConfig {
            account_free_failures: 2,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(10),
            ..ThrottleConfig::default()
        })
        .await;
        let at = |n| t.block_until(Scope::Account, n, 1000);
        assert_eq!(at(2), None, "free failures");
        assert_eq!(at(3), Some(2000));
        assert_eq!(at(4), Some(3000));
        assert_eq!(at(5), Some(5000));
        assert_eq!(at(7), Some(11_000), "capped at max_delay");
        assert_eq!(at(200), Some(11_000), "no overflow");
        assert_eq!(t.block_until(Scope::Address, 21, 0), Some(1000));
    }

    /// Forgotten counters and expired device cookies are deleted; live ones stay.
    #[tokio::test]
    async fn purge_deletes_only_forgotten_counters_and_expired_devices() {
        let (t, clock, _db) = throttle(ThrottleConfig {
            reset_after: Duration::from_secs(3600),
            device_lifetime: Duration::from_secs(7200),
            ..ThrottleConfig::default()
        })
        .await;
        let attempt = |name: &str| Attempt {
            account: Account::of(None, name),
            address: Some(IpAddr::from([192, 0, 2, 1])),
            device: None,
        };
        let users = crate::users::Users::new(
            t.db.clone(),
            crate::users::Passwords::new(&crate::users::PasswordConfig {
                memory_kib: 8192,
                iterations: 1,
                parallelism: 1,
                min_length: 8,
                ..crate::users::PasswordConfig::default()
            })
            .unwrap(),
        );
        let user = users
            .create(
                crate::users::NewUser {
                    username: "owner".into(),
                    profile: crate::users::Profile::default(),
                },
                "a long password".into(),
            )
            .await
            .unwrap();
        let signed_in = Attempt {
            account: Account::of(Some(user.id.clone()), "owner"),
            ..attempt("owner")
        };
        assert!(
            t.success(&signed_in, &user.id, false)
                .await
                .unwrap()
                .is_some()
        );
        t.failure(&attempt("old")).await.unwrap();
        assert_eq!(t.purge().await.unwrap(), (0, 0), "nothing is stale yet");
        clock.0.fetch_add(3_000_000, Ordering::Relaxed);
        t.failure(&attempt("new")).await.unwrap();
        assert_eq!(
            t.purge().await.unwrap(),
            (0, 0),
            "the address failed again, and `old` is not an hour old"
        );
        clock.0.fetch_add(1_000_000, Ordering::Relaxed);
        assert_eq!(t.purge().await.unwrap(), (1, 0), "`old` is forgotten");
        assert_eq!(
            repo::count(&t.db).await.unwrap(),
            2,
            "`new` and the address stay"
        );
        clock.0.fetch_add(3_600_000, Ordering::Relaxed);
        assert_eq!(
            t.purge().await.unwrap(),
            (2, 1),
            "and the device cookie expired"
        );
        assert_eq!(repo::count(&t.db).await.unwrap(), 0);
    }
}
