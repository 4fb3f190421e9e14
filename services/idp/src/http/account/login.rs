//! `GET/POST /account/login`: sign-in for the account page itself (no relying party, so no
//! login challenge): the same password check as the login form (`login::password_sign_in`:
//! the login throttle, argon2id, one message for every failure, a new session and device
//! cookie), then `303` to `/account`. A browser that is already signed in goes straight to
//! the page.

use actix_web::http::StatusCode;
use actix_web::http::header::SET_COOKIE;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use tracing::instrument;

use crate::csrf::Purpose;
use crate::http::login::{FAILED, PasswordSignIn, THROTTLED, password_sign_in, set_retry_after};
use crate::http::{csrf_rejected, current_session, pages, see_other};
use crate::{AppState, IdpError};

/// The CSRF challenge of this form (there is no session yet).
const CHALLENGE: &str = "account-login";

#[derive(Deserialize)]
pub(crate) struct Posted {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

/// The sign-in form of the account page.
#[derive(Template)]
#[template(path = "account_login.html")]
pub(crate) struct AccountLoginPage<'a> {
    pub(crate) title: &'a str,
    pub(crate) base: &'a str,
    pub(crate) csrf: &'a str,
    pub(crate) username: &'a str,
    pub(crate) error: Option<&'a str>,
}

fn form(
    state: &AppState,
    req: &HttpRequest,
    status: StatusCode,
    username: &str,
    error: Option<&str>,
) -> Result<HttpResponse, IdpError> {
    let (cookie, set) = state.cookies.ensure_csrf(req)?;
    let csrf = state.csrf.token(&cookie, Purpose::Account, CHALLENGE);
    let body = pages::render(&AccountLoginPage {
        title: "Sign in to your account",
        base: &state.base,
        csrf: &csrf,
        username,
        error,
    })?;
    Ok(pages::with_csrf_cookie(status, set, body))
}

fn to_account(state: &AppState) -> String {
    format!("{}account", state.base)
}

/// `GET /account/login`.
#[instrument(skip_all)]
pub(crate) async fn get(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, IdpError> {
    if current_session(&state, &req).await?.is_some() {
        return Ok(see_other(&to_account(&state)).finish());
    }
    form(&state, &req, StatusCode::OK, "", None)
}

/// `POST /account/login`.
#[instrument(skip_all)]
pub(crate) async fn post(
    state: web::Data<AppState>,
    req: HttpRequest,
    posted: web::Form<Posted>,
) -> Result<HttpResponse, IdpError> {
    let posted = posted.into_inner();
    if !state.csrf.verify(
        state.cookies.csrf(&req).as_deref(),
        Purpose::Account,
        CHALLENGE,
        posted.csrf.as_deref(),
    ) {
        return Err(csrf_rejected("account_login"));
    }
    let login = posted.username.trim();
    match password_sign_in(&state, &req, login, posted.password).await? {
        PasswordSignIn::Throttled(retry_after) => {
            let mut response = form(
                &state,
                &req,
                StatusCode::TOO_MANY_REQUESTS,
                login,
                Some(THROTTLED),
            )?;
            set_retry_after(&mut response, retry_after);
            Ok(response)
        }
        PasswordSignIn::Failed => form(&state, &req, StatusCode::OK, login, Some(FAILED)),
        PasswordSignIn::SignedIn { cookies, .. } => {
            let mut response =
                see_other(&format!("{}?done=signed-in", to_account(&state))).finish();
            for cookie in cookies {
                response.headers_mut().append(SET_COOKIE, cookie);
            }
            Ok(response)
        }
    }
}
