use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use config::{ConfigError, Validate};
use serde::{Deserialize, Serialize};

use crate::IdpError;

/// The `passwords` section: argon2id cost (RFC 9106). The defaults are OWASP's minimum
/// recommendation for argon2id (19 MiB, 2 iterations, 1 lane).
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
}

impl Default for PasswordConfig {
    fn default() -> Self {
        Self {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
            min_length: 8,
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

/// argon2id hashing and verification, always on Tokio's blocking pool (a hash takes tens
/// of milliseconds of CPU by design and must never stall the async workers).
#[derive(Clone)]
pub struct Passwords {
    inner: Arc<Inner>,
}

struct Inner {
    argon: Argon2<'static>,
    min_length: usize,
    /// Verified against when the user does not exist, so unknown users cost the same time.
    dummy: String,
}

impl Passwords {
    /// A hasher with `config`'s cost.
    pub fn new(config: &PasswordConfig) -> Result<Self, IdpError> {
        let params = Params::new(
            config.memory_kib,
            config.iterations,
            config.parallelism,
            None,
        )
        .map_err(|e| IdpError::Invalid(format!("argon2 parameters: {e}")))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        let dummy = argon
            .hash_password(b"no such user: constant-time path", &salt)
            .map_err(|e| IdpError::Invalid(e.to_string()))?
            .to_string();
        Ok(Self {
            inner: Arc::new(Inner {
                argon,
                min_length: config.min_length,
                dummy,
            }),
        })
    }

    /// Hashes a new password (PHC string, fresh random salt) after checking its length.
    pub async fn hash(&self, password: String) -> Result<String, IdpError> {
        if password.chars().count() < self.inner.min_length {
            return Err(IdpError::Invalid(format!(
                "passwords need at least {} characters",
                self.inner.min_length
            )));
        }
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
            inner
                .argon
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| IdpError::Invalid(e.to_string()))
        })
        .await
        .map_err(|e| IdpError::Task(e.to_string()))?
    }

    /// Checks `password` against `stored` (or, for an unknown user, against a dummy hash of
    /// the same cost, and fails), in constant time with respect to the password.
    pub async fn verify(
        &self,
        stored: Option<String>,
        password: String,
    ) -> Result<Checked, IdpError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let known = stored.is_some();
            let phc = stored.unwrap_or_else(|| inner.dummy.clone());
            let Ok(parsed) = PasswordHash::new(&phc) else {
                return Checked {
                    valid: false,
                    needs_rehash: false,
                };
            };
            let valid = inner
                .argon
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
                && known;
            let current = inner.argon.params();
            let needs_rehash = valid
                && (parsed.algorithm.as_str() != "argon2id"
                    || Params::try_from(&parsed).map_or(true, |p| {
                        p.m_cost() != current.m_cost()
                            || p.t_cost() != current.t_cost()
                            || p.p_cost() != current.p_cost()
                    }));
            Checked {
                valid,
                needs_rehash,
            }
        })
        .await
        .map_err(|e| IdpError::Task(e.to_string()))
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
