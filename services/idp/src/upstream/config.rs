//! The `upstreams` section: identity providers users may sign in with instead of a
//! password (identity brokering, as Keycloak's "identity providers").

use std::collections::BTreeMap;
use std::time::Duration;

use config::{ConfigError, Secret, Validate};
use serde::{Deserialize, Serialize};
use url::Url;

/// The `upstreams` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamsConfig {
    /// Deadline of each call to an upstream (discovery, JWKS, token, user info).
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// How long a user has to finish at the upstream, and then the first-login setup.
    #[serde(with = "humantime_serde")]
    pub flow_lifetime: Duration,
    /// The providers, by id (`a-z`, `0-9`, `-`; the id is part of the callback URL
    /// `{public_url}upstream/{id}/callback` and of `kc_idp_hint`). Buttons are shown in id
    /// order.
    pub providers: BTreeMap<String, ProviderConfig>,
    /// AES-256-GCM key that seals the upstream tokens of providers with `store_tokens`:
    /// base64 of 32 random bytes (`openssl rand -base64 32`). Required when a provider
    /// stores tokens; checked at start. Secret: give it as `token_key_file`.
    pub token_key: Option<Secret<String>>,
}

impl Default for UpstreamsConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            flow_lifetime: Duration::from_secs(600),
            providers: BTreeMap::new(),
            token_key: None,
        }
    }
}

/// What kind of upstream a provider is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// Any OpenID Connect provider, found through discovery (`issuer` required).
    Oidc,
    /// Google: OpenID Connect with the issuer `https://accounts.google.com`.
    Google,
    /// GitHub: OAuth 2.0 plus its REST API (`/user`, `/user/emails`).
    Github,
}

/// Which upstream claims fill the local account at first login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimMapping {
    /// The claim proposed as username in the setup step.
    pub username: String,
    /// The email claim (trusted only with a true `email_verified`).
    pub email: String,
    /// The display name claim.
    pub name: String,
}

impl Default for ClaimMapping {
    fn default() -> Self {
        Self {
            username: "preferred_username".to_owned(),
            email: "email".to_owned(),
            name: "name".to_owned(),
        }
    }
}

/// One upstream identity provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// `oidc`, `google` or `github`.
    pub kind: ProviderKind,
    /// The button text: "Sign in with {display_name}".
    pub display_name: String,
    /// Optional button icon: a `data:image/…` URL (pages load nothing from elsewhere).
    pub icon: Option<String>,
    /// The OpenID issuer (`oidc`; `google` defaults to `https://accounts.google.com`).
    pub issuer: Option<Url>,
    /// The client idp is registered as at the upstream.
    pub client_id: String,
    /// Its secret. Secret: give it as `client_secret_file`.
    pub client_secret: Option<Secret<String>>,
    /// Scopes requested (default: `openid email profile`; GitHub: `read:user user:email`).
    pub scopes: Option<Vec<String>>,
    /// Claim mapping (OIDC claims; GitHub's `login`, `email`, `name` are mapped built in).
    #[serde(default)]
    pub claims: ClaimMapping,
    /// GitHub only: the web endpoint base (default `https://github.com`).
    pub github_url: Option<Url>,
    /// GitHub only: the REST API base (default `https://api.github.com`).
    pub github_api_url: Option<Url>,
    /// A PEM bundle the upstream's https certificate may also chain to (a private CA);
    /// the system's roots are trusted either way.
    pub ca_file: Option<std::path::PathBuf>,
    /// OpenID providers only: where idp reaches the issuer when the issuer URL (what
    /// browsers use) is not reachable from it, e.g. `https://corp-authz:8180` inside a
    /// container network. Discovery is read from
    /// `<backchannel_url>/.well-known/openid-configuration`, and its token, JWKS and
    /// UserInfo endpoints below the issuer are called below this URL instead; the
    /// authorization endpoint (a browser redirect) is kept, and `issuer` is still what the
    /// discovery document and ID tokens must name (OpenID Connect Discovery 1.0 §4.3).
    /// https, or http for loopback hosts and single-label service names.
    pub backchannel_url: Option<Url>,
    /// Keep the upstream's access, refresh and ID tokens of each sign-in, sealed with
    /// `upstreams.token_key` (AES-256-GCM) and replaced on each sign-in, with the linked
    /// identity (deleted when it is unlinked or the account is deleted). Off: nothing is
    /// kept.
    #[serde(default)]
    pub store_tokens: bool,
}

impl Default for ProviderConfig {
    fn default() -> Self {
        Self {
            kind: ProviderKind::Oidc,
            display_name: String::new(),
            icon: None,
            issuer: None,
            client_id: String::new(),
            client_secret: None,
            scopes: None,
            claims: ClaimMapping::default(),
            github_url: None,
            github_api_url: None,
            ca_file: None,
            backchannel_url: None,
            store_tokens: false,
        }
    }
}

/// Google's issuer identifier (its discovery document's `issuer`).
pub(crate) const GOOGLE_ISSUER: &str = "https://accounts.google.com";
/// GitHub's web base.
pub(crate) const GITHUB_URL: &str = "https://github.com";
/// GitHub's REST API base.
pub(crate) const GITHUB_API_URL: &str = "https://api.github.com";

fn http_url(key: &str, url: &Url) -> Result<(), ConfigError> {
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ConfigError::new(key, "must be an http or https URL"));
    }
    if url.scheme() == "http" && !config::is_local_http_url(url.as_str()) {
        return Err(ConfigError::new(
            key,
            "must be https (plain http only for a loopback or local address)",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::new(key, "must not have a query or fragment"));
    }
    Ok(())
}

/// A back-channel URL: https, or http for loopback hosts and single-label host names (a
/// container or cluster service name); no query or fragment.
fn backchannel_url(key: &str, url: &Url) -> Result<(), ConfigError> {
    let private = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost") || !d.contains('.'),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err(ConfigError::new(key, "must be an http or https URL")),
    };
    match url.scheme() {
        "https" => {}
        "http" if private => {}
        "http" => {
            return Err(ConfigError::new(
                key,
                "must be https (plain http only for loopback hosts and single-label service names)",
            ));
        }
        _ => return Err(ConfigError::new(key, "must be an http or https URL")),
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::new(key, "must not have a query or fragment"));
    }
    Ok(())
}

impl ProviderConfig {
    /// The issuer to discover: configured, or Google's for `google`.
    pub(crate) fn issuer(&self) -> Option<Url> {
        match (&self.issuer, self.kind) {
            (Some(issuer), _) => Some(issuer.clone()),
            (None, ProviderKind::Google) => Url::parse(GOOGLE_ISSUER).ok(),
            (None, _) => None,
        }
    }

    /// The scopes requested at the upstream.
    pub(crate) fn scopes(&self) -> Vec<String> {
        match (&self.scopes, self.kind) {
            (Some(scopes), _) => scopes.clone(),
            (None, ProviderKind::Github) => vec!["read:user".to_owned(), "user:email".to_owned()],
            (None, _) => ["openid", "email", "profile"].map(str::to_owned).to_vec(),
        }
    }

    fn validate_provider(&self) -> Result<(), ConfigError> {
        if self.display_name.trim().is_empty() || self.display_name.len() > 64 {
            return Err(ConfigError::new("display_name", "must be 1-64 characters"));
        }
        if let Some(icon) = &self.icon
            && (!icon.starts_with("data:image/") || icon.len() > 16 * 1024)
        {
            return Err(ConfigError::new(
                "icon",
                "must be a data:image/… URL of at most 16 KiB",
            ));
        }
        if self.client_id.trim().is_empty() {
            return Err(ConfigError::new("client_id", "must not be empty"));
        }
        if self
            .client_secret
            .as_ref()
            .is_none_or(|s| s.expose().trim().is_empty())
        {
            return Err(ConfigError::new(
                "client_secret",
                "is required (give it as client_secret_file)",
            ));
        }
        match self.kind {
            ProviderKind::Oidc | ProviderKind::Google => {
                let Some(issuer) = self.issuer() else {
                    return Err(ConfigError::new("issuer", "is required for kind oidc"));
                };
                http_url("issuer", &issuer)?;
                if !self.scopes().iter().any(|s| s == "openid") {
                    return Err(ConfigError::new("scopes", "must include openid"));
                }
                if self.github_url.is_some() || self.github_api_url.is_some() {
                    return Err(ConfigError::new("github_url", "is only for kind github"));
                }
                if let Some(url) = &self.backchannel_url {
                    backchannel_url("backchannel_url", url)?;
                }
            }
            ProviderKind::Github => {
                if self.issuer.is_some() {
                    return Err(ConfigError::new("issuer", "is not used by kind github"));
                }
                if self.backchannel_url.is_some() {
                    return Err(ConfigError::new(
                        "backchannel_url",
                        "is only for OpenID providers (github: set github_url, github_api_url)",
                    ));
                }
                for (key, url) in [
                    ("github_url", &self.github_url),
                    ("github_api_url", &self.github_api_url),
                ] {
                    if let Some(url) = url {
                        http_url(key, url)?;
                    }
                }
            }
        }
        if self.scopes().iter().any(|s| {
            s.is_empty()
                || s.chars()
                    .any(|c| c.is_whitespace() || c == '"' || c == '\\')
        }) {
            return Err(ConfigError::new(
                "scopes",
                "must be scope tokens (RFC 6749 §3.3)",
            ));
        }
        for (key, claim) in [
            ("username", &self.claims.username),
            ("email", &self.claims.email),
            ("name", &self.claims.name),
        ] {
            if claim.trim().is_empty() {
                return Err(ConfigError::new(key, "must not be empty").within("claims"));
            }
        }
        Ok(())
    }
}

/// The reason a token key was refused, without the key.
fn key_problem(e: &issuer::IssuerError) -> String {
    match e {
        issuer::IssuerError::Kek(why) => why.clone(),
        _ => "must be base64 of 32 random bytes".to_owned(),
    }
}

/// Whether `id` is a usable provider id.
pub(crate) fn valid_id(id: &str) -> bool {
    (1..=32).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl Validate for UpstreamsConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.timeout < Duration::from_millis(100) || self.timeout > Duration::from_secs(60) {
            return Err(ConfigError::new("timeout", "must be between 100ms and 60s"));
        }
        if self.flow_lifetime < Duration::from_secs(60)
            || self.flow_lifetime > Duration::from_secs(3600)
        {
            return Err(ConfigError::new(
                "flow_lifetime",
                "must be between 1m and 1h",
            ));
        }
        for (id, provider) in &self.providers {
            if !valid_id(id) {
                return Err(ConfigError::new(
                    format!("providers.{id}"),
                    "a provider id must be 1-32 characters of a-z, 0-9, '-'",
                ));
            }
            provider
                .validate_provider()
                .map_err(|e| e.within(&format!("providers.{id}")))?;
        }
        match &self.token_key {
            Some(key) => {
                issuer::Kek::from_base64(key.expose())
                    .map_err(|e| ConfigError::new("token_key", key_problem(&e)))?;
            }
            None if self.providers.values().any(|p| p.store_tokens) => {
                return Err(ConfigError::new(
                    "token_key",
                    "is required when a provider has store_tokens: true (give it as token_key_file)",
                ));
            }
            None => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oidc() -> ProviderConfig {
        ProviderConfig {
            kind: ProviderKind::Oidc,
            display_name: "Corp".into(),
            issuer: Some(Url::parse("https://sso.example.com").unwrap()),
            client_id: "idp".into(),
            client_secret: Some(Secret::new("s3cret".into())),
            ..ProviderConfig::default()
        }
    }

    fn with(provider: ProviderConfig) -> UpstreamsConfig {
        UpstreamsConfig {
            providers: BTreeMap::from([("corp".to_owned(), provider)]),
            ..UpstreamsConfig::default()
        }
    }

    #[test]
    fn bad_providers_name_their_key() {
        assert!(with(oidc()).validate().is_ok());
        let cases: Vec<(ProviderConfig, &str)> = vec![
            (
                ProviderConfig {
                    issuer: None,
                    ..oidc()
                },
                "upstreams.providers.corp.issuer",
            ),
            (
                ProviderConfig {
                    client_secret: None,
                    ..oidc()
                },
                "upstreams.providers.corp.client_secret",
            ),
            (
                ProviderConfig {
                    issuer: Some(Url::parse("http://sso.example.com").unwrap()),
                    ..oidc()
                },
                "upstreams.providers.corp.issuer",
            ),
            (
                ProviderConfig {
                    scopes: Some(vec!["email".into()]),
                    ..oidc()
                },
                "upstreams.providers.corp.scopes",
            ),
            (
                ProviderConfig {
                    icon: Some("https://cdn.example.com/x.png".into()),
                    ..oidc()
                },
                "upstreams.providers.corp.icon",
            ),
            (
                ProviderConfig {
                    kind: ProviderKind::Github,
                    ..oidc()
                },
                "upstreams.providers.corp.issuer",
            ),
        ];
        for (provider, key) in cases {
            let e = with(provider).validate().unwrap_err().within("upstreams");
            assert_eq!(e.key, key);
        }
        let mut bad_id = with(oidc());
        let p = bad_id.providers.remove("corp").unwrap();
        bad_id.providers.insert("Corp SSO".into(), p);
        assert!(bad_id.validate().is_err());
        // Google needs no issuer; GitHub no issuer and default scopes.
        let google = ProviderConfig {
            kind: ProviderKind::Google,
            issuer: None,
            ..oidc()
        };
        assert!(with(google.clone()).validate().is_ok());
        assert_eq!(
            google.issuer().unwrap().as_str(),
            "https://accounts.google.com/"
        );
        let github = ProviderConfig {
            kind: ProviderKind::Github,
            issuer: None,
            ..oidc()
        };
        assert!(with(github.clone()).validate().is_ok());
        assert_eq!(github.scopes(), vec!["read:user", "user:email"]);
    }

    /// A provider given without the optional keys (as `make demo` and compose give it,
    /// through environment variables) loads with their defaults.
    #[test]
    fn optional_provider_keys_may_be_left_out() {
        let provider: ProviderConfig = serde_json::from_value(serde_json::json!({
            "kind": "oidc",
            "display_name": "Corp",
            "issuer": "https://sso.example.com",
            "client_id": "idp",
            "client_secret": "s3cret",
        }))
        .unwrap();
        assert!(!provider.store_tokens);
        assert_eq!(provider.backchannel_url, None);
        assert_eq!(provider.claims, ClaimMapping::default());
    }

    #[test]
    fn token_key_and_backchannel_name_their_key() {
        let key_of = |c: UpstreamsConfig| c.validate().unwrap_err().within("upstreams").key;
        let storing = with(ProviderConfig {
            store_tokens: true,
            ..oidc()
        });
        assert_eq!(key_of(storing.clone()), "upstreams.token_key");
        for bad in ["not base64 !", "c2hvcnQ="] {
            let c = UpstreamsConfig {
                token_key: Some(Secret::new(bad.into())),
                ..storing.clone()
            };
            assert_eq!(key_of(c), "upstreams.token_key");
        }
        let good = UpstreamsConfig {
            token_key: Some(Secret::new(
                "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=".into(),
            )),
            ..storing
        };
        assert!(good.validate().is_ok());
        for ok in [
            "https://sso.internal",
            "http://corp-authz:8180",
            "http://127.0.0.1:9",
        ] {
            let c = with(ProviderConfig {
                backchannel_url: Some(Url::parse(ok).unwrap()),
                ..oidc()
            });
            assert!(c.validate().is_ok(), "{ok}");
        }
        for bad in ["http://sso.example.com", "https://sso.internal/?x=1"] {
            let c = with(ProviderConfig {
                backchannel_url: Some(Url::parse(bad).unwrap()),
                ..oidc()
            });
            assert_eq!(
                key_of(c),
                "upstreams.providers.corp.backchannel_url",
                "{bad}"
            );
        }
        let github = with(ProviderConfig {
            kind: ProviderKind::Github,
            issuer: None,
            backchannel_url: Some(Url::parse("https://gh.internal").unwrap()),
            ..oidc()
        });
        assert_eq!(key_of(github), "upstreams.providers.corp.backchannel_url");
    }
}
