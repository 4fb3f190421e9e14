use std::time::Duration;

use config::{ConfigError, Validate};
use serde::{Deserialize, Serialize};

/// The `audit` section of a service's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// How long audit events are kept; older ones are purged in the background. Between
    /// 1day and 3650days.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            retention: Duration::from_secs(90 * 86_400),
        }
    }
}

/// The shortest retention accepted.
const MIN_RETENTION: Duration = Duration::from_secs(86_400);
/// The longest retention accepted.
const MAX_RETENTION: Duration = Duration::from_secs(3650 * 86_400);

impl Validate for AuditConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.retention < MIN_RETENTION || self.retention > MAX_RETENTION {
            return Err(ConfigError::new(
                "retention",
                "must be between 1day and 3650days",
            ));
        }
        Ok(())
    }
}

impl AuditConfig {
    /// The retention in milliseconds (what [`crate::purge`] subtracts from now).
    pub fn retention_ms(&self) -> i64 {
        i64::try_from(self.retention.as_millis()).unwrap_or(i64::MAX)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn retention_outside_one_day_to_ten_years_is_refused() {
        assert!(AuditConfig::default().validate().is_ok());
        for bad in [
            Duration::from_secs(3600),
            Duration::from_secs(3651 * 86_400),
        ] {
            let err = AuditConfig { retention: bad }.validate().unwrap_err();
            assert!(err.to_string().contains("retention"), "{err}");
        }
    }
}
