use std::sync::Arc;

use argon2::password_hash::PasswordHash;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use config::{ConfigError, Validate};
use serde::{Deserialize, Serialize};

use super::hasher::{Done, HashPool, HashPoolStats, Submit, Work};
use crate::IdpError;

/// The `passwords` section: argon2id cost (RFC 9106) and the hashing pool. The defaults
/// are OWASP's minimum recommendation for argon2id (19 MiB, 2 iterations, 1 lane).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordConfig {
    /// Memory cost in KiB.
    pub memory_kib: u32,
    /// Time cost (passes).
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
    /// Shortest password accepted when one is set.
    pub min_length: usize,
    /// Hashing threads, each holding `memory_kib` for good; 0 means one per CPU core.
    /// At most this many hashes run at once.
    pub workers: usize,
    /// Hashes waiting for a worker; beyond, a login answers 503 + Retry-After. 0 means
    /// 32 per worker.
    pub queue: usize,
    /// The most memory a stored hash may ask for (KiB); hashes asking for more never
    /// verify, so an absurd stored cost cannot exhaust memory.
    pub max_memory_kib: u32,
}

impl Default for PasswordConfig {
    fn default() -> Self {
        Self {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
            min_length: 8,
            workers: 0,
            queue: 0,
            max_memory_kib: 262_144,
        }
    }
}

impl PasswordConfig {
    /// The number of hashing threads: `workers`, or one per CPU core when 0.
    pub fn worker_count(&self) -> usize {
        if self.workers > 0 {
            self.workers
        } else {
            std::thread::available_parallelism()
                .map_or(1, std::num::NonZeroUsize::get)
                .min(64)
        }
    }

    /// The queue length: `queue`, or 32 per worker when 0.
    pub fn queue_length(&self) -> usize {
        if self.queue > 0 {
            self.queue
        } else {
            32 * self.worker_count()
        }
    }
}

impl Validate for PasswordConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        Params::new(self.memory_kib, self.iterations, self.parallelism, None).map_err(|e| {
            ConfigError::new("memory_kib", format!("invalid argon2 parameters: {e}"))
        })?;
        if self.memory_kib < 8 * 1024 {
            return Err(ConfigError::new(
                "memory_kib",
                "must be at least 8192 (8 MiB)",
            ));
        }
        if !(8..=128).contains(&self.min_length) {
            return Err(ConfigError::new("min_length", "must be between 8 and 128"));
        }
        if self.workers > 64 {
            return Err(ConfigError::new(
                "workers",
                "must be between 1 and 64 (0 = one per CPU core)",
            ));
        }
        if self.queue > 65_536 {
            return Err(ConfigError::new(
                "queue",
                "must be between 1 and 65536 (0 = 32 per worker)",
            ));
        }
        if self.max_memory_kib < self.memory_kib || self.max_memory_kib > 4 * 1024 * 1024 {
            return Err(ConfigError::new(
                "max_memory_kib",
                "must be at least memory_kib and at most 4194304 (4 GiB)",
            ));
        }
        Ok(())
    }
}

/// The outcome of a password check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    /// The password matched.
    pub valid: bool,
    /// The stored hash uses other parameters than configured: store a new hash.
    pub needs_rehash: bool,
}

/// argon2id hashing and verification (RFC 9106) on a bounded pool of worker threads that
/// reuse their memory: at most `passwords.workers` hashes run at once, so memory stays
/// near workers × `memory_kib`, and a full queue is refused at once with
/// [`IdpError::Busy`] (503 + Retry-After at the login page). Hashes are the PHC strings
/// the argon2 crate makes and reads. Clones share one pool; it stops when the last clone
/// is dropped.
#[derive(Clone)]
pub struct Passwords {
    inner: Arc<Inner>,
}

struct Inner {
    pool: HashPool,
    params: Params,
    min_length: usize,
    /// Verified against when the user does not exist, so unknown users cost the same time.
    dummy: String,
}

impl Passwords {
    /// A hasher with `config`'s cost, starting its worker threads and their memory now.
    pub fn new(config: &PasswordConfig) -> Result<Self, IdpError> {
        let params = Params::new(
            config.memory_kib,
            config.iterations,
            config.parallelism,
            None,
        )
        .map_err(|e| IdpError::Invalid(format!("argon2 parameters: {e}")))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        // The first worker's memory, used once here for the dummy hash.
        let mut memory = vec![Block::default(); params.block_count()];
        let dummy =
            super::hasher::hash_into(&argon, &mut memory, b"no such user: constant-time path")
                .map_err(|e| IdpError::Invalid(e.to_string()))?;
        let pool = HashPool::start(
            argon,
            config.worker_count(),
            config.queue_length(),
            config.max_memory_kib,
            memory,
        )
        .map_err(|e| IdpError::Task(format!("starting the password workers: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                params,
                min_length: config.min_length,
                dummy,
            }),
        })
    }

    // email, sign-up and password reset (issue 21)
    /// The shortest password accepted (`passwords.min_length`), for the forms' `minlength`.
    pub fn min_length(&self) -> usize {
        self.inner.min_length
    }

    /// The pool's live figures (in flight, peak, running workers, refusals).
    pub fn stats(&self) -> HashPoolStats {
        self.inner.pool.stats()
    }

    async fn run(&self, work: Work) -> Result<Done, IdpError> {
        let answer = self.inner.pool.submit(work).map_err(|e| match e {
            Submit::Full => IdpError::Busy("the password hashing queue is full".into()),
            Submit::Closed => IdpError::Task("the password workers have stopped".into()),
        })?;
        answer
            .await
            .map_err(|_| IdpError::Task("a password worker stopped".into()))
    }

    /// Hashes a new password (PHC string, fresh random salt) after checking its length.
    #[tracing::instrument(skip_all)]
    pub async fn hash(&self, password: String) -> Result<String, IdpError> {
        if password.chars().count() < self.inner.min_length {
            return Err(IdpError::Invalid(format!(
                "passwords need at least {} characters",
                self.inner.min_length
            )));
        }
        match self.run(Work::Hash { password }).await? {
            Done::Hashed(hashed) => hashed.map_err(IdpError::Invalid),
            Done::Verified(_) => Err(IdpError::Task("unexpected worker answer".into())),
        }
    }

    /// Checks `password` against `stored` (or, for an unknown user, against a dummy hash of
    /// the same cost, and fails), in constant time with respect to the password.
    #[tracing::instrument(skip_all)]
    pub async fn verify(
        &self,
        stored: Option<String>,
        password: String,
    ) -> Result<Checked, IdpError> {
        let known = stored.is_some();
        let phc = stored.unwrap_or_else(|| self.inner.dummy.clone());
        let Ok(parsed) = PasswordHash::new(&phc) else {
            return Ok(Checked {
                valid: false,
                needs_rehash: false,
            });
        };
        let current = &self.inner.params;
        let differs = parsed.algorithm.as_str() != "argon2id"
            || Params::try_from(&parsed).map_or(true, |p| {
                p.m_cost() != current.m_cost()
                    || p.t_cost() != current.t_cost()
                    || p.p_cost() != current.p_cost()
            });
        let matched = match self
            .run(Work::Verify {
                phc: phc.clone(),
                password,
            })
            .await?
        {
            Done::Verified(matched) => matched,
            Done::Hashed(_) => return Err(IdpError::Task("unexpected worker answer".into())),
        };
        let valid = matched && known;
        Ok(Checked {
            valid,
            needs_rehash: valid && differs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap(memory_kib: u32) -> Passwords {
        Passwords::new(&PasswordConfig {
            memory_kib,
            iterations: 1,
            parallelism: 1,
            min_length: 8,
            ..PasswordConfig::default()
        })
        .unwrap()
    }

    #[tokio::test]
    async fn hash_verify_and_rehash() {
        let p = cheap(8192);
        let h = p.hash("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=8192,t=1,p=1$"), "{h}");
        assert_eq!(
            p.verify(Some(h.clone()), "correct horse".into())
                .await
                .unwrap(),
            Checked {
                valid: true,
                needs_rehash: false
            }
        );
        assert!(
            !p.verify(Some(h.clone()), "wrong horse".into())
                .await
                .unwrap()
                .valid
        );
        assert!(
            !p.verify(None, "correct horse".into()).await.unwrap().valid,
            "unknown user"
        );
        assert!(
            !p.verify(Some("garbage".into()), "x".into())
                .await
                .unwrap()
                .valid
        );
        // Stronger parameters configured later: the old hash still verifies and asks to be
        // replaced.
        let stronger = cheap(16_384);
        assert_eq!(
            stronger
                .verify(Some(h), "correct horse".into())
                .await
                .unwrap(),
            Checked {
                valid: true,
                needs_rehash: true
            }
        );
        assert!(p.hash("short".into()).await.is_err());
    }

    fn pooled(workers: usize, queue: usize) -> Passwords {
        Passwords::new(&PasswordConfig {
            memory_kib: 8192,
            iterations: 1,
            parallelism: 1,
            min_length: 8,
            workers,
            queue,
            ..PasswordConfig::default()
        })
        .unwrap()
    }

    fn crate_hasher(memory_kib: u32) -> Argon2<'static> {
        Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(memory_kib, 1, 1, None).unwrap(),
        )
    }

    /// `$argon2id$v=19$m=…,t=…,p=…$<salt>$<hash>` with the lengths of each part.
    fn form(phc: &str) -> (String, usize, usize) {
        let parts: Vec<&str> = phc.split('$').collect();
        assert_eq!(parts.len(), 6, "{phc}");
        (parts[..4].join("$"), parts[4].len(), parts[5].len())
    }

    #[tokio::test]
    async fn pool_hashes_are_the_crates_and_the_other_way_round() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier, SaltString};
        let p = pooled(2, 4);
        let ours = p.hash("correct horse".into()).await.unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        crate_hasher(8192)
            .verify_password(b"correct horse", &parsed)
            .unwrap();
        assert!(
            crate_hasher(8192)
                .verify_password(b"wrong horse", &parsed)
                .is_err()
        );

        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        let theirs = crate_hasher(8192)
            .hash_password(b"correct horse", &salt)
            .unwrap()
            .to_string();
        assert_eq!(form(&ours), form(&theirs));
        assert_eq!(form(&ours).0, "$argon2id$v=19$m=8192,t=1,p=1");
        assert_eq!(
            p.verify(Some(theirs.clone()), "correct horse".into())
                .await
                .unwrap(),
            Checked {
                valid: true,
                needs_rehash: false
            }
        );
        assert!(
            !p.verify(Some(theirs), "wrong horse".into())
                .await
                .unwrap()
                .valid
        );

        // An older hash with MORE memory than configured verifies (memory for that call)
        // and asks to be replaced; one beyond max_memory_kib never verifies.
        let bigger = crate_hasher(16_384)
            .hash_password(b"correct horse", &salt)
            .unwrap()
            .to_string();
        assert_eq!(
            p.verify(Some(bigger.clone()), "correct horse".into())
                .await
                .unwrap(),
            Checked {
                valid: true,
                needs_rehash: true
            }
        );
        let capped = Passwords::new(&PasswordConfig {
            memory_kib: 8192,
            iterations: 1,
            max_memory_kib: 8192,
            workers: 1,
            ..PasswordConfig::default()
        })
        .unwrap();
        assert!(
            !capped
                .verify(Some(bigger), "correct horse".into())
                .await
                .unwrap()
                .valid
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_worker_and_a_queue_of_one_refuses_the_overflow() {
        let p = pooled(1, 1);
        let stored = p.hash("correct horse".into()).await.unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..16 {
            let (p, stored) = (p.clone(), stored.clone());
            tasks.spawn(async move { p.verify(Some(stored), "correct horse".into()).await });
        }
        let (mut valid, mut busy) = (0, 0);
        while let Some(result) = tasks.join_next().await {
            match result.unwrap() {
                Ok(checked) => {
                    assert!(checked.valid);
                    valid += 1;
                }
                Err(IdpError::Busy(_)) => busy += 1,
                Err(e) => panic!("{e}"),
            }
        }
        let stats = p.stats();
        assert!(valid >= 1, "{valid} valid, {busy} busy");
        assert!(busy >= 1, "{valid} valid, {busy} busy");
        assert_eq!(stats.queue_full(), busy);
        assert_eq!(stats.peak_in_flight(), 1, "one worker, one hash at a time");
        assert_eq!(stats.in_flight(), 0);
    }

    #[tokio::test]
    async fn the_workers_exit_when_the_last_clone_is_dropped() {
        let p = pooled(3, 0);
        let stats = p.stats();
        assert_eq!(stats.running_workers(), 3);
        let clone = p.clone();
        drop(p);
        assert_eq!(stats.running_workers(), 3, "a clone keeps the pool");
        assert!(clone.verify(None, "x".repeat(9)).await.is_ok());
        drop(clone);
        assert_eq!(stats.running_workers(), 0);
    }

    #[test]
    fn pool_bounds_are_validated_by_key() {
        for (config, key) in [
            (
                PasswordConfig {
                    workers: 65,
                    ..PasswordConfig::default()
                },
                "workers",
            ),
            (
                PasswordConfig {
                    queue: 65_537,
                    ..PasswordConfig::default()
                },
                "queue",
            ),
            (
                PasswordConfig {
                    max_memory_kib: 8192,
                    ..PasswordConfig::default()
                },
                "max_memory_kib",
            ),
        ] {
            assert_eq!(config.validate().unwrap_err().key, key);
        }
        let auto = PasswordConfig::default();
        assert!((1..=64).contains(&auto.worker_count()));
        assert_eq!(auto.queue_length(), 32 * auto.worker_count());
    }

    #[test]
    fn config_bounds() {
        assert!(PasswordConfig::default().validate().is_ok());
        let weak = PasswordConfig {
            memory_kib: 1024,
            ..PasswordConfig::default()
        };
        assert_eq!(weak.validate().unwrap_err().key, "memory_kib");
    }
}
