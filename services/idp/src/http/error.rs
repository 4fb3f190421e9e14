//! The one place where the crate error becomes what a browser sees: an error page with a
//! status and a message that is safe to show. Causes of server-side failures are logged,
//! never sent.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use super::pages::{self, ErrorPage};
use crate::IdpError;

impl IdpError {
    /// Status, page title and the message shown.
    fn page(&self) -> (StatusCode, &'static str, String) {
        match self {
            Self::Invalid(m) => (StatusCode::BAD_REQUEST, "Bad request", m.clone()),
            Self::NotFound(m) => (StatusCode::NOT_FOUND, "Not found", m.clone()),
            Self::Forbidden(m) => (StatusCode::FORBIDDEN, "Request refused", m.clone()),
            Self::Gone(m) => (
                StatusCode::GONE,
                "This request has expired",
                format!("{m} Go back to the application and start again."),
            ),
            Self::Unavailable(_) | Self::Storage(storage::StorageError::Unavailable(_)) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Temporarily unavailable",
                "Sign-in is temporarily unavailable. Please try again in a moment.".to_owned(),
            ),
            Self::Upstream(_) => (
                StatusCode::BAD_GATEWAY,
                "Something went wrong",
                "Sign-in cannot be completed right now because of a problem on our side."
                    .to_owned(),
            ),
            Self::Storage(_)
            | Self::Runtime(_)
            | Self::Conflict(_)
            | Self::Task(_)
            | Self::Config(_)
            | Self::Telemetry(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "An unexpected error happened on our side. Please try again.".to_owned(),
            ),
        }
    }
}

/// Renders the error page for `status` with `title` and `message`.
pub(crate) fn error_page(status: StatusCode, title: &str, message: &str) -> HttpResponse {
    let body = pages::render(&ErrorPage {
        title,
        message,
        status: status.as_u16(),
    })
    .unwrap_or_else(|_| message.to_owned());
    pages::page_builder(status).body(body)
}

impl ResponseError for IdpError {
    fn status_code(&self) -> StatusCode {
        self.page().0
    }

    fn error_response(&self) -> HttpResponse {
        let (status, title, message) = self.page();
        if status.is_server_error() {
            tracing::error!(error = %self, status = status.as_u16(), "request failed");
        } else {
            tracing::info!(error = %self, status = status.as_u16(), "request refused");
        }
        error_page(status, title, &message)
    }
}
