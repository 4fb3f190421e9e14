//! The `keys` section: key-encryption key, algorithms and the rotation schedule.

use std::time::Duration;

use config::{ConfigError, Secret, Validate};
use issuer::Algorithm;
use serde::{Deserialize, Serialize};

/// Signing keys: how they are protected at rest and how they rotate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysConfig {
    /// Key-encryption key: 32 random bytes, base64 (`authz keys new-kek` prints one).
    /// Required. Give it as `encryption_key_file` (a mounted secret), not inline.
    pub encryption_key: Option<Secret<String>>,
    /// Signs ID tokens and access tokens unless a client asks for another algorithm.
    pub default_alg: Algorithm,
    /// Algorithms that always have a current key (must include `default_alg`).
    pub algorithms: Vec<Algorithm>,
    /// Size of generated RSA keys: 2048, 3072 or 4096.
    pub rsa_bits: u32,
    /// Automatic rotation period of every algorithm's key; `0s` rotates only by hand.
    #[serde(with = "humantime_serde")]
    pub rotation_period: Duration,
    /// How long a new key is published in the JWKS before it signs; must exceed
    /// `jwks_max_age` so caches learn it first.
    #[serde(with = "humantime_serde")]
    pub publish_ahead: Duration,
    /// `Cache-Control: max-age` of the JWKS.
    #[serde(with = "humantime_serde")]
    pub jwks_max_age: Duration,
    /// How long a retired key stays published; must exceed the longest token lifetime.
    #[serde(with = "humantime_serde")]
    pub retired_retention: Duration,
    /// How often each replica checks the schedule and reloads keys from the database.
    #[serde(with = "humantime_serde")]
    pub check_interval: Duration,
    /// Threads that compute RSA signatures (a bounded pool, off the async workers);
    /// `0` = one per CPU core.
    pub signing_threads: usize,
}

impl Default for KeysConfig {
    fn default() -> Self {
        Self {
            encryption_key: None,
            default_alg: Algorithm::RS256,
            algorithms: vec![
                Algorithm::RS256,
                Algorithm::PS256,
                Algorithm::ES256,
                Algorithm::EdDSA,
            ],
            rsa_bits: 2048,
            rotation_period: Duration::from_secs(30 * 86_400),
            publish_ahead: Duration::from_secs(3600),
            jwks_max_age: Duration::from_secs(600),
            retired_retention: Duration::from_secs(2 * 86_400),
            check_interval: Duration::from_secs(30),
            signing_threads: 0,
        }
    }
}

impl KeysConfig {
    /// The key-encryption key, parsed.
    pub fn kek(&self) -> Result<issuer::Kek, ConfigError> {
        let encoded = self.encryption_key.as_ref().ok_or_else(|| {
            ConfigError::new(
                "encryption_key",
                "required: set keys.encryption_key_file to a file holding 32 random bytes in base64 (`authz keys new-kek` prints one)",
            )
        })?;
        issuer::Kek::from_base64(encoded.expose())
            .map_err(|e| ConfigError::new("encryption_key", e.to_string()))
    }

    /// The lifecycle policy in seconds.
    pub fn policy(&self) -> issuer::lifecycle::Policy {
        let secs = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        issuer::lifecycle::Policy {
            algorithms: self.algorithms.clone(),
            rotation_period: (!self.rotation_period.is_zero()).then(|| secs(self.rotation_period)),
            publish_ahead: secs(self.publish_ahead),
            retired_retention: secs(self.retired_retention),
        }
    }
}

impl Validate for KeysConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        // A malformed key is always refused; a missing one only by the commands that need
        // it (serve, check-config, the keys commands that open the key store), so
        // read-only commands run without it.
        if self.encryption_key.is_some() {
            self.kek()?;
        }
        if self.algorithms.is_empty() {
            return Err(ConfigError::new(
                "algorithms",
                "must name at least one algorithm",
            ));
        }
        if !self.algorithms.contains(&self.default_alg) {
            return Err(ConfigError::new(
                "default_alg",
                "must be one of keys.algorithms",
            ));
        }
        if !matches!(self.rsa_bits, 2048 | 3072 | 4096) {
            return Err(ConfigError::new("rsa_bits", "must be 2048, 3072 or 4096"));
        }
        if self.publish_ahead <= self.jwks_max_age {
            return Err(ConfigError::new(
                "publish_ahead",
                "must be longer than keys.jwks_max_age, or caches could miss a new key",
            ));
        }
        if !self.rotation_period.is_zero() && self.rotation_period <= self.publish_ahead {
            return Err(ConfigError::new(
                "rotation_period",
                "must be 0s or longer than keys.publish_ahead",
            ));
        }
        if self.retired_retention < self.jwks_max_age {
            return Err(ConfigError::new(
                "retired_retention",
                "must be at least keys.jwks_max_age",
            ));
        }
        if self.check_interval.is_zero() || self.check_interval >= self.publish_ahead {
            return Err(ConfigError::new(
                "check_interval",
                "must be greater than zero and shorter than keys.publish_ahead",
            ));
        }
        Ok(())
    }
}
