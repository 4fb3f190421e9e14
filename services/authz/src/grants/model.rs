//! What the user grants hand out.

use domain::ScopeSet;

/// A successful token response (RFC 6749 §5.1, OpenID Connect Core §3.1.3.3). No `Debug`:
/// it holds tokens.
pub(crate) struct TokenResponse {
    /// The access token.
    pub(crate) access_token: String,
    /// Its lifetime in seconds.
    pub(crate) expires_in: i64,
    /// The scopes of the access token.
    pub(crate) scope: ScopeSet,
    /// A new refresh token, when the client may use the `refresh_token` grant.
    pub(crate) refresh_token: Option<String>,
    /// An ID token, when the scopes include `openid`.
    pub(crate) id_token: Option<String>,
}
