//! The rs error type, and how the API shows it (RFC 7807-like JSON with an error code).

use actix_web::http::StatusCode;
use actix_web::http::header::CACHE_CONTROL;
use actix_web::{HttpResponse, ResponseError};

/// Everything that can stop rs from starting or serving, and every refusal of its API other
/// than the guard's own (which answers RFC 6750 errors itself).
#[derive(Debug, thiserror::Error)]
pub enum RsError {
    /// Listener or server problem.
    #[error(transparent)]
    Runtime(#[from] runtime::RuntimeError),
    /// The token guard could not be built.
    #[error(transparent)]
    Guard(#[from] guard::GuardError),
    /// A request body that is not a valid item (422).
    #[error("{0}")]
    InvalidItem(String),
    /// A request body that is not JSON at all (415) or too large (413).
    #[error("{1}")]
    Body(StatusCode, String),
    /// The bounded item store is full (507).
    #[error("the item store is full")]
    StoreFull,
    /// The caller's subject already created as many items as `items.max_per_subject`
    /// allows (403). Not 507: RFC 4918 §11.5's 507 says the server cannot store the
    /// representation, which is false for everyone else; RFC 9110 §15.5.4's 403 says the
    /// server understood the request and refuses it for this caller, and repeating it with
    /// the same credentials will not help. The `quota_exceeded` code tells the two apart.
    #[error("this subject has created as many items as its quota allows")]
    QuotaExceeded,
    /// The token exchange (RFC 8693) for the downstream call failed (502): the
    /// authorization server refused it or could not be reached.
    #[error("token exchange failed: {0}")]
    Exchange(String),
    /// The downstream route refused the exchanged token or could not be reached (502).
    #[error("downstream call failed: {0}")]
    Downstream(String),
}

impl ResponseError for RsError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::InvalidItem(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Body(status, _) => *status,
            Self::StoreFull => StatusCode::INSUFFICIENT_STORAGE,
            Self::QuotaExceeded => StatusCode::FORBIDDEN,
            Self::Exchange(_) | Self::Downstream(_) => StatusCode::BAD_GATEWAY,
            Self::Runtime(_) | Self::Guard(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (code, description) = match self {
            Self::InvalidItem(d) => ("invalid_item", d.clone()),
            Self::Body(_, d) => ("invalid_body", d.clone()),
            Self::StoreFull => ("store_full", self.to_string()),
            Self::QuotaExceeded => ("quota_exceeded", self.to_string()),
            Self::Exchange(_) => {
                tracing::warn!(error = %self, "delegation failed");
                ("exchange_failed", self.to_string())
            }
            Self::Downstream(_) => {
                tracing::warn!(error = %self, "delegation failed");
                ("downstream_failed", self.to_string())
            }
            Self::Runtime(_) | Self::Guard(_) => {
                tracing::error!(error = %self, "request failed");
                ("server_error", "internal error".to_owned())
            }
        };
        HttpResponse::build(self.status_code())
            .insert_header((CACHE_CONTROL, "no-store"))
            .json(serde_json::json!({ "error": code, "error_description": description }))
    }
}
