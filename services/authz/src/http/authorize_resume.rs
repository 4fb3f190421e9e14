//! `/authorize/resume`: where idp sends the browser after it answered a login or consent
//! challenge over `authz.v1.LoginFlow` (the `redirect_to` of `CompletedRequest`).
//!
//! The request is only continued for the browser that started it (its flow cookie);
//! anything else gets an error page and no redirect, since the redirect URI belongs to a
//! request this browser cannot prove is its own.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::authorize::reply;
use super::oauth::{Form, failure_status};
use super::pages::{self, SESSION_COOKIE};
use crate::AppState;
use crate::flow::{ResumeError, Step, flow_cookie_name};

/// `GET /authorize/resume?request=<id>`.
pub(crate) async fn get(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let params = Form::from_urlencoded(req.query_string().as_bytes());
    let Ok(Some(id)) = params.get("request") else {
        return pages::error(
            StatusCode::BAD_REQUEST,
            "The sign-in request is invalid",
            "The link has no request parameter.",
        );
    };
    let cookie_name = flow_cookie_name(id);
    let flow = pages::cookie(&req, &cookie_name);
    let session = pages::cookie(&req, SESSION_COOKIE);
    match state
        .flow
        .resume(id, flow.as_deref(), session.as_deref())
        .await
    {
        Ok((reply_to, outcome)) => {
            let over = !matches!(outcome.step, Ok(Step::Idp { .. }));
            reply(
                &state,
                &reply_to,
                outcome,
                over.then_some(cookie_name.as_str()),
            )
        }
        Err(ResumeError::Refused(message)) => pages::error(
            StatusCode::BAD_REQUEST,
            "This sign-in cannot continue",
            message,
        ),
        Err(ResumeError::Failed(failure)) => pages::error(
            failure_status(&failure),
            "Something went wrong",
            "The sign-in could not be completed. Try again in a moment.",
        ),
    }
}
