//! dcr: the `registration` section (Dynamic Client Registration, RFC 7591) and the `par`
//! section (Pushed Authorization Requests, RFC 9126).

use std::time::Duration;

use config::{ConfigError, Validate};
use domain::ScopeSet;
use serde::{Deserialize, Serialize};

/// The registration endpoint (RFC 7591 §3). Registration needs an initial access token
/// minted with `authz registration-tokens create` unless open registration is on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrationConfig {
    /// Open registration: a request without an initial access token registers a native
    /// public client (`token_endpoint_auth_method` `none`) whose redirect URIs are all
    /// loopback (`http://127.0.0.1`, `http://[::1]`, `http://localhost`, RFC 8252 §7.3).
    /// Default off.
    pub open: bool,
    /// The most a client registered openly may ask for (space-separated scopes); its
    /// default scope when it asks for none.
    pub open_scope: String,
}

impl Default for RegistrationConfig {
    fn default() -> Self {
        Self {
            open: false,
            open_scope: "openid profile email offline_access".to_owned(),
        }
    }
}

impl RegistrationConfig {
    /// [`RegistrationConfig::open_scope`] parsed (validated at load).
    pub fn open_scopes(&self) -> ScopeSet {
        ScopeSet::parse(&self.open_scope).unwrap_or_default()
    }
}

impl Validate for RegistrationConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        ScopeSet::parse(&self.open_scope)
            .map_err(|e| ConfigError::new("open_scope", e.to_string()))?;
        Ok(())
    }
}

/// The pushed authorization request endpoint (RFC 9126).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParConfig {
    /// Lifetime of a `request_uri` (`expires_in`, RFC 9126 §2.2, which suggests between
    /// 5 and 600 seconds). Between 5s and 10m.
    #[serde(with = "humantime_serde")]
    pub request_uri_ttl: Duration,
    /// Every client must push its authorization requests
    /// (`require_pushed_authorization_requests`, RFC 9126 §5); a client can also be
    /// required to on its own (client metadata of the same name).
    pub require: bool,
}

impl Default for ParConfig {
    fn default() -> Self {
        Self {
            request_uri_ttl: Duration::from_secs(60),
            require: false,
        }
    }
}

impl Validate for ParConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.request_uri_ttl < Duration::from_secs(5)
            || self.request_uri_ttl > Duration::from_secs(600)
        {
            return Err(ConfigError::new(
                "request_uri_ttl",
                "must be between 5s and 10m",
            ));
        }
        if self.request_uri_ttl.subsec_nanos() != 0 {
            return Err(ConfigError::new("request_uri_ttl", "must be whole seconds"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_are_named() {
        assert!(RegistrationConfig::default().validate().is_ok());
        assert!(ParConfig::default().validate().is_ok());
        let bad = RegistrationConfig {
            open_scope: "a  b".into(),
            ..RegistrationConfig::default()
        };
        assert_eq!(bad.validate().unwrap_err().key, "open_scope");
        let long = ParConfig {
            request_uri_ttl: Duration::from_secs(3600),
            ..ParConfig::default()
        };
        assert_eq!(long.validate().unwrap_err().key, "request_uri_ttl");
    }
}
