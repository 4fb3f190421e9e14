//! The account page (`/account`), where a signed-in user manages their own account, as in
//! Keycloak's account console: profile claims (OpenID Connect Core 1.0 §5.1), username,
//! password, sessions, applications with a remembered consent, and deletion. One file per
//! form:
//!
//! - `GET /account`: the page ([`page`]);
//! - `GET/POST /account/login`: password sign-in for the page itself ([`login`]);
//! - `POST /account/profile`, `/account/username`, `/account/password`,
//!   `/account/sessions`, `/account/apps/revoke`, `/account/delete`, `/account/email`,
//!   `/account/avatar` (multipart), `/account/avatar/delete`;
//! - `GET/POST /account/email/verify?token=…`: the mailed email change link;
//! - `GET /avatars/{user_id}`: the stored avatars.
//!
//! Every page and form answers a browser without a live session with `303 See Other` to
//! `/account/login`, never with data. Every form carries a CSRF token bound to the browser's
//! CSRF cookie, the form and the session (403 without it, checked before anything else).
//! A successful post redirects back to the page (303, Post/Redirect/Get); a refused one
//! shows the page again with the reason and a 4xx status.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};

use super::{csrf_rejected, current_session, see_other};
use crate::csrf::Purpose;
use crate::sessions::Session;
use crate::users::User;
use crate::{AppState, IdpError};

pub(crate) mod apps;
pub(crate) mod avatar;
pub(crate) mod avatars;
pub(crate) mod delete;
pub(crate) mod email;
pub(crate) mod email_verify;
pub(crate) mod login;
pub(crate) mod page;
pub(crate) mod password;
pub(crate) mod profile;
pub(crate) mod sessions;
pub(crate) mod username;

/// The forms of the page, each with its own CSRF token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Form {
    Profile,
    Username,
    Password,
    Sessions,
    Apps,
    Delete,
    Email,
    Avatar,
}

impl Form {
    fn name(self) -> &'static str {
        match self {
            Self::Profile => "profile",
            Self::Username => "username",
            Self::Password => "password",
            Self::Sessions => "sessions",
            Self::Apps => "apps",
            Self::Delete => "delete",
            Self::Email => "email",
            Self::Avatar => "avatar",
        }
    }
}

/// The CSRF challenge of `form` in `session`: a token of one form or session is refused by
/// every other.
fn challenge(form: Form, session: &Session) -> String {
    format!("{}:{}", form.name(), session.id)
}

/// The CSRF token of `form` for this browser (cookie value `cookie`).
pub(crate) fn token(state: &AppState, cookie: &str, form: Form, session: &Session) -> String {
    state
        .csrf
        .token(cookie, Purpose::Account, &challenge(form, session))
}

/// `303` to the account sign-in page.
pub(crate) fn to_login(state: &AppState) -> HttpResponse {
    see_other(&format!("{}account/login", state.base)).finish()
}

/// `303` back to the page, which then shows the notice `done`.
pub(crate) fn back(state: &AppState, done: &str) -> HttpResponse {
    see_other(&format!("{}account?done={done}", state.base)).finish()
}

/// The browser's session for a post of `form`: CSRF first (403 without a valid token),
/// then the session (`Err(redirect to sign-in)` without one).
pub(crate) async fn posted(
    state: &AppState,
    req: &HttpRequest,
    form: Form,
    token: Option<&str>,
) -> Result<Result<(Session, User), HttpResponse>, IdpError> {
    let cookie = state.cookies.csrf(req);
    let Some(found) = current_session(state, req).await? else {
        // No session: the token cannot be checked against one. Refuse a post without any
        // token as forged; send anything else to sign in.
        if cookie.is_none() || token.is_none_or(str::is_empty) {
            return Err(csrf_rejected("account"));
        }
        return Ok(Err(to_login(state)));
    };
    if !state.csrf.verify(
        cookie.as_deref(),
        Purpose::Account,
        &challenge(form, &found.0),
        token,
    ) {
        return Err(csrf_rejected("account"));
    }
    Ok(Ok(found))
}

/// A refused form post: the page again with the reason, for errors the user can fix
/// (400 invalid input, 403 wrong password, 409 taken); other errors go to the error page.
pub(crate) async fn refused(
    state: &AppState,
    req: &HttpRequest,
    found: &(Session, User),
    error: IdpError,
) -> Result<HttpResponse, IdpError> {
    let status = match &error {
        IdpError::Invalid(_) => StatusCode::BAD_REQUEST,
        IdpError::Forbidden(_) => StatusCode::FORBIDDEN,
        IdpError::Conflict(_) => StatusCode::CONFLICT,
        _ => return Err(error),
    };
    page::render(
        state,
        req,
        &found.0,
        &found.1,
        status,
        None,
        Some(&error.to_string()),
    )
    .await
}
