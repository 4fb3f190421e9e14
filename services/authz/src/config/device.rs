//! The `device` section: the Device Authorization Grant (RFC 8628).

use std::time::Duration;

use config::{ConfigError, Validate};
use serde::{Deserialize, Serialize};

/// The device authorization endpoint and its codes (RFC 8628 §3.1-§3.5). The verification
/// page is idp's `/device` (`idp.public_url`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceConfig {
    /// Lifetime of a device code and its user code (`expires_in`, RFC 8628 §3.2): how long
    /// the user has to enter the code and approve. Between 1m and 30m.
    #[serde(with = "humantime_serde")]
    pub code_ttl: Duration,
    /// The polling interval given to devices (`interval`, RFC 8628 §3.2; its default is
    /// 5s). Every `slow_down` adds 5s to the interval of that device code. Between 1s and
    /// 60s.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
}

impl Default for DeviceConfig {
    fn default() -> Self {
        Self {
            code_ttl: Duration::from_secs(600),
            interval: Duration::from_secs(5),
        }
    }
}

impl Validate for DeviceConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.code_ttl < Duration::from_secs(60) || self.code_ttl > Duration::from_secs(1800) {
            return Err(ConfigError::new("code_ttl", "must be between 1m and 30m"));
        }
        if self.interval < Duration::from_secs(1) || self.interval > Duration::from_secs(60) {
            return Err(ConfigError::new("interval", "must be between 1s and 60s"));
        }
        if self.interval.subsec_nanos() != 0 {
            return Err(ConfigError::new("interval", "must be whole seconds"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_named() {
        assert!(DeviceConfig::default().validate().is_ok());
        let short = DeviceConfig {
            code_ttl: Duration::from_secs(10),
            ..DeviceConfig::default()
        };
        assert_eq!(short.validate().unwrap_err().key, "code_ttl");
        let fast = DeviceConfig {
            interval: Duration::from_millis(500),
            ..DeviceConfig::default()
        };
        assert_eq!(fast.validate().unwrap_err().key, "interval");
    }
}
