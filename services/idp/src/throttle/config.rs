use std::time::Duration;

use config::{ConfigError, Validate};
use serde::{Deserialize, Serialize};

/// The `login_throttle` section: brute-force protection of the login form (OWASP ASVS
/// V2.2.1), shared by every replica through the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThrottleConfig {
    /// Failures allowed for one account (however its name is typed: username or email;
    /// unknown names count per normalised name) before back-off starts. The account limit
    /// is soft: a browser with a device cookie of the account, from the network of its
    /// last successful login, may still sign in with the right password.
    pub account_free_failures: u32,
    /// Failures allowed from one client address (IPv4 address, IPv6 /64) before back-off
    /// starts; higher, as many users may share an address. The address limit is hard: no
    /// device cookie lifts it.
    pub address_free_failures: u32,
    /// The first back-off; it doubles with each further failure, attempts refused while
    /// blocked included.
    #[serde(with = "humantime_serde")]
    pub base_delay: Duration,
    /// The longest back-off: a block never reaches further than this past the last attempt.
    #[serde(with = "humantime_serde")]
    pub max_delay: Duration,
    /// A counter without a failure (or refused attempt) for this long is forgotten and
    /// purged; at least `max_delay`.
    #[serde(with = "humantime_serde")]
    pub reset_after: Duration,
    /// How long a device cookie (given at each successful password login) lets its browser
    /// past the account limit; also the cookie's `Max-Age`.
    #[serde(with = "humantime_serde")]
    pub device_lifetime: Duration,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            account_free_failures: 5,
            address_free_failures: 20,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(15 * 60),
            reset_after: Duration::from_secs(3600),
            device_lifetime: Duration::from_secs(30 * 86_400),
        }
    }
}

impl Validate for ThrottleConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.base_delay < Duration::from_millis(1) {
            return Err(ConfigError::new("base_delay", "must be at least 1ms"));
        }
        if self.max_delay < self.base_delay {
            return Err(ConfigError::new("max_delay", "must be at least base_delay"));
        }
        if self.max_delay > Duration::from_secs(86_400) {
            return Err(ConfigError::new("max_delay", "must be at most 1day"));
        }
        if self.reset_after < self.max_delay {
            return Err(ConfigError::new(
                "reset_after",
                "must be at least max_delay",
            ));
        }
        if self.reset_after > Duration::from_secs(30 * 86_400) {
            return Err(ConfigError::new("reset_after", "must be at most 30days"));
        }
        if self.device_lifetime < Duration::from_secs(60)
            || self.device_lifetime > Duration::from_secs(400 * 86_400)
        {
            return Err(ConfigError::new(
                "device_lifetime",
                "must be between 1m and 400days",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_name_their_key() {
        assert!(ThrottleConfig::default().validate().is_ok());
        let bad = |c: ThrottleConfig| c.validate().unwrap_err().to_string();
        let d = ThrottleConfig::default();
        assert!(
            bad(ThrottleConfig {
                base_delay: Duration::ZERO,
                ..d
            })
            .contains("base_delay")
        );
        assert!(
            bad(ThrottleConfig {
                reset_after: Duration::from_secs(60),
                ..d
            })
            .contains("reset_after")
        );
        assert!(
            bad(ThrottleConfig {
                device_lifetime: Duration::from_secs(1),
                ..d
            })
            .contains("device_lifetime")
        );
    }
}
