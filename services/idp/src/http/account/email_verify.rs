//! `GET/POST /account/email/verify?token=…`: the link mailed by an email change. GET
//! shows a confirmation button (so a mail scanner that fetches links changes nothing) and
//! reveals nothing about the account; POST (CSRF-checked) uses the link: in one
//! transaction it is deleted and the account gets the new address as verified. An
//! unknown, altered, used or expired link is `410 Gone`; an address another account has
//! taken meanwhile is `409` (and the link is used up). No session is needed: the link
//! itself proves the mailbox, and it was asked for from a signed-in account page.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use tracing::instrument;

use crate::account::Confirmed;
use crate::csrf::Purpose;
use crate::http::{csrf_rejected, error_page, pages};
use crate::{AppState, IdpError};

/// The CSRF challenge of the confirmation form.
const CHALLENGE: &str = "email-verify";

#[derive(Debug, Deserialize)]
pub(crate) struct Query {
    #[serde(default)]
    token: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Posted {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    token: String,
}

/// The confirmation form, or (`done`) the confirmation.
#[derive(Template)]
#[template(path = "account_email.html")]
pub(crate) struct EmailVerifyPage<'a> {
    pub(crate) title: &'a str,
    pub(crate) base: &'a str,
    pub(crate) csrf: &'a str,
    pub(crate) token: &'a str,
    pub(crate) done: bool,
}

fn gone() -> HttpResponse {
    error_page(
        StatusCode::GONE,
        "This link no longer works",
        "The link has expired, was already used or is incomplete. Ask for a new one on your account page.",
    )
}

/// `GET /account/email/verify`.
#[instrument(skip_all)]
pub(crate) async fn get(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<Query>,
) -> Result<HttpResponse, IdpError> {
    if !state.account.email_link_live(&query.token).await? {
        return Ok(gone());
    }
    let (cookie, set) = state.cookies.ensure_csrf(&req)?;
    let csrf = state.csrf.token(&cookie, Purpose::Account, CHALLENGE);
    let body = pages::render(&EmailVerifyPage {
        title: "Confirm your new email address",
        base: &state.base,
        csrf: &csrf,
        token: query.token.trim(),
        done: false,
    })?;
    Ok(pages::with_csrf_cookie(StatusCode::OK, set, body))
}

/// `POST /account/email/verify`.
#[instrument(skip_all)]
pub(crate) async fn post(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<Posted>,
) -> Result<HttpResponse, IdpError> {
    if !state.csrf.verify(
        state.cookies.csrf(&req).as_deref(),
        Purpose::Account,
        CHALLENGE,
        form.csrf.as_deref(),
    ) {
        return Err(csrf_rejected("account_email"));
    }
    match state.account.confirm_email_change(&form.token).await? {
        Confirmed::NoLink => Ok(gone()),
        Confirmed::Taken => Ok(error_page(
            StatusCode::CONFLICT,
            "Email address not available",
            "That email address belongs to another account by now; nothing was changed.",
        )),
        Confirmed::Changed => {
            let body = pages::render(&EmailVerifyPage {
                title: "Email address confirmed",
                base: &state.base,
                csrf: "",
                token: "",
                done: true,
            })?;
            Ok(pages::page_builder(StatusCode::OK).body(body))
        }
    }
}
