use std::time::Duration;

use config::{ConfigError, Validate};
use serde::{Deserialize, Serialize};

/// The `account` section: the account page (`/account`) and what it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    /// How long a username its owner changed away from stays reserved for that owner, so
    /// nobody else can take it over and be mistaken for them.
    #[serde(with = "humantime_serde")]
    pub username_hold: Duration,
    /// First retry delay of a revocation authz could not take (an account deletion while
    /// authz is down); doubles with each failure up to `revocation_retry_max`. Pending
    /// revocations are looked for this often.
    #[serde(with = "humantime_serde")]
    pub revocation_retry: Duration,
    /// Longest delay between two attempts of one pending revocation.
    #[serde(with = "humantime_serde")]
    pub revocation_retry_max: Duration,
    /// Largest avatar upload accepted, in bytes.
    pub avatar_max_bytes: usize,
    /// Most pixels an uploaded picture may have on a side (decompression bombs claim
    /// huge sizes in small files).
    pub avatar_max_dimension: u32,
    /// Side of the stored square avatar, in pixels.
    pub avatar_size: u32,
    /// Email change: the mailed link's lifetime and the rate limits of the requests
    /// (`enabled: false` removes the form).
    pub email_change: crate::links::LinkFlowConfig,
}

impl Default for AccountConfig {
    fn default() -> Self {
        Self {
            username_hold: Duration::from_secs(30 * 86_400),
            revocation_retry: Duration::from_secs(5),
            revocation_retry_max: Duration::from_secs(300),
            avatar_max_bytes: 2 * 1024 * 1024,
            avatar_max_dimension: 4096,
            avatar_size: 256,
            email_change: crate::links::LinkFlowConfig {
                enabled: true,
                link_lifetime: Duration::from_secs(3600),
                ..crate::links::LinkFlowConfig::signup()
            },
        }
    }
}

impl Validate for AccountConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.username_hold > Duration::from_secs(3650 * 86_400) {
            return Err(ConfigError::new(
                "username_hold",
                "must be at most 3650days",
            ));
        }
        if self.revocation_retry < Duration::from_millis(50)
            || self.revocation_retry > Duration::from_secs(3600)
        {
            return Err(ConfigError::new(
                "revocation_retry",
                "must be between 50ms and 1h",
            ));
        }
        if self.revocation_retry_max < self.revocation_retry
            || self.revocation_retry_max > Duration::from_secs(86_400)
        {
            return Err(ConfigError::new(
                "revocation_retry_max",
                "must be at least revocation_retry and at most 1day",
            ));
        }
        if !(1024..=20 * 1024 * 1024).contains(&self.avatar_max_bytes) {
            return Err(ConfigError::new(
                "avatar_max_bytes",
                "must be between 1024 and 20971520 (20 MiB)",
            ));
        }
        if !(16..=16_384).contains(&self.avatar_max_dimension) {
            return Err(ConfigError::new(
                "avatar_max_dimension",
                "must be between 16 and 16384",
            ));
        }
        if !(16..=1024).contains(&self.avatar_size) || self.avatar_size > self.avatar_max_dimension
        {
            return Err(ConfigError::new(
                "avatar_size",
                "must be between 16 and 1024 and at most avatar_max_dimension",
            ));
        }
        self.email_change
            .validate()
            .map_err(|e| e.within("email_change"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_name_the_key() {
        assert!(AccountConfig::default().validate().is_ok());
        let short = AccountConfig {
            revocation_retry: Duration::from_millis(1),
            ..AccountConfig::default()
        };
        assert_eq!(short.validate().unwrap_err().key, "revocation_retry");
        let inverted = AccountConfig {
            revocation_retry_max: Duration::from_secs(1),
            ..AccountConfig::default()
        };
        assert_eq!(inverted.validate().unwrap_err().key, "revocation_retry_max");
    }
}
