//! The wire shapes of clients in the admin API: field names of RFC 7591 §2 client metadata
//! where one exists (`client_name`, `token_endpoint_auth_method`, `redirect_uris`, …), and
//! the checks every client passes before it is stored, each naming its field.

use admin_api::AdminError;
use domain::{AccessTokenFormat, ClientId, GrantType, ScopeSet, TokenEndpointAuthMethod};
use issuer::Algorithm;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::clients::{Client, Secret, TokenExchangePolicy, logout_uri_problem, origin_of};

/// A client as the admin API shows it (never a secret).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct ClientView {
    /// `client_id`.
    pub(crate) client_id: String,
    /// Display name.
    pub(crate) client_name: String,
    /// `client_secret_basic`, `client_secret_post` or `none` (public client).
    pub(crate) token_endpoint_auth_method: String,
    /// Grant types the client may use.
    pub(crate) grant_types: Vec<String>,
    /// Scopes the client may request, space-separated.
    pub(crate) scope: String,
    /// Exact redirect URIs.
    pub(crate) redirect_uris: Vec<String>,
    /// Exact post-logout redirect URIs.
    pub(crate) post_logout_redirect_uris: Vec<String>,
    /// Resource indicators (RFC 8707) the client may ask tokens for.
    pub(crate) audiences: Vec<String>,
    /// `jwt` (RFC 9068) or `opaque`.
    pub(crate) access_token_format: String,
    /// Access token lifetime, seconds.
    pub(crate) access_token_ttl: i64,
    /// Refresh token lifetime, seconds.
    pub(crate) refresh_token_ttl: i64,
    /// ID token lifetime, seconds.
    pub(crate) id_token_ttl: i64,
    /// Signing algorithm of the client's tokens; absent: the server default.
    pub(crate) signing_alg: Option<String>,
    /// May skip consent.
    pub(crate) first_party: bool,
    /// May call the introspection endpoints.
    pub(crate) introspect: bool,
    /// Origins allowed to call the token, userinfo and revocation endpoints from browsers.
    pub(crate) allowed_origins: Vec<String>,
    /// Back-Channel Logout 1.0 endpoint.
    pub(crate) backchannel_logout_uri: Option<String>,
    /// Back-Channel Logout 1.0 `backchannel_logout_session_required`.
    pub(crate) backchannel_logout_session_required: bool,
    /// Front-Channel Logout 1.0 endpoint.
    pub(crate) frontchannel_logout_uri: Option<String>,
    /// Front-Channel Logout 1.0 `frontchannel_logout_session_required`.
    pub(crate) frontchannel_logout_session_required: bool,
    /// Token exchange (RFC 8693) policy.
    pub(crate) token_exchange: TokenExchangeView,
    /// Creation time, Unix seconds.
    pub(crate) created_at: i64,
    /// Last change, Unix seconds.
    pub(crate) updated_at: i64,
    /// The revision (also the `ETag`, quoted).
    pub(crate) revision: i64,
    /// The client's secrets (their times only), on single-client responses.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub(crate) secrets: Option<Vec<SecretView>>,
    /// The new secret: only in the response that created it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub(crate) client_secret: Option<String>,
}

/// A client's token exchange policy (RFC 8693).
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct TokenExchangeView {
    /// Audiences the client may exchange tokens for (the first is the default).
    pub(crate) audiences: Vec<String>,
    /// Most scopes an exchanged token may carry, space-separated.
    pub(crate) scope: String,
    /// May exchange without an actor token (impersonation).
    pub(crate) impersonate: bool,
}

/// A secret's lifetime (its value is never shown again).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct SecretView {
    /// Creation time, Unix seconds.
    pub(crate) created_at: i64,
    /// When it stops being accepted; absent: until rotated.
    pub(crate) expires_at: Option<i64>,
}

impl ClientView {
    /// The view of `c` at `revision`.
    pub(crate) fn new(c: &Client, revision: i64) -> Self {
        Self {
            client_id: c.id.as_str().to_owned(),
            client_name: c.name.clone(),
            token_endpoint_auth_method: c.auth_method.as_str().to_owned(),
            grant_types: c
                .grant_types
                .iter()
                .map(|g| g.as_str().to_owned())
                .collect(),
            scope: c.scopes.to_string(),
            redirect_uris: c.redirect_uris.clone(),
            post_logout_redirect_uris: c.post_logout_redirect_uris.clone(),
            audiences: c.audiences.clone(),
            access_token_format: c.access_token_format.as_str().to_owned(),
            access_token_ttl: c.access_token_ttl,
            refresh_token_ttl: c.refresh_token_ttl,
            id_token_ttl: c.id_token_ttl,
            signing_alg: c.signing_alg.map(|a| a.as_str().to_owned()),
            first_party: c.first_party,
            introspect: c.can_introspect,
            allowed_origins: c.allowed_origins.clone(),
            backchannel_logout_uri: c.backchannel_logout_uri.clone(),
            backchannel_logout_session_required: c.backchannel_logout_session_required,
            frontchannel_logout_uri: c.frontchannel_logout_uri.clone(),
            frontchannel_logout_session_required: c.frontchannel_logout_session_required,
            token_exchange: TokenExchangeView {
                audiences: c.token_exchange.audiences.clone(),
                scope: c.token_exchange.scopes.to_string(),
                impersonate: c.token_exchange.impersonate,
            },
            created_at: c.created_at,
            updated_at: c.updated_at,
            revision,
            secrets: None,
            client_secret: None,
        }
    }

    /// With the lifetimes of `secrets`.
    pub(crate) fn with_secrets(mut self, secrets: &[Secret]) -> Self {
        self.secrets = Some(
            secrets
                .iter()
                .map(|s| SecretView {
                    created_at: s.created_at,
                    expires_at: s.expires_at,
                })
                .collect(),
        );
        self
    }
}

/// A client's settings as written by `POST /admin/v1/clients` (create) and
/// `PUT /admin/v1/clients/{client_id}` (replace: an absent field takes its default, as on
/// create). Unknown fields are refused.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClientInput {
    /// `client_id`: on create, generated (128 random bits) when absent; on replace, must
    /// equal the path's when present.
    #[serde(default)]
    pub(crate) client_id: Option<String>,
    /// Display name (shown on consent pages).
    pub(crate) client_name: String,
    /// `client_secret_basic` (default), `client_secret_post` or `none` (public client).
    #[serde(default)]
    pub(crate) token_endpoint_auth_method: Option<String>,
    /// Grant types (default: `client_credentials`).
    #[serde(default)]
    pub(crate) grant_types: Option<Vec<String>>,
    /// Scopes the client may request, space-separated (default: none).
    #[serde(default)]
    pub(crate) scope: Option<String>,
    /// Exact redirect URIs (absolute, no fragment).
    #[serde(default)]
    pub(crate) redirect_uris: Vec<String>,
    /// Exact post-logout redirect URIs (absolute, no fragment).
    #[serde(default)]
    pub(crate) post_logout_redirect_uris: Vec<String>,
    /// Resource indicators (absolute URIs); the first is the default audience.
    #[serde(default)]
    pub(crate) audiences: Vec<String>,
    /// `jwt` (default) or `opaque`.
    #[serde(default)]
    pub(crate) access_token_format: Option<String>,
    /// Access token lifetime, seconds (default 3600).
    #[serde(default)]
    pub(crate) access_token_ttl: Option<i64>,
    /// Refresh token lifetime, seconds (default 30 days).
    #[serde(default)]
    pub(crate) refresh_token_ttl: Option<i64>,
    /// ID token lifetime, seconds (default 3600).
    #[serde(default)]
    pub(crate) id_token_ttl: Option<i64>,
    /// Signing algorithm of the client's tokens (default: the server's).
    #[serde(default)]
    pub(crate) signing_alg: Option<String>,
    /// May skip consent (default false).
    #[serde(default)]
    pub(crate) first_party: bool,
    /// May call the introspection endpoints (default false).
    #[serde(default)]
    pub(crate) introspect: bool,
    /// Browser origins (`https://app.example.com`) besides the redirect URIs' origins.
    #[serde(default)]
    pub(crate) allowed_origins: Vec<String>,
    /// Back-Channel Logout 1.0 endpoint.
    #[serde(default)]
    pub(crate) backchannel_logout_uri: Option<String>,
    /// Needs `sid` in logout tokens.
    #[serde(default)]
    pub(crate) backchannel_logout_session_required: bool,
    /// Front-Channel Logout 1.0 endpoint.
    #[serde(default)]
    pub(crate) frontchannel_logout_uri: Option<String>,
    /// Needs `iss` and `sid` on the front-channel logout URI.
    #[serde(default)]
    pub(crate) frontchannel_logout_session_required: bool,
    /// Token exchange (RFC 8693) policy (default: none).
    #[serde(default)]
    pub(crate) token_exchange: TokenExchangeView,
}

fn parsed<T: std::str::FromStr<Err = String>>(field: &str, raw: &str) -> Result<T, AdminError> {
    raw.parse()
        .map_err(|e: String| AdminError::invalid(field, e))
}

fn absolute(field: String, uri: &str) -> Result<(), AdminError> {
    match url::Url::parse(uri) {
        Ok(u) if u.fragment().is_none() => Ok(()),
        _ => Err(AdminError::invalid(
            field,
            format!("{uri:?} must be an absolute URI without a fragment"),
        )),
    }
}

impl ClientInput {
    /// The client these settings describe, for `id`, checked field by field (the same
    /// rules as `authz clients create`).
    pub(crate) fn into_client(self, id: ClientId) -> Result<Client, AdminError> {
        if self.client_name.trim().is_empty() {
            return Err(AdminError::invalid("client_name", "must not be empty"));
        }
        let mut c = Client::new(id, self.client_name);
        if let Some(m) = &self.token_endpoint_auth_method {
            c.auth_method = parsed::<TokenEndpointAuthMethod>("token_endpoint_auth_method", m)?;
        }
        if let Some(grants) = &self.grant_types {
            if grants.is_empty() {
                return Err(AdminError::invalid("grant_types", "must name a grant type"));
            }
            c.grant_types = grants
                .iter()
                .enumerate()
                .map(|(i, g)| parsed::<GrantType>(&format!("grant_types[{i}]"), g))
                .collect::<Result<_, _>>()?;
        }
        if let Some(scope) = &self.scope {
            c.scopes =
                ScopeSet::parse(scope).map_err(|e| AdminError::invalid("scope", e.to_string()))?;
        }
        for (i, u) in self.redirect_uris.iter().enumerate() {
            absolute(format!("redirect_uris[{i}]"), u)?;
        }
        for (i, u) in self.post_logout_redirect_uris.iter().enumerate() {
            absolute(format!("post_logout_redirect_uris[{i}]"), u)?;
        }
        for (i, a) in self.audiences.iter().enumerate() {
            absolute(format!("audiences[{i}]"), a)?;
        }
        c.redirect_uris = self.redirect_uris;
        c.post_logout_redirect_uris = self.post_logout_redirect_uris;
        c.audiences = self.audiences;
        if let Some(f) = &self.access_token_format {
            c.access_token_format = parsed::<AccessTokenFormat>("access_token_format", f)?;
        }
        for (field, given, slot) in [
            (
                "access_token_ttl",
                self.access_token_ttl,
                &mut c.access_token_ttl,
            ),
            (
                "refresh_token_ttl",
                self.refresh_token_ttl,
                &mut c.refresh_token_ttl,
            ),
            ("id_token_ttl", self.id_token_ttl, &mut c.id_token_ttl),
        ] {
            if let Some(ttl) = given {
                if ttl <= 0 {
                    return Err(AdminError::invalid(
                        field,
                        "must be a positive number of seconds",
                    ));
                }
                *slot = ttl;
            }
        }
        if let Some(alg) = &self.signing_alg {
            c.signing_alg = Some(parsed::<Algorithm>("signing_alg", alg)?);
        }
        c.first_party = self.first_party;
        c.can_introspect = self.introspect;
        for (i, o) in self.allowed_origins.iter().enumerate() {
            if origin_of(o).as_deref() != Some(o.as_str()) {
                return Err(AdminError::invalid(
                    format!("allowed_origins[{i}]"),
                    "must be an http(s) origin such as https://app.example.com \
                     (scheme, host and optional port, no path)",
                ));
            }
        }
        c.allowed_origins = self.allowed_origins;
        for (field, uri) in [
            ("backchannel_logout_uri", &self.backchannel_logout_uri),
            ("frontchannel_logout_uri", &self.frontchannel_logout_uri),
        ] {
            if let Some(problem) = uri.as_deref().and_then(logout_uri_problem) {
                return Err(AdminError::invalid(field, problem));
            }
        }
        c.backchannel_logout_uri = self.backchannel_logout_uri;
        c.backchannel_logout_session_required = self.backchannel_logout_session_required;
        c.frontchannel_logout_uri = self.frontchannel_logout_uri;
        c.frontchannel_logout_session_required = self.frontchannel_logout_session_required;
        for (i, a) in self.token_exchange.audiences.iter().enumerate() {
            if a.is_empty() || a.chars().any(char::is_whitespace) {
                return Err(AdminError::invalid(
                    format!("token_exchange.audiences[{i}]"),
                    "must be non-empty without spaces",
                ));
            }
        }
        c.token_exchange = TokenExchangePolicy {
            audiences: self.token_exchange.audiences,
            scopes: ScopeSet::parse(&self.token_exchange.scope)
                .map_err(|e| AdminError::invalid("token_exchange.scope", e.to_string()))?,
            impersonate: self.token_exchange.impersonate,
        };
        if c.auth_method == TokenEndpointAuthMethod::None {
            for grant in [GrantType::ClientCredentials, GrantType::TokenExchange] {
                if c.grant_types.contains(&grant) {
                    return Err(AdminError::invalid(
                        "grant_types",
                        format!("a public client cannot use {}", grant.as_str()),
                    ));
                }
            }
        }
        Ok(c)
    }
}
