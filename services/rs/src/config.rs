//! The rs configuration (`configs/rs.yaml`, `RS__…` environment variables).

use std::time::Duration;

use config::{ConfigError, Secret, Validate};
use guard::GuardConfig;
use runtime::{LimitsConfig, ListenConfig, RuntimeConfig, ShutdownConfig};
use serde::{Deserialize, Serialize};
use telemetry::TelemetryConfig;

/// Everything rs reads at start. Unknown keys are refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RsConfig {
    /// Public API listener.
    pub http: ListenConfig,
    /// Admin listener (`/metrics`, `/healthz`, `/readyz`).
    pub admin: ListenConfig,
    /// Deadlines and connection caps of every listener (issue 14).
    pub limits: LimitsConfig,
    /// How access tokens are validated (the `guard` crate).
    pub guard: GuardConfig,
    /// The in-memory item store of the demo API.
    pub items: ItemsConfig,
    /// Token exchange (RFC 8693): `/api/v1/delegate` calls `/api/v1/downstream` with an
    /// exchanged token.
    pub exchange: ExchangeConfig,
    /// Logs, traces, metrics.
    pub telemetry: TelemetryConfig,
    /// Draining on stop.
    pub shutdown: ShutdownConfig,
    /// Worker threads.
    pub runtime: RuntimeConfig,
}

impl Default for RsConfig {
    fn default() -> Self {
        Self {
            http: ListenConfig::loopback(8082),
            admin: ListenConfig::loopback(9082),
            limits: LimitsConfig::default(),
            guard: GuardConfig {
                realm: "rs".to_owned(),
                ..GuardConfig::default()
            },
            items: ItemsConfig::default(),
            exchange: ExchangeConfig::default(),
            telemetry: TelemetryConfig::default(),
            shutdown: ShutdownConfig::default(),
            runtime: RuntimeConfig::default(),
        }
    }
}

impl Validate for RsConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        config::validate_sections(&[
            ("http", &self.http),
            ("admin", &self.admin),
            ("limits", &self.limits),
            ("guard", &self.guard),
            ("items", &self.items),
            ("exchange", &self.exchange),
            ("telemetry", &self.telemetry),
            ("shutdown", &self.shutdown),
            ("runtime", &self.runtime),
        ])
    }
}

/// The `items` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemsConfig {
    /// Most items kept in memory; creating more answers 507.
    pub capacity: usize,
    /// Most items one token subject (`sub`) may create; creating more answers 403
    /// `quota_exceeded`, so one token cannot fill the store for everyone. At most
    /// `capacity`. The default, a tenth of the default capacity, takes ten subjects to
    /// fill the store.
    pub max_per_subject: usize,
}

impl Default for ItemsConfig {
    fn default() -> Self {
        Self {
            capacity: 1000,
            max_per_subject: 100,
        }
    }
}

impl Validate for ItemsConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.capacity == 0 || self.capacity > 1_000_000 {
            return Err(ConfigError::new(
                "capacity",
                "must be between 1 and 1000000",
            ));
        }
        if self.max_per_subject == 0 || self.max_per_subject > self.capacity {
            return Err(ConfigError::new(
                "max_per_subject",
                "must be between 1 and items.capacity",
            ));
        }
        Ok(())
    }
}

/// The `exchange` section: how rs obtains a token for its downstream route by RFC 8693
/// token exchange, with its own client credentials (a client allowed the token-exchange
/// grant, with the downstream audience in its exchange policy).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangeConfig {
    /// Serve `/api/v1/delegate` and `/api/v1/downstream`.
    pub enabled: bool,
    /// The authorization server's token endpoint; `None`:
    /// `<guard.jwks.backchannel_url or guard.issuer>/token`.
    pub token_endpoint: Option<String>,
    /// rs's client id at the authorization server.
    pub client_id: Option<String>,
    /// Its secret; give it as `client_secret_file`.
    pub client_secret: Option<Secret<String>>,
    /// The audience of the exchanged token (RFC 8693 §2.1 `audience`), which the
    /// downstream route requires.
    pub audience: String,
    /// The scope asked for (space-separated); `None`: what the subject token has and the
    /// policy allows.
    pub scope: Option<String>,
    /// Where the downstream route is called; `None`: this rs's own
    /// `/api/v1/downstream` on its bound address.
    pub downstream_url: Option<String>,
    /// Deadline of each token and downstream request.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for ExchangeConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            token_endpoint: None,
            client_id: None,
            client_secret: None,
            audience: "http://localhost:8082/downstream".to_owned(),
            scope: None,
            downstream_url: None,
            timeout: Duration::from_secs(5),
        }
    }
}

impl ExchangeConfig {
    /// The token endpoint to call (see [`ExchangeConfig::token_endpoint`]).
    pub fn token_endpoint_for(&self, guard: &GuardConfig) -> String {
        match &self.token_endpoint {
            Some(t) => t.clone(),
            None => {
                let base = guard
                    .jwks
                    .backchannel_url
                    .as_deref()
                    .unwrap_or(&guard.issuer);
                format!("{}/token", base.trim_end_matches('/'))
            }
        }
    }
}

fn http_url(u: &str) -> bool {
    url::Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}

impl Validate for ExchangeConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.audience.is_empty() || self.audience.chars().any(char::is_whitespace) {
            return Err(ConfigError::new(
                "audience",
                "must be non-empty without spaces",
            ));
        }
        for (key, value) in [
            ("token_endpoint", &self.token_endpoint),
            ("downstream_url", &self.downstream_url),
        ] {
            if value.as_deref().is_some_and(|u| !http_url(u)) {
                return Err(ConfigError::new(key, "must be an http(s) URL"));
            }
        }
        if self.timeout.is_zero() {
            return Err(ConfigError::new("timeout", "must be positive"));
        }
        if self.enabled {
            if self.client_id.as_deref().is_none_or(str::is_empty) {
                return Err(ConfigError::new(
                    "client_id",
                    "is required when exchange.enabled is true",
                ));
            }
            if self.client_secret.is_none() {
                return Err(ConfigError::new(
                    "client_secret",
                    "is required when exchange.enabled is true (client_secret_file)",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_file_matches_the_compiled_defaults() {
        let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../../configs/rs.yaml");
        let loaded: RsConfig =
            config::load_with_env("rs", &config::ConfigSource::File(file.into()), Vec::new())
                .unwrap();
        assert_eq!(loaded, RsConfig::default());
    }

    #[test]
    fn guard_problems_name_the_key_and_secrets_come_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "s3cret\n").unwrap();
        let load = |env: &[(&str, &str)]| {
            config::load_with_env::<RsConfig, _>(
                "rs",
                &config::ConfigSource::None,
                env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
            )
        };
        let err = load(&[("RS__GUARD__MODE", "introspection")]).unwrap_err();
        assert_eq!(err.key, "guard.introspection.client_id");
        let err = load(&[("RS__GUARD__MODE", "sideways")]).unwrap_err();
        assert_eq!(err.key, "guard.mode");
        let err = load(&[("RS__GUARD__ISSUER", "http://id.example.com")]).unwrap_err();
        assert_eq!(err.key, "guard.issuer");
        let err = load(&[("RS__ITEMS__CAPACITY", "0")]).unwrap_err();
        assert_eq!(err.key, "items.capacity");
        let err = load(&[("RS__ITEMS__MAX_PER_SUBJECT", "1001")]).unwrap_err();
        assert_eq!(err.key, "items.max_per_subject");
        let err = load(&[("RS__EXCHANGE__ENABLED", "true")]).unwrap_err();
        assert_eq!(err.key, "exchange.client_id");
        let err = load(&[
            ("RS__EXCHANGE__ENABLED", "true"),
            ("RS__EXCHANGE__CLIENT_ID", "rs"),
        ])
        .unwrap_err();
        assert_eq!(err.key, "exchange.client_secret");
        let err = load(&[("RS__EXCHANGE__DOWNSTREAM_URL", "ftp://x")]).unwrap_err();
        assert_eq!(err.key, "exchange.downstream_url");
        let err = load(&[("RS__EXCHANGE__TIMEOUT", "0s")]).unwrap_err();
        assert_eq!(err.key, "exchange.timeout");
        let loaded = load(&[
            ("RS__EXCHANGE__ENABLED", "true"),
            ("RS__EXCHANGE__CLIENT_ID", "rs"),
            ("RS__EXCHANGE__CLIENT_SECRET_FILE", secret.to_str().unwrap()),
        ])
        .unwrap();
        assert_eq!(
            loaded
                .exchange
                .client_secret
                .as_ref()
                .map(|s| s.expose().as_str()),
            Some("s3cret")
        );
        assert_eq!(
            loaded.exchange.token_endpoint_for(&loaded.guard),
            "http://localhost:8080/token"
        );
        let loaded = load(&[
            ("RS__GUARD__MODE", "hybrid"),
            ("RS__GUARD__INTROSPECTION__CLIENT_ID", "rs"),
            (
                "RS__GUARD__INTROSPECTION__CLIENT_SECRET_FILE",
                secret.to_str().unwrap(),
            ),
        ])
        .unwrap();
        assert_eq!(loaded.guard.mode, guard::Mode::Hybrid);
        assert_eq!(
            loaded
                .guard
                .introspection
                .client_secret
                .as_ref()
                .map(|s| s.expose().as_str()),
            Some("s3cret")
        );
        assert!(!format!("{loaded:?}").contains("s3cret"));
    }
}

#[cfg(test)]
mod reference_tests {
    #![allow(clippy::unwrap_used)]

    /// configs/rs.yaml documents every key of the config type and no other.
    #[test]
    fn the_documented_yaml_names_exactly_the_config_keys() {
        let yaml = crate::CONFIG_REFERENCE;
        let documented = config::yaml_key_paths(yaml).unwrap();
        let actual = config::default_key_paths::<super::RsConfig>().unwrap();
        let missing: Vec<_> = actual.difference(&documented).collect();
        let unknown: Vec<_> = documented.difference(&actual).collect();
        assert!(
            missing.is_empty() && unknown.is_empty(),
            "configs/rs.yaml lacks {missing:?} and names unknown {unknown:?}"
        );
    }
}
