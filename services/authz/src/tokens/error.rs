//! What can go wrong at the token endpoint's user grants, said in the grants' terms; the
//! HTTP edge maps each case to the RFC 6749 §5.2 error response.

use storage::StorageError;

use crate::error::Failure;

/// Why a grant gives no tokens.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TokenError {
    /// The code or refresh token is invalid, expired, revoked, another client's, or its
    /// user is gone (RFC 6749 §5.2 `invalid_grant`); the text says which, for the client.
    #[error("{0}")]
    InvalidGrant(&'static str),
    /// The scopes asked for are not part of the grant (RFC 6749 §5.2 `invalid_scope`).
    #[error("{0}")]
    InvalidScope(String),
    /// A parameter is malformed (RFC 6749 §5.2 `invalid_request`).
    #[error("{0}")]
    InvalidRequest(String),
    // token exchange (RFC 8693)
    /// The client may not have a token for the requested audience or resource (RFC 8693
    /// §2.2.2 `invalid_target`).
    #[error("{0}")]
    InvalidTarget(String),
    /// The authenticated client may not act on this token (RFC 6749 §5.2
    /// `unauthorized_client`): revoking a token issued to another client.
    #[error("{0}")]
    UnauthorizedClient(String),
    /// The database or idp failed, or something broke inside authz.
    #[error(transparent)]
    Failed(#[from] Failure),
}

impl From<StorageError> for TokenError {
    fn from(e: StorageError) -> Self {
        Self::Failed(e.into())
    }
}
