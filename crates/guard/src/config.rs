//! The guard's configuration: a plain serde value, so a service embeds it as one section of
//! its own configuration (`guard:` in `configs/rs.yaml`).

use std::time::Duration;

use ::config::{ConfigError, Secret, Validate};
use issuer::Algorithm;
use serde::{Deserialize, Serialize};

/// How tokens are validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// RFC 9068 JWT access tokens verified locally against the issuer's JWKS (found through
    /// its discovery document). No call to the authorization server per request; revocation
    /// is not seen before the token expires.
    Jwt,
    /// Every token (JWT or opaque) asked about over the `authz.v1.Introspection` gRPC API
    /// (RFC 7662 semantics), with a short cache. The authorization server unreachable means
    /// 503, never an open door.
    Introspection,
    /// JWTs verified locally first, then confirmed by introspection, so a revocation takes
    /// effect within `introspection.cache_ttl`; tokens that are not JWTs go to introspection
    /// only.
    Hybrid,
}

impl Mode {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Jwt => "jwt",
            Self::Introspection => "introspection",
            Self::Hybrid => "hybrid",
        }
    }

    pub(crate) fn verifies_locally(self) -> bool {
        matches!(self, Self::Jwt | Self::Hybrid)
    }

    pub(crate) fn introspects(self) -> bool {
        matches!(self, Self::Introspection | Self::Hybrid)
    }
}

/// Everything the guard needs. Unknown keys are refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardConfig {
    /// `jwt`, `introspection` or `hybrid`.
    pub mode: Mode,
    /// The issuer identifier, exactly as the authorization server publishes it: every token's
    /// `iss` must equal it (RFC 9068 §4), and discovery is read from
    /// `<issuer>/.well-known/openid-configuration`. `https`, or `http` for loopback hosts.
    pub issuer: String,
    /// This resource server's identifier (RFC 8707 resource indicator): a token's `aud` must
    /// contain it (RFC 9068 §4).
    pub audience: String,
    /// `realm` of every `WWW-Authenticate: Bearer` challenge (RFC 6750 §3).
    pub realm: String,
    /// Accepted JWS algorithms of access tokens (RFC 8725 §3.1).
    pub algorithms: Vec<Algorithm>,
    /// Allowed clock difference when checking `exp` and `nbf`.
    #[serde(with = "humantime_serde")]
    pub leeway: Duration,
    /// The JWKS cache (modes `jwt` and `hybrid`).
    pub jwks: JwksConfig,
    /// The introspection client (modes `introspection` and `hybrid`).
    pub introspection: IntrospectionConfig,
}

/// The signing keys cache.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwksConfig {
    /// How long keys are cached when the JWKS response has no `Cache-Control: max-age`.
    #[serde(with = "humantime_serde")]
    pub default_ttl: Duration,
    /// Lower bound applied to the server's `max-age` (and used for `no-cache`).
    #[serde(with = "humantime_serde")]
    pub min_ttl: Duration,
    /// Upper bound applied to the server's `max-age`.
    #[serde(with = "humantime_serde")]
    pub max_ttl: Duration,
    /// A token signed with an unknown `kid` refetches the JWKS at most once per this
    /// interval, so forged key ids cannot cause a refetch storm.
    #[serde(with = "humantime_serde")]
    pub refetch_interval: Duration,
    /// Deadline of each discovery or JWKS request.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Where this server reaches the issuer when the issuer URL is not reachable from it
    /// (inside a container network, e.g. `http://authz:8080`): discovery is read from
    /// `<backchannel_url>/.well-known/openid-configuration` and the `jwks_uri` it names is
    /// fetched with its issuer prefix replaced by this URL. Tokens' `iss` and the discovery
    /// document's `issuer` are still checked against `issuer`. `https`, or `http` for
    /// loopback hosts and single-label host names (a container or cluster service name).
    pub backchannel_url: Option<String>,
    /// PEM bundle of extra CAs trusted for the HTTPS discovery and JWKS fetches (a private
    /// or demo CA), beside the system's roots.
    pub ca_file: Option<std::path::PathBuf>,
}

/// The `authz.v1.Introspection` client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntrospectionConfig {
    /// gRPC endpoint of the authorization server (`http://host:port`).
    pub endpoint: String,
    /// The resource server's client id (a client allowed to introspect).
    pub client_id: Option<String>,
    /// Its secret; give it as `client_secret_file`.
    pub client_secret: Option<Secret<String>>,
    /// Deadline of each attempt (sent as `grpc-timeout`, and enforced locally).
    #[serde(with = "humantime_serde")]
    pub deadline: Duration,
    /// Further attempts after a transient failure (unavailable, deadline exceeded).
    pub retries: u32,
    /// Pause before the first retry, doubled before each further one.
    #[serde(with = "humantime_serde")]
    pub backoff: Duration,
    /// How long an active answer is reused; never beyond the token's `exp`. A revocation
    /// takes effect within this time.
    #[serde(with = "humantime_serde")]
    pub cache_ttl: Duration,
    /// How long an inactive answer is reused.
    #[serde(with = "humantime_serde")]
    pub negative_ttl: Duration,
    /// Most answers kept.
    pub cache_capacity: usize,
    /// TLS of the link when `endpoint` is `https://`: the CA bundle authz's certificate
    /// must chain to (required), the name expected in it, and this server's client
    /// certificate (mutual TLS: authz maps it to a client id, and `client_id` /
    /// `client_secret` may then be left out).
    pub tls: runtime::TlsClientConfig,
}

impl Default for GuardConfig {
    fn default() -> Self {
        Self {
            mode: Mode::Jwt,
            issuer: "http://localhost:8080".to_owned(),
            audience: "http://localhost:8082".to_owned(),
            realm: "api".to_owned(),
            algorithms: Algorithm::ALL.to_vec(),
            leeway: Duration::from_secs(30),
            jwks: JwksConfig::default(),
            introspection: IntrospectionConfig::default(),
        }
    }
}

impl Default for JwksConfig {
    fn default() -> Self {
        Self {
            default_ttl: Duration::from_secs(300),
            min_ttl: Duration::from_secs(10),
            max_ttl: Duration::from_secs(3600),
            refetch_interval: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
            backchannel_url: None,
            ca_file: None,
        }
    }
}

impl Default for IntrospectionConfig {
    fn default() -> Self {
        Self {
            endpoint: "http://127.0.0.1:50051".to_owned(),
            client_id: None,
            client_secret: None,
            deadline: Duration::from_secs(1),
            retries: 2,
            backoff: Duration::from_millis(100),
            cache_ttl: Duration::from_secs(30),
            negative_ttl: Duration::from_secs(5),
            cache_capacity: 10_000,
            tls: runtime::TlsClientConfig::default(),
        }
    }
}

impl GuardConfig {
    /// `jwt` mode for `issuer` and `audience`, every other setting at its default.
    pub fn jwt(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            ..Self::default()
        }
    }

    /// Where the discovery document is read (OpenID Connect Discovery 1.0 §4): below the
    /// issuer, or below `jwks.backchannel_url` when set.
    pub fn discovery_url(&self) -> String {
        let base = self.jwks.backchannel_url.as_deref().unwrap_or(&self.issuer);
        format!(
            "{}/.well-known/openid-configuration",
            base.trim_end_matches('/')
        )
    }
}

/// Characters that cannot appear inside a quoted-string of a `WWW-Authenticate` header.
fn header_safe(s: &str) -> bool {
    s.chars()
        .all(|c| (' '..='~').contains(&c) && c != '"' && c != '\\')
}

fn http_url(raw: &str, key: &str) -> Result<url::Url, ConfigError> {
    let parsed = url::Url::parse(raw).map_err(|e| ConfigError::new(key, e.to_string()))?;
    let loopback = match parsed.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if loopback => Ok(parsed),
        "http" => Err(ConfigError::new(
            key,
            "must use https (http is allowed for loopback hosts only)",
        )),
        _ => Err(ConfigError::new(key, "must be an https URL")),
    }
}

/// `jwks.backchannel_url`: https, or http for loopback hosts and single-label names (a
/// service inside a private container or cluster network); no query or fragment.
fn backchannel_url(raw: &str) -> Result<(), ConfigError> {
    const KEY: &str = "backchannel_url";
    let parsed = url::Url::parse(raw).map_err(|e| ConfigError::new(KEY, e.to_string()))?;
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(ConfigError::new(KEY, "must not have a query or fragment"));
    }
    let private = match parsed.host() {
        Some(url::Host::Domain(d)) => d == "localhost" || !d.contains('.'),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if private => Ok(()),
        "http" => Err(ConfigError::new(
            KEY,
            "must use https (http is allowed for loopback hosts and single-label service names only)",
        )),
        _ => Err(ConfigError::new(KEY, "must be an http(s) URL")),
    }
}

impl Validate for GuardConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let issuer = http_url(&self.issuer, "issuer")?;
        if issuer.query().is_some() || issuer.fragment().is_some() {
            return Err(ConfigError::new(
                "issuer",
                "must not have a query or fragment",
            ));
        }
        if self.audience.trim().is_empty() {
            return Err(ConfigError::new("audience", "must not be empty"));
        }
        if self.realm.is_empty() || !header_safe(&self.realm) {
            return Err(ConfigError::new(
                "realm",
                "must be non-empty printable ASCII without quotes or backslashes",
            ));
        }
        if self.algorithms.is_empty() {
            return Err(ConfigError::new(
                "algorithms",
                "must name at least one algorithm",
            ));
        }
        if self.leeway > Duration::from_secs(300) {
            return Err(ConfigError::new("leeway", "must be at most 5m"));
        }
        self.jwks.validate().map_err(|e| e.within("jwks"))?;
        if self.mode.introspects() {
            self.introspection
                .validate()
                .map_err(|e| e.within("introspection"))?;
        }
        Ok(())
    }
}

impl Validate for JwksConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.min_ttl > self.max_ttl {
            return Err(ConfigError::new(
                "min_ttl",
                "must not exceed guard.jwks.max_ttl",
            ));
        }
        if self.default_ttl < self.min_ttl || self.default_ttl > self.max_ttl {
            return Err(ConfigError::new(
                "default_ttl",
                "must lie between guard.jwks.min_ttl and guard.jwks.max_ttl",
            ));
        }
        if self.min_ttl.is_zero() {
            return Err(ConfigError::new("min_ttl", "must be greater than zero"));
        }
        if self.refetch_interval.is_zero() {
            return Err(ConfigError::new(
                "refetch_interval",
                "must be greater than zero",
            ));
        }
        if self.timeout.is_zero() {
            return Err(ConfigError::new("timeout", "must be greater than zero"));
        }
        if let Some(raw) = &self.backchannel_url {
            backchannel_url(raw)?;
        }
        if let Some(path) = &self.ca_file {
            extra_roots(path)?;
        }
        Ok(())
    }
}

/// The CA certificates of a PEM bundle such as `jwks.ca_file`, to add to a reqwest client's
/// roots (a resource server that calls the issuer's other endpoints, such as rs's token
/// exchange, trusts it the same way); errors name `ca_file`.
pub fn extra_roots(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>, ConfigError> {
    let pem = std::fs::read(path)
        .map_err(|e| ConfigError::new("ca_file", format!("cannot read {}: {e}", path.display())))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
        ConfigError::new(
            "ca_file",
            format!("{}: not a PEM bundle: {e}", path.display()),
        )
    })?;
    if certs.is_empty() {
        return Err(ConfigError::new(
            "ca_file",
            format!("{}: no CA certificate", path.display()),
        ));
    }
    Ok(certs)
}

impl Validate for IntrospectionConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let endpoint = url::Url::parse(&self.endpoint)
            .map_err(|e| ConfigError::new("endpoint", e.to_string()))?;
        if !matches!(endpoint.scheme(), "http" | "https") || endpoint.host().is_none() {
            return Err(ConfigError::new(
                "endpoint",
                "must be an http(s)://host:port URL",
            ));
        }
        self.tls
            .validate_for(&self.endpoint)
            .map_err(|e| e.within("tls"))?;
        if self.tls.presents_certificate(&self.endpoint) && self.client_id.is_none() {
            // Mutual TLS: authz knows the caller by its certificate.
        } else if self.client_id.as_deref().is_none_or(str::is_empty) {
            return Err(ConfigError::new(
                "client_id",
                "required in introspection and hybrid modes (unless tls.cert_file authenticates)",
            ));
        }
        if self.client_id.is_some()
            && self
                .client_secret
                .as_ref()
                .is_none_or(|s| s.expose().is_empty())
        {
            return Err(ConfigError::new(
                "client_secret",
                "required in introspection and hybrid modes (give it as client_secret_file)",
            ));
        }
        if self.deadline.is_zero() {
            return Err(ConfigError::new("deadline", "must be greater than zero"));
        }
        if self.retries > 10 {
            return Err(ConfigError::new("retries", "must be at most 10"));
        }
        if self.cache_capacity == 0 {
            return Err(ConfigError::new(
                "cache_capacity",
                "must be greater than zero",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_of(f: impl FnOnce(&mut GuardConfig)) -> Option<String> {
        let mut c = GuardConfig::default();
        f(&mut c);
        c.validate().err().map(|e| e.key)
    }

    fn introspecting(c: &mut GuardConfig) {
        c.mode = Mode::Introspection;
        c.introspection.client_id = Some("rs".into());
        c.introspection.client_secret = Some(Secret::new("s3cret".into()));
    }

    #[test]
    fn defaults_are_valid_in_jwt_mode_and_name_the_missing_credentials_otherwise() {
        assert_eq!(key_of(|_| {}), None);
        assert_eq!(
            key_of(|c| c.mode = Mode::Hybrid).as_deref(),
            Some("introspection.client_id")
        );
        assert_eq!(
            key_of(|c| {
                c.mode = Mode::Introspection;
                c.introspection.client_id = Some("rs".into());
            })
            .as_deref(),
            Some("introspection.client_secret")
        );
        assert_eq!(key_of(introspecting), None);
    }

    #[test]
    fn each_invalid_value_names_its_key() {
        type Change = Box<dyn FnOnce(&mut GuardConfig)>;
        let cases: Vec<(&str, Change)> = vec![
            (
                "issuer",
                Box::new(|c| c.issuer = "http://id.example.com".into()),
            ),
            (
                "issuer",
                Box::new(|c| c.issuer = "https://id.example.com/?a=b".into()),
            ),
            ("issuer", Box::new(|c| c.issuer = "not a url".into())),
            ("audience", Box::new(|c| c.audience = " ".into())),
            ("realm", Box::new(|c| c.realm = "a\"b".into())),
            ("algorithms", Box::new(|c| c.algorithms.clear())),
            ("leeway", Box::new(|c| c.leeway = Duration::from_secs(600))),
            (
                "jwks.min_ttl",
                Box::new(|c| c.jwks.min_ttl = Duration::from_secs(7200)),
            ),
            (
                "jwks.default_ttl",
                Box::new(|c| c.jwks.default_ttl = Duration::from_secs(1)),
            ),
            (
                "jwks.refetch_interval",
                Box::new(|c| c.jwks.refetch_interval = Duration::ZERO),
            ),
            (
                "introspection.endpoint",
                Box::new(|c| {
                    introspecting(c);
                    c.introspection.endpoint = "grpc:nothing".into();
                }),
            ),
            (
                "introspection.cache_capacity",
                Box::new(|c| {
                    introspecting(c);
                    c.introspection.cache_capacity = 0;
                }),
            ),
        ];
        for (key, f) in cases {
            assert_eq!(key_of(f).as_deref(), Some(key));
        }
    }

    #[test]
    fn backchannel_urls_are_https_or_private_http() {
        for ok in [
            "http://authz:8080",
            "http://127.0.0.1:8080/",
            "https://id.internal.example.com",
        ] {
            assert_eq!(
                key_of(|c| c.jwks.backchannel_url = Some(ok.into())),
                None,
                "{ok}"
            );
        }
        for bad in [
            "http://authz.example.com",
            "ftp://authz",
            "http://authz:8080/?x=1",
            "not a url",
        ] {
            assert_eq!(
                key_of(|c| c.jwks.backchannel_url = Some(bad.into())).as_deref(),
                Some("jwks.backchannel_url"),
                "{bad}"
            );
        }
        let mut c = GuardConfig::jwt("http://localhost:8080", "x");
        c.jwks.backchannel_url = Some("http://authz:8080/".into());
        assert_eq!(
            c.discovery_url(),
            "http://authz:8080/.well-known/openid-configuration"
        );
        let back = Some("http://authz:8080");
        let moved = |url| config::via_backchannel("http://localhost:8080", back, url);
        assert_eq!(
            moved("http://localhost:8080/jwks"),
            "http://authz:8080/jwks"
        );
        assert_eq!(
            moved("http://localhost:80801/jwks"),
            "http://localhost:80801/jwks"
        );
        assert_eq!(
            moved("https://cdn.example.com/jwks"),
            "https://cdn.example.com/jwks"
        );
        assert_eq!(
            config::via_backchannel("http://localhost:8080", None, "http://localhost:8080/jwks"),
            "http://localhost:8080/jwks"
        );
    }

    #[test]
    fn loopback_http_issuers_are_allowed() {
        for issuer in [
            "http://127.0.0.1:8080",
            "http://localhost",
            "http://[::1]:1",
        ] {
            assert_eq!(key_of(|c| c.issuer = issuer.into()), None, "{issuer}");
        }
        assert_eq!(
            GuardConfig::jwt("https://id.example.com/", "x").discovery_url(),
            "https://id.example.com/.well-known/openid-configuration"
        );
    }
}
