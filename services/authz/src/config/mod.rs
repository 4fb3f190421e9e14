//! The authz configuration (`configs/authz.yaml`, `AUTHZ__…` environment variables).

// clientauth
mod client_auth;
// device grant (RFC 8628)
mod device;
mod flow;
mod keys;
mod logout;
// dcr: registration (RFC 7591) and PAR (RFC 9126)
mod registration;

// clientauth
pub use client_auth::ClientAuthConfig;
pub use device::DeviceConfig;
pub use flow::{AuthorizeConfig, IdpConfig, LoginConfig};
pub use keys::KeysConfig;
pub use logout::LogoutConfig;
pub use registration::{ParConfig, RegistrationConfig};

/// The `tokens` section: issued tokens beyond what each client's registration says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokensConfig {
    /// How long after a refresh token was rotated the same token presented again still
    /// gets the same successor refresh token (a grace period for a client that lost the
    /// response), instead of revoking its grant as a replay (RFC 9700 §4.14.2, OAuth 2.1
    /// §6.1). Only while the successor is unused; at most 5m. Default `0s`, off: strict
    /// reuse detection unless the deployment opts in (Okta and Ory Hydra default to 0 as
    /// well); a few seconds covers a client's retry after a timeout.
    #[serde(with = "humantime_serde")]
    pub refresh_reuse_interval: std::time::Duration,
}

impl Default for TokensConfig {
    fn default() -> Self {
        Self {
            refresh_reuse_interval: std::time::Duration::ZERO,
        }
    }
}

impl Validate for TokensConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.refresh_reuse_interval > std::time::Duration::from_secs(300) {
            return Err(ConfigError::new(
                "refresh_reuse_interval",
                "must be at most 5m",
            ));
        }
        Ok(())
    }
}

/// The `clients` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientsConfig {
    /// How long a replica caches a client (and its secret digests) between database reads;
    /// changes made on another replica take effect within this time. `0s` disables it.
    #[serde(with = "humantime_serde")]
    pub cache_ttl: std::time::Duration,
}

impl Default for ClientsConfig {
    fn default() -> Self {
        Self {
            cache_ttl: std::time::Duration::from_secs(5),
        }
    }
}

impl Validate for ClientsConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.cache_ttl > std::time::Duration::from_secs(300) {
            return Err(ConfigError::new("cache_ttl", "must be at most 5m"));
        }
        Ok(())
    }
}

use config::{ConfigError, Validate};
use runtime::{GrpcListenConfig, LimitsConfig, ListenConfig, RuntimeConfig, ShutdownConfig};
use serde::{Deserialize, Serialize};
use storage::DatabaseConfig;
use telemetry::TelemetryConfig;
use url::Url;

/// Everything authz reads at start. Unknown keys are refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthzConfig {
    /// The issuer identifier (RFC 8414 §2): an `https` URL without query or fragment
    /// (`http` only for loopback hosts, for development). Published verbatim in discovery
    /// and used as `iss` in every token. Kept as written (no URL normalisation), so `iss`
    /// compares equal to what relying parties configured.
    pub issuer: String,
    /// Public OAuth/OIDC HTTP listener.
    pub http: ListenConfig,
    /// gRPC listener (`LoginFlow`, `Introspection`, `grpc.health.v1`).
    pub grpc: GrpcListenConfig,
    /// Admin listener (`/metrics`, `/healthz`, `/readyz`).
    pub admin: ListenConfig,
    /// Deadlines and connection caps of every listener (issue 14).
    pub limits: LimitsConfig,
    /// The authz database.
    pub database: DatabaseConfig,
    /// Signing keys.
    pub keys: KeysConfig,
    /// Client registry.
    pub clients: ClientsConfig,
    /// clientauth: client authentication by JWT assertion and mTLS.
    pub client_auth: ClientAuthConfig,
    /// Issued tokens.
    pub tokens: TokensConfig,
    /// The authorization endpoint and its codes.
    pub authorize: AuthorizeConfig,
    /// Login and consent delegated to idp; authz's browser session.
    pub login: LoginConfig,
    /// How authz reaches idp.
    pub idp: IdpConfig,
    /// logout: propagating the end of a session to relying parties.
    pub logout: LogoutConfig,
    /// The Device Authorization Grant (RFC 8628).
    pub device: DeviceConfig,
    /// The audit trail (issue 18): retention of the `audit_events` table.
    pub audit: audit::AuditConfig,
    // dcr
    /// Dynamic Client Registration (RFC 7591, RFC 7592).
    pub registration: RegistrationConfig,
    /// Pushed Authorization Requests (RFC 9126).
    pub par: ParConfig,
    /// Logs, traces, metrics.
    pub telemetry: TelemetryConfig,
    /// Draining on stop.
    pub shutdown: ShutdownConfig,
    /// Worker threads.
    pub runtime: RuntimeConfig,
}

impl Default for AuthzConfig {
    fn default() -> Self {
        Self {
            issuer: "http://localhost:8080".to_owned(),
            http: ListenConfig::loopback(8080),
            grpc: GrpcListenConfig::loopback(50051),
            admin: ListenConfig::loopback(9080),
            limits: LimitsConfig::default(),
            database: DatabaseConfig::with_url("sqlite://data/authz.db"),
            keys: KeysConfig::default(),
            clients: ClientsConfig::default(),
            // clientauth
            client_auth: ClientAuthConfig::default(),
            tokens: TokensConfig::default(),
            authorize: AuthorizeConfig::default(),
            login: LoginConfig::default(),
            idp: IdpConfig::default(),
            logout: LogoutConfig::default(),
            device: DeviceConfig::default(),
            audit: audit::AuditConfig::default(),
            // dcr
            registration: RegistrationConfig::default(),
            par: ParConfig::default(),
            telemetry: TelemetryConfig::default(),
            shutdown: ShutdownConfig::default(),
            runtime: RuntimeConfig::default(),
        }
    }
}

impl AuthzConfig {
    /// An endpoint URL under the issuer (`/.well-known/jwks.json` →
    /// `https://id.example.com/.well-known/jwks.json`).
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.issuer.trim_end_matches('/'))
    }
}

impl Validate for AuthzConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        validate_issuer(&self.issuer).map_err(|e| e.within("issuer"))?;
        config::validate_sections(&[
            ("http", &self.http),
            ("grpc", &self.grpc),
            ("admin", &self.admin),
            ("limits", &self.limits),
            ("database", &self.database),
            ("keys", &self.keys),
            ("clients", &self.clients),
            // clientauth
            ("client_auth", &self.client_auth),
            ("tokens", &self.tokens),
            ("authorize", &self.authorize),
            ("login", &self.login),
            ("idp", &self.idp),
            ("logout", &self.logout),
            ("device", &self.device),
            ("audit", &self.audit),
            // dcr
            ("registration", &self.registration),
            ("par", &self.par),
            ("telemetry", &self.telemetry),
            ("shutdown", &self.shutdown),
            ("runtime", &self.runtime),
        ])?;
        // clientauth: certificates from authz's own handshake need TLS on it.
        if self.client_auth.handshake_certificates && !self.http.tls.enabled() {
            return Err(ConfigError::new(
                "client_auth.handshake_certificates",
                "needs TLS on the http listener (http.tls.cert_file or http.tls.pkcs12_file)",
            ));
        }
        Ok(())
    }
}

/// RFC 8414 §2 / OpenID Connect Discovery §3: `https`, no query, no fragment. Plain `http`
/// is accepted for loopback hosts only, as OAuth 2.1 §1.5 allows for development.
fn validate_issuer(raw: &str) -> Result<(), ConfigError> {
    let issuer = Url::parse(raw).map_err(|e| ConfigError::new("", e.to_string()))?;
    let loopback = matches!(issuer.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match issuer.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(ConfigError::new(
                "",
                "must use https (http is allowed for localhost only)",
            ));
        }
        _ => return Err(ConfigError::new("", "must be an https URL")),
    }
    if issuer.query().is_some() || issuer.fragment().is_some() || raw.contains(['?', '#']) {
        return Err(ConfigError::new("", "must not have a query or fragment"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer_error(raw: &str) -> Option<String> {
        let c = AuthzConfig {
            issuer: raw.to_owned(),
            ..with_kek()
        };
        c.validate().err().map(|e| e.to_string())
    }

    #[test]
    fn issuer_rules() {
        assert_eq!(issuer_error("https://id.example.com"), None);
        assert!(issuer_error("not a url").unwrap().starts_with("issuer: "));
        assert_eq!(issuer_error("http://localhost:8080"), None);
        assert_eq!(issuer_error("http://127.0.0.1:8080/tenant"), None);
        assert_eq!(
            issuer_error("http://id.example.com").as_deref(),
            Some("issuer: must use https (http is allowed for localhost only)")
        );
        assert_eq!(
            issuer_error("https://id.example.com/?x=1").as_deref(),
            Some("issuer: must not have a query or fragment")
        );
        assert_eq!(
            issuer_error("ftp://id.example.com").as_deref(),
            Some("issuer: must be an https URL")
        );
    }

    fn with_kek() -> AuthzConfig {
        let mut c = AuthzConfig::default();
        c.keys.encryption_key = Some(config::Secret::new(issuer::Kek::generate_base64().unwrap()));
        c
    }

    #[test]
    fn defaults_plus_a_kek_are_valid() {
        assert!(with_kek().validate().is_ok());
        // Without a KEK the configuration loads (read-only commands need none); the
        // commands that need it ask `keys.kek()`.
        assert!(AuthzConfig::default().validate().is_ok());
        assert_eq!(
            AuthzConfig::default().keys.kek().unwrap_err().key,
            "encryption_key"
        );
    }

    #[test]
    fn key_schedule_rules() {
        let check = |f: &dyn Fn(&mut AuthzConfig)| {
            let mut c = with_kek();
            f(&mut c);
            c.validate().err().map(|e| e.key)
        };
        assert_eq!(
            check(&|c| c.keys.encryption_key = Some(config::Secret::new("c2hvcnQ=".into())))
                .as_deref(),
            Some("keys.encryption_key")
        );
        assert_eq!(
            check(&|c| c.keys.algorithms.clear()).as_deref(),
            Some("keys.algorithms")
        );
        assert_eq!(
            check(&|c| c.keys.algorithms = vec![issuer::Algorithm::ES256]).as_deref(),
            Some("keys.default_alg")
        );
        assert_eq!(
            check(&|c| c.keys.rsa_bits = 1024).as_deref(),
            Some("keys.rsa_bits")
        );
        assert_eq!(
            check(&|c| c.keys.publish_ahead = c.keys.jwks_max_age).as_deref(),
            Some("keys.publish_ahead")
        );
        assert_eq!(
            check(&|c| c.keys.rotation_period = c.keys.publish_ahead).as_deref(),
            Some("keys.rotation_period")
        );
        assert_eq!(
            check(&|c| c.keys.rotation_period = std::time::Duration::ZERO),
            None
        );
        assert_eq!(
            check(&|c| c.keys.check_interval = c.keys.publish_ahead).as_deref(),
            Some("keys.check_interval")
        );
    }

    #[test]
    fn documented_file_matches_the_compiled_defaults() {
        let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../../configs/authz.yaml");
        let kek = issuer::Kek::generate_base64().unwrap();
        let loaded: AuthzConfig = config::load_with_env(
            "authz",
            &config::ConfigSource::File(file.into()),
            vec![("AUTHZ__KEYS__ENCRYPTION_KEY".to_owned(), kek.clone())],
        )
        .unwrap();
        let mut expected = AuthzConfig::default();
        expected.keys.encryption_key = Some(config::Secret::new(kek));
        assert_eq!(loaded, expected);
    }
}

#[cfg(test)]
mod reference_tests {
    #![allow(clippy::unwrap_used)]

    /// configs/authz.yaml documents every key of the config type and no other.
    #[test]
    fn the_documented_yaml_names_exactly_the_config_keys() {
        let yaml = crate::CONFIG_REFERENCE;
        let documented = config::yaml_key_paths(yaml).unwrap();
        let actual = config::default_key_paths::<super::AuthzConfig>().unwrap();
        let missing: Vec<_> = actual.difference(&documented).collect();
        let unknown: Vec<_> = documented.difference(&actual).collect();
        assert!(
            missing.is_empty() && unknown.is_empty(),
            "configs/authz.yaml lacks {missing:?} and names unknown {unknown:?}"
        );
    }
}
