//! The `authorize`, `login` and `idp` sections: the authorization code flow, its
//! delegation of login and consent to idp, and how authz reaches idp.

use std::time::Duration;

use config::{ConfigError, Secret, Validate};
use serde::{Deserialize, Serialize};
use url::Url;

/// The authorization endpoint and its codes (RFC 6749 §4.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeConfig {
    /// Lifetime of an authorization code (RFC 6749 §4.1.2 recommends at most 10 minutes;
    /// 60 s is plenty for a client that redeems it at once).
    #[serde(with = "humantime_serde")]
    pub code_ttl: Duration,
    /// How long the browser has to finish login and consent at idp; the pending request
    /// and its login and consent challenges expire with it.
    #[serde(with = "humantime_serde")]
    pub request_ttl: Duration,
    /// Lifetime of a pending request until idp reads its challenge (the browser reached
    /// idp's page); then it gets `request_ttl` from its start. Requests nobody follows up
    /// (bots, abandoned tabs) expire and are purged after this. Between 10s and
    /// `request_ttl`.
    #[serde(with = "humantime_serde")]
    pub unresumed_ttl: Duration,
    /// Most unexpired pending requests (a browser sent to idp's login or consent page);
    /// beyond it `/authorize` answers `temporarily_unavailable` (RFC 6749 §4.1.2.1) instead
    /// of storing another, so unauthenticated requests cannot fill the disk. 10,000 rows
    /// are a few MB.
    pub max_pending_requests: u64,
    /// Most pending requests one client address (the TCP peer; forwarding headers are not
    /// trusted) may create per minute, counted in each process's memory; beyond it
    /// `temporarily_unavailable`. 30 leaves room for a shared NAT's users.
    pub pending_requests_per_address: u32,
}

impl Default for AuthorizeConfig {
    fn default() -> Self {
        Self {
            code_ttl: Duration::from_secs(60),
            request_ttl: Duration::from_secs(600),
            unresumed_ttl: Duration::from_secs(120),
            max_pending_requests: 10_000,
            pending_requests_per_address: 30,
        }
    }
}

impl Validate for AuthorizeConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.code_ttl < Duration::from_secs(1) || self.code_ttl > Duration::from_secs(600) {
            return Err(ConfigError::new("code_ttl", "must be between 1s and 10m"));
        }
        if self.request_ttl < Duration::from_secs(60)
            || self.request_ttl > Duration::from_secs(3600)
        {
            return Err(ConfigError::new("request_ttl", "must be between 1m and 1h"));
        }
        if self.unresumed_ttl < Duration::from_secs(10) || self.unresumed_ttl > self.request_ttl {
            return Err(ConfigError::new(
                "unresumed_ttl",
                "must be between 10s and authorize.request_ttl",
            ));
        }
        if self.max_pending_requests == 0 || self.max_pending_requests > 10_000_000 {
            return Err(ConfigError::new(
                "max_pending_requests",
                "must be between 1 and 10000000",
            ));
        }
        if self.pending_requests_per_address == 0 {
            return Err(ConfigError::new(
                "pending_requests_per_address",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

/// The login/consent delegation to idp (`authz.v1.LoginFlow`) and authz's own browser
/// session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginConfig {
    /// The registered client idp authenticates as on `authz.v1.LoginFlow`; any other
    /// client is refused with `PERMISSION_DENIED`.
    pub idp_client_id: String,
    /// Lifetime of authz's browser session (the `authz_session` cookie), which lets a
    /// browser that logged in once get codes without seeing idp again (SSO, `prompt=none`)
    /// for as long as idp also reports its own session alive.
    #[serde(with = "humantime_serde")]
    pub session_ttl: Duration,
}

impl Default for LoginConfig {
    fn default() -> Self {
        Self {
            idp_client_id: "idp".to_owned(),
            session_ttl: Duration::from_secs(12 * 3600),
        }
    }
}

impl Validate for LoginConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        domain::ClientId::parse(&self.idp_client_id)
            .map_err(|m| ConfigError::new("idp_client_id", m))?;
        if self.session_ttl.is_zero() || self.session_ttl > Duration::from_secs(30 * 86_400) {
            return Err(ConfigError::new(
                "session_ttl",
                "must be greater than zero and at most 30days",
            ));
        }
        Ok(())
    }
}

/// How authz reaches idp: its public pages (browser redirects) and its `idp.v1.Sessions`
/// gRPC API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdpConfig {
    /// Base URL of idp's pages as browsers reach them; authz sends browsers to
    /// `<public_url>/login?login_challenge=…` and `<public_url>/consent?consent_challenge=…`.
    pub public_url: String,
    /// idp's gRPC endpoint (`idp.v1.Sessions`).
    pub grpc_url: String,
    /// The id authz presents to idp (`authorization: Basic` metadata).
    pub client_id: String,
    /// The secret authz presents to idp; give it as `client_secret_file`. Without it idp
    /// refuses authz's calls, so the authorization code flow cannot complete.
    pub client_secret: Option<Secret<String>>,
    /// Deadline of each call to idp (sent as `grpc-timeout` and enforced locally).
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// TLS of the link when `grpc_url` is `https://`: the CA bundle idp's certificate must
    /// chain to (required), the name expected in it, and authz's client certificate
    /// (mutual TLS: idp maps it to a client id, so no secret is needed).
    pub tls: runtime::TlsClientConfig,
}

impl Default for IdpConfig {
    fn default() -> Self {
        Self {
            public_url: "http://localhost:8081".to_owned(),
            grpc_url: "http://127.0.0.1:50052".to_owned(),
            client_id: "authz".to_owned(),
            client_secret: None,
            timeout: Duration::from_secs(3),
            tls: runtime::TlsClientConfig::default(),
        }
    }
}

impl IdpConfig {
    /// `<public_url><path>` (`/login` → `http://localhost:8081/login`).
    pub fn page(&self, path: &str) -> String {
        format!("{}{path}", self.public_url.trim_end_matches('/'))
    }
}

fn http_url(key: &str, raw: &str) -> Result<(), ConfigError> {
    let url = Url::parse(raw).map_err(|e| ConfigError::new(key, e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ConfigError::new(key, "must be an http or https URL"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::new(key, "must not have a query or fragment"));
    }
    Ok(())
}

impl Validate for IdpConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        http_url("public_url", &self.public_url)?;
        http_url("grpc_url", &self.grpc_url)?;
        if self.client_id.is_empty() || self.client_id.contains(':') {
            return Err(ConfigError::new(
                "client_id",
                "must be non-empty and contain no colon",
            ));
        }
        if self
            .client_secret
            .as_ref()
            .is_some_and(|s| s.expose().is_empty())
        {
            return Err(ConfigError::new("client_secret", "must not be empty"));
        }
        if self.timeout.is_zero() || self.timeout > Duration::from_secs(60) {
            return Err(ConfigError::new(
                "timeout",
                "must be greater than zero and at most 60s",
            ));
        }
        self.tls
            .validate_for(&self.grpc_url)
            .map_err(|e| e.within("tls"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bounds_name_the_key() {
        assert!(AuthorizeConfig::default().validate().is_ok());
        assert!(LoginConfig::default().validate().is_ok());
        assert!(IdpConfig::default().validate().is_ok());
        let a = AuthorizeConfig {
            code_ttl: Duration::from_secs(3600),
            ..AuthorizeConfig::default()
        };
        assert_eq!(a.validate().unwrap_err().key, "code_ttl");
        let l = LoginConfig {
            idp_client_id: String::new(),
            ..LoginConfig::default()
        };
        assert_eq!(l.validate().unwrap_err().key, "idp_client_id");
        let i = IdpConfig {
            public_url: "ftp://idp".into(),
            ..IdpConfig::default()
        };
        assert_eq!(i.validate().unwrap_err().key, "public_url");
        let i = IdpConfig {
            grpc_url: "http://idp:50052/?x".into(),
            ..IdpConfig::default()
        };
        assert_eq!(i.validate().unwrap_err().key, "grpc_url");
        assert_eq!(
            IdpConfig::default().page("/login"),
            "http://localhost:8081/login"
        );
    }
}
