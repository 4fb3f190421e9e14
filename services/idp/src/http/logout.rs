//! `GET/POST /logout`: ends the browser's idp session after a confirmation. GET shows the
//! confirmation (a CSRF-protected form; a link or an image on another site cannot sign the
//! user out); POST checks the token (403 otherwise), ends the session, removes the cookie
//! and shows that the user is signed out. Without a session both show the signed-out page.
//!
//! Ending the session here also tells authz (`LoginFlow.SessionEnded`), which ends the
//! authz sessions backed by it and sends back-channel logout tokens to the relying parties
//! (OpenID Connect Back-Channel Logout 1.0). authz being unreachable does not undo the
//! sign-out here (it is logged). Relying parties use authz's end-session endpoint, which
//! ends this session through `Sessions.EndSession`.

use actix_web::http::StatusCode;
use actix_web::http::header::SET_COOKIE;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use tracing::instrument;

use super::pages::{self, LogoutPage, SignedOutPage};
use super::{csrf_rejected, current_session};
use crate::csrf::Purpose;
use crate::{AppState, IdpError};

#[derive(Debug, Deserialize)]
pub(crate) struct Form {
    #[serde(default)]
    csrf: Option<String>,
}

fn signed_out() -> Result<String, IdpError> {
    pages::render(&SignedOutPage {
        title: "Signed out",
    })
}

/// `GET /logout`.
#[instrument(skip_all)]
pub(crate) async fn get(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, IdpError> {
    let Some((_, user)) = current_session(&state, &req).await? else {
        return Ok(pages::page_builder(StatusCode::OK).body(signed_out()?));
    };
    let (cookie, set) = state.cookies.ensure_csrf(&req)?;
    let csrf = state.csrf.token(&cookie, Purpose::Logout, "");
    let body = pages::render(&LogoutPage {
        title: "Sign out?",
        base: &state.base,
        csrf: &csrf,
        username: &user.username,
    })?;
    Ok(pages::with_csrf_cookie(StatusCode::OK, set, body))
}

/// `POST /logout`.
#[instrument(skip_all)]
pub(crate) async fn post(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<Form>,
) -> Result<HttpResponse, IdpError> {
    if !state.csrf.verify(
        state.cookies.csrf(&req).as_deref(),
        Purpose::Logout,
        "",
        form.csrf.as_deref(),
    ) {
        return Err(csrf_rejected("logout"));
    }
    if let Some((session, user)) = current_session(&state, &req).await? {
        state.sessions.end(&session.id).await?;
        tracing::info!(user = %user.id, session = %session.id, "signed out");
        // logout: authz propagates the end of the session (Back-Channel Logout 1.0 §2.7).
        if let Err(e) = state.flow.session_ended(&session.id).await {
            tracing::warn!(error = %e, "authz was not told that the session ended");
        }
    }
    Ok(pages::page_builder(StatusCode::OK)
        .append_header((SET_COOKIE, state.cookies.clear_session()))
        .body(signed_out()?))
}
