//! What the device grant hands out and how polling can end.

use std::sync::Arc;

use domain::ScopeSet;
use domain::device::UserCode;

use crate::clients::Client;
use crate::tokens::TokenError;

/// A new device authorization (RFC 8628 §3.2). No `Debug`: it holds the device code.
pub(crate) struct Started {
    /// The device code, for the device only.
    pub(crate) device_code: String,
    /// The code the user types at the verification page.
    pub(crate) user_code: UserCode,
    /// Seconds until both codes expire.
    pub(crate) expires_in: i64,
    /// Seconds the device must wait between polls.
    pub(crate) interval: i64,
}

/// A pending device authorization as idp's verification page shows it.
pub(crate) struct DeviceRequest {
    /// The client that asked.
    pub(crate) client: Arc<Client>,
    /// The scopes it asked for.
    pub(crate) scope: ScopeSet,
    /// Unix time after which the user code is no longer accepted.
    pub(crate) expires_at: i64,
}

/// Why a poll of the token endpoint with a device code gives no tokens yet (RFC 8628
/// §3.5).
#[derive(Debug, thiserror::Error)]
pub(crate) enum PollError {
    /// The user has not decided yet: `authorization_pending`.
    #[error("the user has not yet approved the request")]
    Pending,
    /// The device polled before its interval passed; the interval grew by 5 s:
    /// `slow_down`.
    #[error("polling too fast: wait {0} seconds between requests")]
    SlowDown(i64),
    /// The user denied the request: `access_denied`.
    #[error("the user denied the request")]
    Denied,
    /// The device code expired before the user approved it: `expired_token`.
    #[error("the device_code has expired; start a new device authorization")]
    Expired,
    /// Anything the other user grants can answer (`invalid_grant`, failures).
    #[error(transparent)]
    Token(#[from] TokenError),
}

impl From<crate::error::Failure> for PollError {
    fn from(f: crate::error::Failure) -> Self {
        Self::Token(f.into())
    }
}

impl From<storage::StorageError> for PollError {
    fn from(e: storage::StorageError) -> Self {
        Self::Token(e.into())
    }
}
