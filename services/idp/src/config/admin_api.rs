//! The `admin_api` section: how idp's admin API checks the access tokens authz issues.

use std::path::PathBuf;

use config::{ConfigError, Validate};
use serde::{Deserialize, Serialize};

/// How idp verifies admin access tokens: RFC 9068 JWT access tokens from authz, checked
/// locally against authz's JWKS (found through its discovery document, OpenID Connect
/// Discovery 1.0 §4), with no call to authz per request. Admin clients must therefore get
/// JWT access tokens (authz's default `access_token_format`; `demo-admin` has it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminApiConfig {
    /// Serve `/admin/v1/...`, `/admin/docs` on the admin listener.
    pub enabled: bool,
    /// authz's issuer identifier: every token's `iss` must equal it (RFC 9068 §4).
    pub issuer: String,
    /// A token's `aud` must contain this; `None`: the issuer (what authz puts in the tokens
    /// of clients that have no audiences of their own, such as `demo-admin`).
    pub audience: Option<String>,
    /// Where to reach authz for discovery and JWKS when the issuer URL is not reachable
    /// from idp (e.g. `http://authz:8080` inside a container network).
    pub backchannel_url: Option<String>,
    /// PEM bundle of extra CAs trusted for discovery and JWKS over https.
    pub ca_file: Option<PathBuf>,
    /// The token endpoint Swagger UI's "Authorize" uses (client credentials); `None`:
    /// `<issuer>/token`.
    pub token_url: Option<String>,
}

impl Default for AdminApiConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            issuer: "http://localhost:8080".to_owned(),
            audience: None,
            backchannel_url: None,
            ca_file: None,
            token_url: None,
        }
    }
}

impl AdminApiConfig {
    /// The guard's configuration: `jwt` mode against authz, realm `idp-admin`.
    pub fn guard(&self) -> guard::GuardConfig {
        let mut c = guard::GuardConfig::jwt(
            self.issuer.clone(),
            self.audience.clone().unwrap_or_else(|| self.issuer.clone()),
        );
        c.realm = "idp-admin".to_owned();
        c.jwks.backchannel_url.clone_from(&self.backchannel_url);
        c.jwks.ca_file.clone_from(&self.ca_file);
        c
    }

    /// Swagger UI's token endpoint.
    pub fn token_url(&self) -> String {
        self.token_url
            .clone()
            .unwrap_or_else(|| format!("{}/token", self.issuer.trim_end_matches('/')))
    }
}

impl Validate for AdminApiConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if !self.enabled {
            return Ok(());
        }
        if let Some(url) = &self.token_url {
            let ok = url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
            if !ok {
                return Err(ConfigError::new("token_url", "must be an http(s) URL"));
            }
        }
        // The guard names its own keys; the ones under `jwks.` are top-level here.
        self.guard().validate().map_err(|mut e| {
            if let Some(rest) = e.key.strip_prefix("jwks.") {
                e.key = rest.to_owned();
            }
            e
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_name_the_key() {
        assert!(AdminApiConfig::default().validate().is_ok());
        let bad = |f: fn(&mut AdminApiConfig)| {
            let mut c = AdminApiConfig::default();
            f(&mut c);
            c.validate().unwrap_err().key
        };
        assert_eq!(bad(|c| c.issuer = "ftp://x".into()), "issuer");
        assert_eq!(
            bad(|c| c.issuer = "http://authz.example.com".into()),
            "issuer"
        );
        assert_eq!(bad(|c| c.audience = Some(" ".into())), "audience");
        assert_eq!(
            bad(|c| c.backchannel_url = Some("http://authz.example.com".into())),
            "backchannel_url"
        );
        assert_eq!(
            bad(|c| c.ca_file = Some("/nonexistent/ca.pem".into())),
            "ca_file"
        );
        assert_eq!(bad(|c| c.token_url = Some("nope".into())), "token_url");
        let mut off = AdminApiConfig {
            enabled: false,
            ..AdminApiConfig::default()
        };
        off.issuer = "nope".into();
        assert!(off.validate().is_ok());
    }
}
