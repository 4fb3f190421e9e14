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

/// What a token exchange (RFC 8693) adds to an access token: the `act` claim (§4.1) and a
/// ceiling on its expiry (an exchanged token never outlives its subject token).
#[derive(Debug, Default)]
pub(crate) struct Exchanged {
    /// The `act` claim, a JSON object with `sub` (and a nested `act` for prior actors).
    pub(crate) act: Option<serde_json::Value>,
    /// Latest expiry, Unix seconds.
    pub(crate) not_after: Option<i64>,
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
    /// The actor chain of an exchanged token (RFC 8693 §4.1, listed for introspection
    /// responses in §2.2 of RFC 7662 by RFC 8693 §4.1's registration).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub act: Option<serde_json::Value>,
}

/// JWT claims.
pub(crate) type Claims = serde_json::Map<String, serde_json::Value>;

/// What a revocation request (RFC 7009 §2.1) found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Revocation {
    /// The token was the client's and is revoked now (or already was).
    Revoked,
    /// No live token of this kind: unknown, expired, malformed (§2.2: still a success).
    Unknown,
    /// A live token issued to another client: refused, and left active (§2.1).
    OtherClient,
}
