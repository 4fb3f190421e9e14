//! What the token service hands out: issued access tokens, tokens made but not yet
//! stored, and RFC 7662 introspection results.

use domain::ScopeSet;
use serde::Serialize;

use super::repo::OpaqueRow;

/// A freshly issued access token (RFC 6749 §5.1).
#[derive(Debug)]
pub struct IssuedToken {
    /// The token.
    pub access_token: String,
    /// Lifetime in seconds.
    pub expires_in: i64,
    /// Granted scopes.
    pub scope: ScopeSet,
}

/// An access token made but not yet stored (see [`Tokens::prepare`]).
pub(crate) struct PreparedAccess {
    /// The token.
    pub(crate) token: String,
    /// Its `jti` (also kept for opaque tokens).
    pub(crate) jti: String,
    /// Expiry, Unix seconds.
    pub(crate) expires_at: i64,
    /// Lifetime in seconds.
    pub(crate) expires_in: i64,
    /// For opaque tokens: the row to store before the token is handed out.
    pub(crate) opaque: Option<OpaqueRow>,
}

/// RFC 7662 §2.2 introspection result; `active: false` carries nothing else.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Introspection {
    /// Whether the token is valid now.
    pub active: bool,
    /// Space-separated scopes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The client the token was issued to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Audiences.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aud: Vec<String>,
    /// Issuer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Expiry (Unix seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// Issued at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// `Bearer`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    /// Token id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

/// JWT claims.
pub(crate) type Claims = serde_json::Map<String, serde_json::Value>;
