use std::time::Duration;

use config::{ConfigError, Validate};
use serde::{Deserialize, Serialize};

/// The `signup` and `password_reset` sections: a self-service flow that mails a
/// single-use link, off by default, rate-limited per client address and per email address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkFlowConfig {
    /// Whether the flow's pages exist (404 otherwise) and the login page links to them.
    pub enabled: bool,
    /// How long a mailed link works (it works once).
    #[serde(with = "humantime_serde")]
    pub link_lifetime: Duration,
    /// Requests one client address (IPv4 address, IPv6 /64) may make per `window`.
    pub per_address: u32,
    /// Requests for one email address (or login name) per `window`, whoever asks.
    pub per_email: u32,
    /// The rate limits' window.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
}

impl LinkFlowConfig {
    /// `signup`'s defaults: off; links live 24 hours; 10 per address and 3 per email an hour.
    pub fn signup() -> Self {
        Self {
            enabled: false,
            link_lifetime: Duration::from_secs(86_400),
            per_address: 10,
            per_email: 3,
            window: Duration::from_secs(3600),
        }
    }

    /// `password_reset`'s defaults: off; links live 30 minutes (OWASP's Forgot Password
    /// cheat sheet: short-lived); 10 per address and 3 per email an hour.
    pub fn password_reset() -> Self {
        Self {
            link_lifetime: Duration::from_secs(1800),
            ..Self::signup()
        }
    }
}

impl Validate for LinkFlowConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.link_lifetime < Duration::from_secs(60)
            || self.link_lifetime > Duration::from_secs(7 * 86_400)
        {
            return Err(ConfigError::new(
                "link_lifetime",
                "must be between 1m and 7days",
            ));
        }
        if self.per_address == 0 {
            return Err(ConfigError::new("per_address", "must be at least 1"));
        }
        if self.per_email == 0 {
            return Err(ConfigError::new("per_email", "must be at least 1"));
        }
        if self.window < Duration::from_secs(1) || self.window > Duration::from_secs(86_400) {
            return Err(ConfigError::new("window", "must be between 1s and 1day"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_off_and_valid_and_bad_values_name_their_key() {
        for c in [LinkFlowConfig::signup(), LinkFlowConfig::password_reset()] {
            assert!(!c.enabled);
            assert!(c.validate().is_ok());
            let key = |c: LinkFlowConfig| c.validate().unwrap_err().key;
            assert_eq!(
                key(LinkFlowConfig {
                    link_lifetime: Duration::from_secs(1),
                    ..c
                }),
                "link_lifetime"
            );
            assert_eq!(key(LinkFlowConfig { per_email: 0, ..c }), "per_email");
            assert_eq!(
                key(LinkFlowConfig {
                    per_address: 0,
                    ..c
                }),
                "per_address"
            );
            assert_eq!(
                key(LinkFlowConfig {
                    window: Duration::ZERO,
                    ..c
                }),
                "window"
            );
        }
    }
}
