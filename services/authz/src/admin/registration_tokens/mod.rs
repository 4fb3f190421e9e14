//! `/admin/v1/registration-tokens`: initial access tokens for Dynamic Client Registration
//! (RFC 7591 §3: "an OAuth 2.0 access token optionally issued by an authorization server
//! to a developer or client and used to authorize calls to the client registration
//! endpoint"), what `authz registration-tokens` manages, through the same service
//! ([`crate::registration::Registrations`]). Keycloak's "Initial access token" admin
//! resource needs `manage-clients`; here the `admin:clients:*` scopes. A token's value is
//! shown once, in the create response; only its SHA-256 is stored.

pub(crate) mod create;
pub(crate) mod list;
pub(crate) mod revoke;

use serde::Serialize;
use utoipa::ToSchema;

use crate::registration::InitialAccessToken;

/// The collection.
pub(crate) const PATH: &str = "/admin/v1/registration-tokens";
/// One token.
pub(crate) const ITEM_PATH: &str = "/admin/v1/registration-tokens/{id}";

/// An initial access token as the admin API shows it (never its value but at creation).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RegistrationTokenView {
    /// Its id (for revoking it).
    id: String,
    /// The note given at creation.
    description: String,
    /// The most scope a client registered with it may get, space-separated.
    scope: String,
    /// How many registrations it still allows.
    uses_left: i64,
    /// Creation time, Unix seconds.
    created_at: i64,
    /// When it stops working, Unix seconds.
    expires_at: i64,
    /// The token itself (send it as `Authorization: Bearer` to `POST /register`): only in
    /// the create response.
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
}

impl From<&InitialAccessToken> for RegistrationTokenView {
    fn from(t: &InitialAccessToken) -> Self {
        Self {
            id: t.id.clone(),
            description: t.description.clone(),
            scope: t.scope.to_string(),
            uses_left: t.uses_left,
            created_at: t.created_at,
            expires_at: t.expires_at,
            token: None,
        }
    }
}
