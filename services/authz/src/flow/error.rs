//! What can go wrong in the authorization code flow, said in the flow's terms; the HTTP
//! and gRPC edges decide what each case looks like on the wire.

use domain::ErrorCode;
use storage::StorageError;

use crate::error::Failure;

/// Why an authorization request ends with an error for the client, delivered to its
/// redirect URI (RFC 6749 §4.1.2.1, OpenID Connect Core §3.1.2.6).
#[derive(Debug, thiserror::Error)]
pub(crate) enum AuthorizeError {
    /// `prompt=select_account`: this server offers no account selection.
    #[error("this server does not offer account selection")]
    AccountSelectionRequired,
    /// `prompt=none`, but the End-User must log in (again).
    #[error("the End-User must log in")]
    LoginRequired,
    /// `prompt=none`, but the End-User must consent.
    #[error("the End-User must consent")]
    ConsentRequired,
    /// idp ended the request with this error and description (`RejectLogin` /
    /// `RejectConsent`).
    #[error("{description}")]
    Rejected {
        /// One of the codes idp may end a flow with.
        code: ErrorCode,
        /// idp's description, possibly empty.
        description: String,
    },
    /// No new pending request is admitted now: `authorize.max_pending_requests` are
    /// pending, or this address created `authorize.pending_requests_per_address` in the
    /// last minute. Answered as `temporarily_unavailable` (RFC 6749 §4.1.2.1).
    #[error("{0}")]
    Busy(&'static str),
    /// The database or idp failed, or something broke inside authz.
    #[error(transparent)]
    Failed(#[from] Failure),
}

impl From<StorageError> for AuthorizeError {
    fn from(e: StorageError) -> Self {
        Self::Failed(e.into())
    }
}

/// Why `/authorize/resume` cannot continue; shown on an error page, never redirected,
/// because the request (and so its redirect URI) is unknown or not this browser's.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ResumeError {
    /// Unknown, finished or expired request, or not the browser that started it; the
    /// message is for the End-User.
    #[error("{0}")]
    Refused(&'static str),
    /// The database or idp failed, or something broke inside authz.
    #[error(transparent)]
    Failed(#[from] Failure),
}

impl From<StorageError> for ResumeError {
    fn from(e: StorageError) -> Self {
        Self::Failed(e.into())
    }
}

/// Why a `LoginFlow` call failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FlowError {
    /// The challenge is unknown, expired or already answered.
    #[error("unknown, expired or already used challenge")]
    NotFound,
    /// An argument is invalid.
    #[error("{0}")]
    Invalid(String),
    /// The answer does not satisfy the request (e.g. no fresh login after `prompt=login`).
    #[error("{0}")]
    Precondition(String),
    /// The database failed.
    #[error(transparent)]
    Failed(#[from] Failure),
}

impl From<StorageError> for FlowError {
    fn from(e: StorageError) -> Self {
        Self::Failed(e.into())
    }
}
