//! The authz configuration (`configs/authz.yaml`, `AUTHZ__…` environment variables).

use config::{ConfigError, Validate};
use runtime::{ListenConfig, RuntimeConfig, ShutdownConfig};
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
    /// and used as `iss` in every token.
    pub issuer: Url,
    /// Public OAuth/OIDC HTTP listener.
    pub http: ListenConfig,
    /// gRPC listener (`LoginFlow`, `Introspection`, `grpc.health.v1`).
    pub grpc: ListenConfig,
    /// Admin listener (`/metrics`, `/healthz`, `/readyz`).
    pub admin: ListenConfig,
    /// The authz database.
    pub database: DatabaseConfig,
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
            issuer: Url::parse("http://localhost:8080").unwrap_or_else(|_| unreachable!()),
            http: ListenConfig::loopback(8080),
            grpc: ListenConfig::loopback(50051),
            admin: ListenConfig::loopback(9080),
            database: DatabaseConfig::with_url("sqlite://data/authz.db"),
            telemetry: TelemetryConfig::default(),
            shutdown: ShutdownConfig::default(),
            runtime: RuntimeConfig::default(),
        }
    }
}

impl Validate for AuthzConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        validate_issuer(&self.issuer).map_err(|e| e.within("issuer"))?;
        self.http.validate().map_err(|e| e.within("http"))?;
        self.grpc.validate().map_err(|e| e.within("grpc"))?;
        self.admin.validate().map_err(|e| e.within("admin"))?;
        self.database.validate().map_err(|e| e.within("database"))?;
        self.telemetry
            .validate()
            .map_err(|e| e.within("telemetry"))?;
        self.shutdown.validate().map_err(|e| e.within("shutdown"))?;
        self.runtime.validate().map_err(|e| e.within("runtime"))?;
        Ok(())
    }
}

/// RFC 8414 §2 / OpenID Connect Discovery §3: `https`, no query, no fragment. Plain `http`
/// is accepted for loopback hosts only, as OAuth 2.1 §1.5 allows for development.
fn validate_issuer(issuer: &Url) -> Result<(), ConfigError> {
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
    if issuer.query().is_some() || issuer.fragment().is_some() {
        return Err(ConfigError::new("", "must not have a query or fragment"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer_error(raw: &str) -> Option<String> {
        let c = AuthzConfig {
            issuer: Url::parse(raw).unwrap(),
            ..AuthzConfig::default()
        };
        c.validate().err().map(|e| e.to_string())
    }

    #[test]
    fn issuer_rules() {
        assert_eq!(issuer_error("https://id.example.com"), None);
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

    #[test]
    fn defaults_are_valid() {
        assert!(AuthzConfig::default().validate().is_ok());
    }

    #[test]
    fn documented_file_matches_the_compiled_defaults() {
        let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../../configs/authz.yaml");
        let loaded: AuthzConfig = config::load_with_env(
            "authz",
            &config::ConfigSource::File(file.into()),
            Vec::new(),
        )
        .unwrap();
        assert_eq!(loaded, AuthzConfig::default());
    }
}
