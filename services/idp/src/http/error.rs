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
            Self::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Temporarily unavailable",
                "Sign-in is temporarily unavailable. Please try again in a moment.".to_owned(),
            ),
            Self::Busy(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Temporarily unavailable",
                "Sign-in is busy right now. Please try again in a moment.".to_owned(),
            ),
            Self::Storage(e) if e.is_transient() => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Temporarily unavailable",
                "Sign-in is temporarily unavailable. Please try again in a moment.".to_owned(),
            ),
            Self::Unauthenticated(m) => (StatusCode::UNAUTHORIZED, "Sign in first", m.clone()),
            Self::Federation(m) => (
                StatusCode::BAD_GATEWAY,
                "Sign-in did not complete",
                format!("{m} Go back to the application and try again."),
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
        if status == StatusCode::SERVICE_UNAVAILABLE {
            tracing::warn!(error = %self, status = status.as_u16(), "dependency unavailable");
        } else if status.is_server_error() {
            tracing::error!(error = %self, status = status.as_u16(), "request failed");
        } else {
            tracing::info!(error = %self, status = status.as_u16(), "request refused");
        }
        let mut res = error_page(status, title, &message);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            // RFC 9110 §10.2.3: a browser or client may try again after a moment.
            res.headers_mut().insert(
                actix_web::http::header::RETRY_AFTER,
                actix_web::http::header::HeaderValue::from_static("1"),
            );
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use actix_web::ResponseError;
    use actix_web::http::{StatusCode, header};
    use storage::StorageError;
    use storage::diesel::result::{DatabaseErrorKind, Error};

    use crate::IdpError;

    fn query(message: &str) -> IdpError {
        IdpError::Storage(StorageError::Query(Error::DatabaseError(
            DatabaseErrorKind::Unknown,
            Box::new(message.to_owned()),
        )))
    }

    #[test]
    fn a_busy_full_or_lost_database_is_a_503_page_with_retry_after() {
        for e in [
            query("database is locked"),
            query("database or disk is full"),
            query("canceling statement due to lock timeout"),
            IdpError::Storage(StorageError::Unavailable("pool timed out".into())),
            IdpError::Unavailable("authz down".into()),
            IdpError::Busy("the password hashing queue is full".into()),
        ] {
            let res = e.error_response();
            assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE, "{e}");
            assert_eq!(res.headers().get(header::RETRY_AFTER).unwrap(), "1", "{e}");
        }
    }

    #[tokio::test]
    async fn other_database_errors_stay_500_without_retry_after_or_cause() {
        let res = query("no such table: users").error_response();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(res.headers().get(header::RETRY_AFTER).is_none());
        let body = actix_web::body::to_bytes(res.into_body()).await.unwrap();
        let body = String::from_utf8_lossy(&body);
        assert!(!body.contains("no such table"), "{body}");
    }
}
