//! clientauth: the `client_auth` section, client authentication by JWT assertion
//! (RFC 7523, OpenID Connect Core §9) and the cache of clients' JWKS documents.

use std::time::Duration;

use config::{ConfigError, Validate};
use serde::{Deserialize, Serialize};

/// The `client_auth` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientAuthConfig {
    /// The longest a client assertion may still be valid when presented (`exp` - now,
    /// RFC 7523 §3 item 4: the server may reject assertions with an `exp` too far in the
    /// future). 10s..1h.
    #[serde(with = "humantime_serde")]
    pub assertion_max_lifetime: Duration,
    /// Tolerated clock difference with clients for `exp`, `nbf` and `iat` (RFC 7519 §4.1.4
    /// "some small leeway"). 0s..5m.
    #[serde(with = "humantime_serde")]
    pub clock_skew: Duration,
    /// How long a fetched `jwks_uri` document is used before it is fetched again. 10s..24h.
    #[serde(with = "humantime_serde")]
    pub jwks_cache_ttl: Duration,
    /// An assertion with a `kid` missing from a cached `jwks_uri` document makes authz
    /// fetch it again, at most once per this interval per URI (so unknown `kid`s cannot
    /// make authz hammer a client's server). 1s..`jwks_cache_ttl`.
    #[serde(with = "humantime_serde")]
    pub jwks_refetch_interval: Duration,
    /// Deadline of one `jwks_uri` fetch (connect to last byte). 1s..30s.
    #[serde(with = "humantime_serde")]
    pub jwks_fetch_timeout: Duration,
    /// Largest `jwks_uri` document accepted, in bytes. 1024..1048576.
    pub jwks_max_bytes: usize,
    /// Most JWKS documents (fetched or inline) kept parsed per replica. 1..100000.
    pub jwks_cache_entries: usize,
}

impl Default for ClientAuthConfig {
    fn default() -> Self {
        Self {
            assertion_max_lifetime: Duration::from_secs(300),
            clock_skew: Duration::from_secs(30),
            jwks_cache_ttl: Duration::from_secs(300),
            jwks_refetch_interval: Duration::from_secs(30),
            jwks_fetch_timeout: Duration::from_secs(5),
            jwks_max_bytes: 64 * 1024,
            jwks_cache_entries: 1000,
        }
    }
}

fn within(key: &str, value: Duration, min: Duration, max: Duration) -> Result<(), ConfigError> {
    if value < min || value > max {
        return Err(ConfigError::new(
            key,
            format!(
                "must be between {} and {}",
                humantime::format_duration(min),
                humantime::format_duration(max)
            ),
        ));
    }
    Ok(())
}

impl Validate for ClientAuthConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let s = Duration::from_secs;
        within(
            "assertion_max_lifetime",
            self.assertion_max_lifetime,
            s(10),
            s(3600),
        )?;
        within("clock_skew", self.clock_skew, s(0), s(300))?;
        within("jwks_cache_ttl", self.jwks_cache_ttl, s(10), s(86_400))?;
        within(
            "jwks_refetch_interval",
            self.jwks_refetch_interval,
            s(1),
            self.jwks_cache_ttl,
        )?;
        within("jwks_fetch_timeout", self.jwks_fetch_timeout, s(1), s(30))?;
        if !(1024..=1_048_576).contains(&self.jwks_max_bytes) {
            return Err(ConfigError::new(
                "jwks_max_bytes",
                "must be between 1024 and 1048576",
            ));
        }
        if !(1..=100_000).contains(&self.jwks_cache_entries) {
            return Err(ConfigError::new(
                "jwks_cache_entries",
                "must be between 1 and 100000",
            ));
        }
        Ok(())
    }
}
