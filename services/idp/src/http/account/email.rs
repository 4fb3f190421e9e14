//! `POST /account/email`: the user asks to change their email address. The new address
//! must be valid and not another account's (409); the request is rate-limited per client
//! address and per new address (`account.email_change`, 429 with `Retry-After` beyond).
//! A single-use link that expires after `account.email_change.link_lifetime` is mailed to
//! the new address; only opening it (`/account/email/verify`) changes the address, which
//! is then verified (`email_verified`, OpenID Connect Core 1.0 §5.1).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use tracing::instrument;

use super::{Form, back, page, posted, refused};
use crate::account::EmailRequest;
use crate::http::login::set_retry_after;
use crate::{AppState, IdpError};

#[derive(Debug, Deserialize)]
pub(crate) struct Posted {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    email: String,
}

/// `POST /account/email`.
#[instrument(skip_all)]
pub(crate) async fn post(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<Posted>,
) -> Result<HttpResponse, IdpError> {
    let found = match posted(&state, &req, Form::Email, form.csrf.as_deref()).await? {
        Ok(found) => found,
        Err(redirect) => return Ok(redirect),
    };
    let address = req.peer_addr().map(|a| a.ip());
    match state
        .account
        .request_email_change(&found.1, &form.email, address)
        .await
    {
        Ok(EmailRequest::Sent) => Ok(back(&state, "email-sent")),
        Ok(EmailRequest::Limited(retry_after)) => {
            let mut response = page::render(
                &state,
                &req,
                &found.0,
                &found.1,
                StatusCode::TOO_MANY_REQUESTS,
                None,
                Some("Too many email changes were asked for. Please wait before trying again."),
            )
            .await?;
            set_retry_after(&mut response, retry_after);
            Ok(response)
        }
        Err(e) => refused(&state, &req, &found, e).await,
    }
}
