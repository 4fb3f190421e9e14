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
    /// mTLS client authentication (RFC 8705 §2) behind a TLS-terminating proxy: the
    /// request header in which the proxy forwards the client's certificate (URL-encoded
    /// PEM as nginx's `$ssl_client_escaped_cert`, PEM, or base64 DER); `None`: off.
    pub certificate_header: Option<String>,
    /// The addresses of those proxies: the certificate header is read only on connections
    /// from them (anyone else could forge it). Required with `certificate_header`.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// mTLS client authentication (RFC 8705 §2) on authz's own TLS handshake: the public
    /// listener (`http.tls`, required) asks every client for a certificate and requires
    /// none, so browsers are unaffected. Any certificate whose key the client proves it
    /// holds passes the handshake (RFC 8705 §2.2 self-signed ones too, as Node's
    /// `requestCert` without `rejectUnauthorized` does; Keycloak's `https-client-auth:
    /// request` would need each self-signed certificate in its truststore); the endpoint then
    /// authenticates `tls_client_auth` clients only by a certificate whose chain verifies
    /// against `http.tls.client_ca_file` (which no longer makes a certificate required) and
    /// `self_signed_tls_client_auth` clients by their registered keys. A connection from
    /// a `trusted_proxies` address is believed only through `certificate_header`.
    pub handshake_certificates: bool,
    /// RFC 8705 §5: the base URL (`https://mtls.id.example.com`, an optional path prefix)
    /// of a host that asks clients for certificates while the issuer's host does not,
    /// typically a TLS-terminating proxy forwarding them in `certificate_header`, or
    /// authz's own listener (`handshake_certificates`) behind a public host that does not
    /// forward them. Discovery then publishes `mtls_endpoint_aliases` for the token,
    /// introspection, revocation, PAR, device authorization and userinfo endpoints under
    /// it. Leave it unset when the issuer's host itself requests certificates: clients
    /// use the ordinary endpoints then, and no aliases are published.
    pub mtls_base_url: Option<String>,
}

impl ClientAuthConfig {
    /// Whether clients can authenticate by certificate (RFC 8705 §2) at all: a proxy
    /// forwards certificates or authz's own listener requests them.
    pub fn mtls(&self) -> bool {
        self.certificate_header.is_some() || self.handshake_certificates
    }

    /// The RFC 8705 §5 alias of the endpoint at `path`, when `mtls_base_url` is set.
    pub fn mtls_endpoint(&self, path: &str) -> Option<String> {
        self.mtls_base_url
            .as_ref()
            .map(|base| format!("{}{path}", base.trim_end_matches('/')))
    }
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
            certificate_header: None,
            trusted_proxies: Vec::new(),
            handshake_certificates: false,
            mtls_base_url: None,
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
        if let Some(h) = &self.certificate_header {
            if h.is_empty()
                || !h
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(ConfigError::new(
                    "certificate_header",
                    "must be an HTTP header name (letters, digits, - and _)",
                ));
            }
            if self.trusted_proxies.is_empty() {
                return Err(ConfigError::new(
                    "trusted_proxies",
                    "required when certificate_header is set: the addresses of the proxies that set it",
                ));
            }
        }
        if let Some(raw) = &self.mtls_base_url {
            let url = url::Url::parse(raw)
                .map_err(|e| ConfigError::new("mtls_base_url", e.to_string()))?;
            if url.scheme() != "https"
                || url.host_str().is_none()
                || url.query().is_some()
                || url.fragment().is_some()
            {
                return Err(ConfigError::new(
                    "mtls_base_url",
                    "must be an https URL without query or fragment",
                ));
            }
            if self.certificate_header.is_none() && !self.handshake_certificates {
                return Err(ConfigError::new(
                    "mtls_base_url",
                    "needs certificate_header or handshake_certificates: nothing would read the certificates of that host",
                ));
            }
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
