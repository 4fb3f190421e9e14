use std::fmt;

/// OAuth 2.0 error codes used by this server (RFC 6749 §4.1.2.1, §5.2; RFC 6750 §3.1;
/// RFC 7009 §2.2.1; OpenID Connect Core §3.1.2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// Missing, repeated or malformed parameter.
    InvalidRequest,
    /// Client authentication failed.
    InvalidClient,
    /// Bad or expired grant (code, refresh token, credentials).
    InvalidGrant,
    /// The client may not use this grant type.
    UnauthorizedClient,
    /// The grant type is not supported.
    UnsupportedGrantType,
    /// Unknown scope, or one the client may not request.
    InvalidScope,
    /// The resource indicator is not acceptable (RFC 8707 §2).
    InvalidTarget,
    /// The token type cannot be revoked (RFC 7009 §2.2.1).
    UnsupportedTokenType,
    /// The resource owner or server denied the request.
    AccessDenied,
    /// Unexpected server error.
    ServerError,
    /// The server is overloaded or down for maintenance.
    TemporarilyUnavailable,
}

impl ErrorCode {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::InvalidTarget => "invalid_target",
            Self::UnsupportedTokenType => "unsupported_token_type",
            Self::AccessDenied => "access_denied",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An OAuth error as returned to a client: the code and a human-readable description that
/// never contains secrets or internals.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {description}")]
pub struct OAuthError {
    /// The error code.
    pub code: ErrorCode,
    /// `error_description`.
    pub description: String,
}

impl OAuthError {
    /// An error with a description.
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
        }
    }

    /// `invalid_request`.
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, description)
    }
}
