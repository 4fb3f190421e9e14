use std::fmt;

/// OAuth 2.0 error codes used by this server (RFC 6749 §4.1.2.1, §5.2; RFC 6750 §3.1;
/// RFC 7009 §2.2.1; RFC 8707 §2; RFC 8628 §3.5; OpenID Connect Core §3.1.2.6).
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
    /// The authorization server does not support this `response_type` (RFC 6749
    /// §4.1.2.1).
    UnsupportedResponseType,
    /// `prompt=none`, but the End-User must authenticate (OpenID Connect Core §3.1.2.6).
    LoginRequired,
    /// `prompt=none`, but the End-User must consent (OpenID Connect Core §3.1.2.6).
    ConsentRequired,
    /// `prompt=none`, but some other user interaction is needed (OpenID Connect Core
    /// §3.1.2.6).
    InteractionRequired,
    /// The End-User would have to select an account, which this server does not offer
    /// (OpenID Connect Core §3.1.2.6).
    AccountSelectionRequired,
    /// The `request` parameter is not supported (OpenID Connect Core §6.1).
    RequestNotSupported,
    /// The `request_uri` parameter is not supported (OpenID Connect Core §6.2).
    RequestUriNotSupported,
    /// The access token is expired, revoked, malformed or otherwise invalid (RFC 6750
    /// §3.1).
    InvalidToken,
    /// The access token lacks a scope the resource requires (RFC 6750 §3.1).
    InsufficientScope,
    // device grant (RFC 8628 §3.5)
    /// The user has not yet approved or denied the device authorization request.
    AuthorizationPending,
    /// The device polls faster than its `interval`; it must add 5 seconds to it.
    SlowDown,
    /// The `device_code` has expired; the device must start a new request.
    ExpiredToken,
    // dcr: registration (RFC 7591 §3.2.2), PAR (RFC 9126) and JAR (RFC 9101 §6.2)
    /// A redirect URI in a registration request is not acceptable (RFC 7591 §3.2.2).
    InvalidRedirectUri,
    /// A client metadata value is invalid or inconsistent (RFC 7591 §3.2.2).
    InvalidClientMetadata,
    /// The `request_uri` is unknown, expired, already used or another client's (RFC 9101
    /// §6.2, RFC 9126 §4).
    InvalidRequestUri,
    /// The request object is invalid: bad signature, wrong `iss`/`aud`/`client_id`,
    /// expired (RFC 9101 §6.2).
    InvalidRequestObject,
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
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::LoginRequired => "login_required",
            Self::ConsentRequired => "consent_required",
            Self::InteractionRequired => "interaction_required",
            Self::AccountSelectionRequired => "account_selection_required",
            Self::RequestNotSupported => "request_not_supported",
            Self::RequestUriNotSupported => "request_uri_not_supported",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
            // device grant (RFC 8628 §3.5)
            Self::AuthorizationPending => "authorization_pending",
            Self::SlowDown => "slow_down",
            Self::ExpiredToken => "expired_token",
            // dcr
            Self::InvalidRedirectUri => "invalid_redirect_uri",
            Self::InvalidClientMetadata => "invalid_client_metadata",
            Self::InvalidRequestUri => "invalid_request_uri",
            Self::InvalidRequestObject => "invalid_request_object",
        }
    }

    /// Every code.
    pub const ALL: &'static [Self] = &[
        Self::InvalidRequest,
        Self::InvalidClient,
        Self::InvalidGrant,
        Self::UnauthorizedClient,
        Self::UnsupportedGrantType,
        Self::InvalidScope,
        Self::InvalidTarget,
        Self::UnsupportedTokenType,
        Self::AccessDenied,
        Self::ServerError,
        Self::TemporarilyUnavailable,
        Self::UnsupportedResponseType,
        Self::LoginRequired,
        Self::ConsentRequired,
        Self::InteractionRequired,
        Self::AccountSelectionRequired,
        Self::RequestNotSupported,
        Self::RequestUriNotSupported,
        Self::InvalidToken,
        Self::InsufficientScope,
        // device grant (RFC 8628 §3.5)
        Self::AuthorizationPending,
        Self::SlowDown,
        Self::ExpiredToken,
        // dcr
        Self::InvalidRedirectUri,
        Self::InvalidClientMetadata,
        Self::InvalidRequestUri,
        Self::InvalidRequestObject,
    ];
}

impl std::str::FromStr for ErrorCode {
    type Err = String;

    /// The code with this wire value.
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .iter()
            .copied()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("unknown error code {s:?}"))
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

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    #[test]
    fn codes_round_trip_through_their_wire_values() {
        for code in ErrorCode::ALL {
            assert_eq!(code.as_str().parse::<ErrorCode>(), Ok(*code));
        }
        assert!("no_such_error".parse::<ErrorCode>().is_err());
    }
}
