//! RFC 9457 problem details: the one error type of every admin route, mapped to its status,
//! stable `type` and headers in one place ([`AdminError::error_response`]).

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use actix_web::{HttpResponse, ResponseError};
use guard::GuardError;
use serde::Serialize;

/// The media type of every error body (RFC 9457 §3).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Prefix of every problem `type` (RFC 9457 §3.1.1: a URI reference that identifies the
/// problem type; stable across releases, so clients can branch on it).
pub const PROBLEM_TYPE_PREFIX: &str = "urn:problem-type:admin:";

/// An RFC 9457 problem details object, as sent.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Problem {
    /// The problem type (`urn:problem-type:admin:<name>`), stable per error.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the problem type.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong with this request.
    pub detail: String,
    /// The request field at fault (JSON path such as `redirect_uris[1]`, a query
    /// parameter, or a header name), when one is.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub field: Option<String>,
}

/// Everything an admin route can answer besides success.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The Bearer token is missing, invalid or lacks a scope (RFC 6750 §3), or cannot be
    /// checked now.
    #[error("{error}")]
    Auth {
        /// The guard's verdict.
        error: GuardError,
        /// The `WWW-Authenticate` challenge ([`guard::Guard::challenge`]).
        challenge: Option<String>,
    },
    /// The JSON body is malformed, has a wrong type, an unknown or a missing field.
    #[error("invalid body: {detail}")]
    InvalidBody {
        /// The field at fault, if known.
        field: Option<String>,
        /// What is wrong.
        detail: String,
    },
    /// A query parameter is unknown or malformed (including a bad cursor).
    #[error("invalid query: {detail}")]
    InvalidQuery {
        /// The parameter at fault, if known.
        field: Option<String>,
        /// What is wrong.
        detail: String,
    },
    /// A request header is malformed (`If-Match`).
    #[error("invalid header {field}: {detail}")]
    InvalidHeader {
        /// The header.
        field: String,
        /// What is wrong.
        detail: String,
    },
    /// A field is well-formed but its value is not acceptable (a redirect URI with a
    /// fragment, a public client with a secret…).
    #[error("invalid value for {field}: {detail}")]
    InvalidValue {
        /// The field at fault.
        field: String,
        /// What is wrong.
        detail: String,
    },
    /// The body exceeds the limit (RFC 9110 §15.5.14).
    #[error("body larger than {limit} bytes")]
    TooLarge {
        /// The limit, bytes.
        limit: usize,
    },
    /// The body is not `application/json` (RFC 9110 §15.5.16).
    #[error("the body must be application/json")]
    UnsupportedMediaType,
    /// No such resource.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state (an id that exists).
    #[error("{0}")]
    Conflict(String),
    /// `If-Match` does not match the current entity tag (RFC 9110 §13.1.1): someone else
    /// changed the resource since it was read.
    #[error("the resource was changed since it was read (If-Match does not match its ETag)")]
    PreconditionFailed,
    /// A write that must be conditional came without `If-Match` (RFC 6585 §3).
    #[error("this write requires If-Match with the resource's current ETag")]
    PreconditionRequired,
    /// The method is not served at this path.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The database or a peer is busy or unreachable; trying again may work.
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    /// A bug or a broken environment; the cause is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AdminError {
    /// An [`AdminError::InvalidValue`] for `field`.
    pub fn invalid(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::InvalidValue {
            field: field.into(),
            detail: detail.into(),
        }
    }

    /// The stable name of the problem type (the part after [`PROBLEM_TYPE_PREFIX`]).
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Auth { error, .. } => match error {
                GuardError::MissingToken => "unauthorized",
                GuardError::InvalidToken(_) => "invalid-token",
                GuardError::InvalidRequest(_) => "invalid-request",
                GuardError::InsufficientScope(_) => "insufficient-scope",
                GuardError::Unavailable => "unavailable",
                _ => "internal",
            },
            Self::InvalidBody { .. } => "invalid-body",
            Self::InvalidQuery { .. } => "invalid-query",
            Self::InvalidValue { .. } => "invalid-value",
            Self::InvalidHeader { .. } => "invalid-header",
            Self::TooLarge { .. } => "body-too-large",
            Self::UnsupportedMediaType => "unsupported-media-type",
            Self::NotFound(_) => "not-found",
            Self::Conflict(_) => "conflict",
            Self::PreconditionFailed => "precondition-failed",
            Self::PreconditionRequired => "precondition-required",
            Self::MethodNotAllowed => "method-not-allowed",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }

    fn title(&self) -> &'static str {
        match self.type_name() {
            "unauthorized" => "Authentication required",
            "invalid-token" => "Invalid access token",
            "invalid-request" => "Invalid authorization request",
            "insufficient-scope" => "Insufficient scope",
            "invalid-body" => "Invalid request body",
            "invalid-query" => "Invalid query",
            "invalid-value" => "Invalid value",
            "invalid-header" => "Invalid header",
            "body-too-large" => "Request body too large",
            "unsupported-media-type" => "Unsupported media type",
            "not-found" => "Not found",
            "conflict" => "Conflict",
            "precondition-failed" => "Precondition failed",
            "precondition-required" => "Precondition required",
            "method-not-allowed" => "Method not allowed",
            "unavailable" => "Temporarily unavailable",
            _ => "Internal error",
        }
    }

    fn field(&self) -> Option<String> {
        match self {
            Self::InvalidBody { field, .. } | Self::InvalidQuery { field, .. } => field.clone(),
            Self::InvalidValue { field, .. } | Self::InvalidHeader { field, .. } => {
                Some(field.clone())
            }
            Self::PreconditionFailed | Self::PreconditionRequired => Some("If-Match".into()),
            Self::Auth {
                error: GuardError::InvalidRequest(_),
                ..
            } => Some("Authorization".into()),
            _ => None,
        }
    }

    /// The problem details object sent for this error.
    pub fn problem(&self) -> Problem {
        let detail = match self {
            Self::Auth { error, .. } => match error {
                GuardError::MissingToken => "an access token is required".to_owned(),
                GuardError::InvalidToken(problem) => problem.description().to_owned(),
                GuardError::InvalidRequest(d) => (*d).to_owned(),
                GuardError::InsufficientScope(scope) => {
                    format!("the access token lacks the scope {scope}")
                }
                GuardError::Unavailable => {
                    "the access token cannot be checked now; try again later".to_owned()
                }
                _ => "internal error".to_owned(),
            },
            Self::Internal(_) => "internal error".to_owned(),
            Self::Unavailable(_) => "temporarily unavailable; try again later".to_owned(),
            other => other.to_string(),
        };
        Problem {
            kind: format!("{PROBLEM_TYPE_PREFIX}{}", self.type_name()),
            title: self.title().to_owned(),
            status: self.status_code().as_u16(),
            detail,
            field: self.field(),
        }
    }
}

impl ResponseError for AdminError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Auth { error, .. } => match error {
                GuardError::MissingToken | GuardError::InvalidToken(_) => StatusCode::UNAUTHORIZED,
                GuardError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
                GuardError::InsufficientScope(_) => StatusCode::FORBIDDEN,
                GuardError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            },
            Self::InvalidBody { .. }
            | Self::InvalidQuery { .. }
            | Self::InvalidValue { .. }
            | Self::InvalidHeader { .. } => StatusCode::BAD_REQUEST,
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Self::PreconditionRequired => StatusCode::PRECONDITION_REQUIRED,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Internal(cause) => tracing::error!(%cause, "admin request failed"),
            Self::Unavailable(cause) => tracing::warn!(%cause, "admin request: unavailable"),
            _ => tracing::debug!(problem = self.type_name(), "admin request refused"),
        }
        let problem = self.problem();
        let mut response = HttpResponse::build(self.status_code());
        response
            .insert_header((CONTENT_TYPE, PROBLEM_JSON))
            .insert_header((CACHE_CONTROL, "no-store"));
        if let Self::Auth {
            challenge: Some(challenge),
            ..
        } = self
        {
            response.insert_header((WWW_AUTHENTICATE, challenge.as_str()));
        }
        if self.status_code() == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header((RETRY_AFTER, "1"));
        }
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        response.body(body)
    }
}
