use std::time::Duration;

use config::{ConfigError, Validate};
use serde::{Deserialize, Serialize};

/// The `sessions` section: how long a browser session lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionConfig {
    /// Absolute lifetime from sign-in; the cookie's `Max-Age` too.
    #[serde(with = "humantime_serde")]
    pub lifetime: Duration,
    /// A session unused for this long ends (each visit to the login page that reuses it
    /// counts as use).
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// logout: `idp users set-password` also ends every session of the user and has authz
    /// end the matching sessions and send back-channel logout tokens (OpenID Connect
    /// Back-Channel Logout 1.0). Off by default, like Keycloak.
    pub end_on_password_change: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            lifetime: Duration::from_secs(24 * 3600),
            idle_timeout: Duration::from_secs(8 * 3600),
            end_on_password_change: false,
        }
    }
}

impl Validate for SessionConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.lifetime < Duration::from_secs(60)
            || self.lifetime > Duration::from_secs(400 * 86_400)
        {
            return Err(ConfigError::new(
                "lifetime",
                "must be between 1m and 400days",
            ));
        }
        if self.idle_timeout < Duration::from_secs(60) {
            return Err(ConfigError::new("idle_timeout", "must be at least 1m"));
        }
        Ok(())
    }
}
