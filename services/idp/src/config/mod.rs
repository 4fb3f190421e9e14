//! The idp configuration (`configs/idp.yaml`, `IDP__…` environment variables).

// admin API (issue 18, idpadmin2)
mod admin_api;
pub use self::admin_api::AdminApiConfig;
use config::{ConfigError, Secret, Validate};
use runtime::{GrpcListenConfig, LimitsConfig, ListenConfig, RuntimeConfig, ShutdownConfig};
use serde::{Deserialize, Serialize};
use storage::DatabaseConfig;
use telemetry::TelemetryConfig;
use url::Url;

/// Everything idp reads at start. Unknown keys are refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdpConfig {
    /// The URL browsers use to reach idp's pages; cookies are `Secure` when it is https.
    pub public_url: Url,
    /// Public HTTP listener (login, consent, logout pages).
    pub http: ListenConfig,
    /// gRPC listener (`Sessions`, `grpc.health.v1`).
    pub grpc: GrpcListenConfig,
    /// Admin listener (`/metrics`, `/healthz`, `/readyz`).
    pub admin: ListenConfig,
    /// Deadlines and connection caps of every listener (issue 14).
    pub limits: LimitsConfig,
    /// The idp database.
    pub database: DatabaseConfig,
    /// Password hashing (argon2id) and policy.
    pub passwords: crate::users::PasswordConfig,
    /// Browser sessions.
    pub sessions: crate::sessions::SessionConfig,
    /// CSRF tokens of the forms.
    pub csrf: crate::csrf::CsrfConfig,
    /// Brute-force protection of the login form.
    pub login_throttle: crate::throttle::ThrottleConfig,
    /// The audit trail (issue 18): retention of the `audit_events` table.
    pub audit: audit::AuditConfig,
    /// Upstream identity providers (sign in with OpenID Connect, Google, GitHub).
    pub upstreams: crate::upstream::UpstreamsConfig,
    /// authz's `LoginFlow`, which idp calls.
    pub authz: crate::login_flow::AuthzClientConfig,
    /// Who may call idp's `Sessions` gRPC API.
    pub sessions_api: SessionsApiConfig,
    // account page
    /// The account page: username holds, retries of revocations at authz.
    pub account: crate::account::AccountConfig,
    // email, sign-up and password reset (issue 21)
    /// How idp sends email (verification, reset, notifications).
    pub mail: crate::mail::MailConfig,
    /// Self-registration with email verification (off by default).
    pub signup: crate::links::LinkFlowConfig,
    /// "Forgot password": a reset link by email (off by default).
    pub password_reset: crate::links::LinkFlowConfig,
    // admin API (issue 18, idpadmin2)
    /// The admin REST API on the admin listener: how it checks authz's access tokens.
    pub admin_api: AdminApiConfig,
    /// Logs, traces, metrics.
    pub telemetry: TelemetryConfig,
    /// Draining on stop.
    pub shutdown: ShutdownConfig,
    /// Worker threads.
    pub runtime: RuntimeConfig,
}

impl Default for IdpConfig {
    fn default() -> Self {
        Self {
            public_url: Url::parse("http://localhost:8081").unwrap_or_else(|_| unreachable!()),
            http: ListenConfig::loopback(8081),
            grpc: GrpcListenConfig::loopback(50052),
            admin: ListenConfig::loopback(9081),
            limits: LimitsConfig::default(),
            database: DatabaseConfig::with_url("sqlite://data/idp.db"),
            passwords: crate::users::PasswordConfig::default(),
            sessions: crate::sessions::SessionConfig::default(),
            csrf: crate::csrf::CsrfConfig::default(),
            login_throttle: crate::throttle::ThrottleConfig::default(),
            audit: audit::AuditConfig::default(),
            upstreams: crate::upstream::UpstreamsConfig::default(),
            authz: crate::login_flow::AuthzClientConfig::default(),
            sessions_api: SessionsApiConfig::default(),
            // account page
            account: crate::account::AccountConfig::default(),
            // email, sign-up and password reset (issue 21)
            mail: crate::mail::MailConfig::default(),
            signup: crate::links::LinkFlowConfig::signup(),
            password_reset: crate::links::LinkFlowConfig::password_reset(),
            // admin API (issue 18, idpadmin2)
            admin_api: AdminApiConfig::default(),
            telemetry: TelemetryConfig::default(),
            shutdown: ShutdownConfig::default(),
            runtime: RuntimeConfig::default(),
        }
    }
}

impl Validate for IdpConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if !matches!(self.public_url.scheme(), "http" | "https") {
            return Err(ConfigError::new(
                "public_url",
                "must be an http or https URL",
            ));
        }
        if self.public_url.query().is_some() || self.public_url.fragment().is_some() {
            return Err(ConfigError::new(
                "public_url",
                "must not have a query or fragment",
            ));
        }
        // email, sign-up and password reset (issue 21): links must reach someone.
        for (key, flow) in [
            ("signup", &self.signup),
            ("password_reset", &self.password_reset),
        ] {
            if flow.enabled && self.mail.transport == crate::mail::MailTransport::Log {
                return Err(ConfigError::new(
                    format!("{key}.enabled"),
                    "needs mail.transport smtp or file (the log transport delivers no links)",
                ));
            }
        }
        config::validate_sections(&[
            ("http", &self.http),
            ("grpc", &self.grpc),
            ("admin", &self.admin),
            ("limits", &self.limits),
            ("database", &self.database),
            ("passwords", &self.passwords),
            ("sessions", &self.sessions),
            ("csrf", &self.csrf),
            ("login_throttle", &self.login_throttle),
            ("audit", &self.audit),
            ("upstreams", &self.upstreams),
            ("authz", &self.authz),
            ("sessions_api", &self.sessions_api),
            // account page
            ("account", &self.account),
            // email, sign-up and password reset (issue 21)
            ("mail", &self.mail),
            ("signup", &self.signup),
            ("password_reset", &self.password_reset),
            // admin API (issue 18, idpadmin2)
            ("admin_api", &self.admin_api),
            ("telemetry", &self.telemetry),
            ("shutdown", &self.shutdown),
            ("runtime", &self.runtime),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_file_matches_the_compiled_defaults() {
        let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../../configs/idp.yaml");
        let loaded: IdpConfig =
            config::load_with_env("idp", &config::ConfigSource::File(file.into()), Vec::new())
                .unwrap();
        assert_eq!(loaded, IdpConfig::default());
    }
}

// email, sign-up and password reset (issue 21)
#[cfg(test)]
mod mail_flow_tests {
    use config::Validate;

    use super::IdpConfig;
    use crate::mail::MailTransport;

    /// A flow that mails links needs a transport that delivers them.
    #[test]
    fn mail_flows_need_a_delivering_transport() {
        let mut c = IdpConfig::default();
        c.password_reset.enabled = true;
        assert_eq!(c.validate().unwrap_err().key, "password_reset.enabled");
        c.password_reset.enabled = false;
        c.signup.enabled = true;
        assert_eq!(c.validate().unwrap_err().key, "signup.enabled");
        c.mail.transport = MailTransport::File;
        assert!(c.validate().is_ok());
        c.signup.per_email = 0;
        assert_eq!(c.validate().unwrap_err().key, "signup.per_email");
    }
}

#[cfg(test)]
mod reference_tests {
    #![allow(clippy::unwrap_used)]

    /// configs/idp.yaml documents every key of the config type and no other.
    #[test]
    fn the_documented_yaml_names_exactly_the_config_keys() {
        let yaml = crate::CONFIG_REFERENCE;
        let documented = config::yaml_key_paths(yaml).unwrap();
        let actual = config::default_key_paths::<super::IdpConfig>().unwrap();
        let missing: Vec<_> = actual.difference(&documented).collect();
        let unknown: Vec<_> = documented.difference(&actual).collect();
        assert!(
            missing.is_empty() && unknown.is_empty(),
            "configs/idp.yaml lacks {missing:?} and names unknown {unknown:?}"
        );
    }
}

/// The `sessions_api` section: who may call `idp.v1.Sessions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionsApiConfig {
    /// The client id authz presents.
    pub client_id: String,
    /// Its secret. Secret: give it as `client_secret_file`. Without it every call is
    /// refused (`UNAUTHENTICATED`).
    pub client_secret: Option<Secret<String>>,
}

impl Default for SessionsApiConfig {
    fn default() -> Self {
        Self {
            client_id: "authz".to_owned(),
            client_secret: None,
        }
    }
}

impl Validate for SessionsApiConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.client_id.trim().is_empty() {
            return Err(ConfigError::new("client_id", "must not be empty"));
        }
        if self
            .client_secret
            .as_ref()
            .is_some_and(|s| s.expose().len() < 16)
        {
            return Err(ConfigError::new(
                "client_secret",
                "must be at least 16 characters",
            ));
        }
        Ok(())
    }
}
