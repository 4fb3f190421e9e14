//! The guard's one error type: why a guard could not be built, or why a request was not let
//! through. [`crate::Guard::reject`] turns the request-time variants into RFC 6750 responses.

/// Why a token was refused (RFC 6750 §3.1 `invalid_token`). The descriptions say what is
/// wrong without revealing anything about keys, servers or internal state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenProblem {
    /// Not a JWT, not valid JSON, or a header this verifier refuses (no `kid`, `crit`).
    Malformed,
    /// An `alg` outside the configured allowlist (RFC 8725 §3.1).
    Algorithm,
    /// Signed by a key the issuer does not publish, even after a refetch.
    UnknownKey,
    /// The signature does not verify.
    Signature,
    /// `typ` is not `at+jwt` (RFC 9068 §4).
    Type,
    /// `sub`, `client_id`, `exp` or `iss` missing or of the wrong type (RFC 9068 §2.2).
    Claims,
    /// `iss` is not the configured issuer (RFC 9068 §4).
    Issuer,
    /// `aud` does not contain this resource (RFC 9068 §4).
    Audience,
    /// `exp` has passed (beyond the leeway).
    Expired,
    /// `nbf` is still ahead (beyond the leeway).
    NotYetValid,
    /// The authorization server says the token is not active: unknown, expired or revoked
    /// (RFC 7662 §2.2).
    Inactive,
}

impl TokenProblem {
    /// The `error_description` sent to the client.
    pub fn description(self) -> &'static str {
        match self {
            Self::Malformed => "the access token is malformed",
            Self::Algorithm => "the access token is signed with an algorithm that is not accepted",
            Self::UnknownKey => "the access token is signed with an unknown key",
            Self::Signature => "the access token signature is invalid",
            Self::Type => "the token is not an access token",
            Self::Claims => "the access token lacks required claims",
            Self::Issuer => "the access token is from another issuer",
            Self::Audience => "the access token is not meant for this resource",
            Self::Expired => "the access token expired",
            Self::NotYetValid => "the access token is not valid yet",
            Self::Inactive => "the access token is not active",
        }
    }

    /// The `reason` label of `guard_requests_total`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::Algorithm => "algorithm",
            Self::UnknownKey => "unknown_key",
            Self::Signature => "signature",
            Self::Type => "type",
            Self::Claims => "claims",
            Self::Issuer => "issuer",
            Self::Audience => "audience",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::Inactive => "inactive",
        }
    }
}

impl std::fmt::Display for TokenProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.description())
    }
}

/// Everything that can go wrong in the guard.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    /// The configuration is invalid (building a guard).
    #[error("guard configuration: {0}")]
    Config(#[from] ::config::ConfigError),
    /// The HTTP client for discovery and JWKS could not be built (TLS backend).
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(String),
    /// The guard was built outside a Tokio runtime.
    #[error("the guard must be built inside a Tokio runtime")]
    NoRuntime,
    /// The request carries no Bearer token (RFC 6750 §3.1: no error code).
    #[error("no access token")]
    MissingToken,
    /// RFC 6750 §3.1 `invalid_request`: the token is sent in more than one place, in the
    /// query string, or in a malformed header or body.
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    /// RFC 6750 §3.1 `invalid_token`.
    #[error("invalid token: {0}")]
    InvalidToken(TokenProblem),
    /// RFC 6750 §3.1 `insufficient_scope`: the scopes the route requires.
    #[error("insufficient scope: requires {0}")]
    InsufficientScope(String),
    /// Tokens cannot be checked now (authorization server unreachable, no keys yet): 503.
    #[error("token verification is temporarily unavailable")]
    Unavailable,
    /// No [`crate::Guard`] in the application data: a wiring mistake of the service.
    #[error("no guard is registered in the application data")]
    NotConfigured,
}

impl GuardError {
    /// The `result` label of `guard_requests_total`.
    pub(crate) fn result_label(&self) -> &'static str {
        match self {
            Self::MissingToken => "missing_token",
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidToken(_) => "invalid_token",
            Self::InsufficientScope(_) => "insufficient_scope",
            Self::Unavailable => "unavailable",
            Self::Config(_) | Self::HttpClient(_) | Self::NoRuntime | Self::NotConfigured => {
                "error"
            }
        }
    }
}
