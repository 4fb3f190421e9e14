//! `POST /account/delete`: the user deletes their account after re-authenticating with
//! their password (403 and nothing deleted when it is wrong or missing). In one
//! transaction the user, its sessions, device cookies and avatar are deleted and the
//! revocation of every grant of the user at authz is queued; it is delivered at once, or
//! by the background task with back-off when authz is down (`account` module). The
//! browser's session cookie is removed and a confirmation is shown.

use actix_web::http::StatusCode;
use actix_web::http::header::SET_COOKIE;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use tracing::instrument;

use super::{Form, posted, refused};
use crate::account::Deleted;
use crate::http::pages;
use crate::{AppState, IdpError};

#[derive(Deserialize)]
pub(crate) struct Posted {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    password: String,
}

/// After the deletion.
#[derive(Template)]
#[template(path = "account_deleted.html")]
pub(crate) struct DeletedPage<'a> {
    pub(crate) title: &'a str,
    /// authz has not confirmed the revocation yet (it is queued).
    pub(crate) queued: bool,
}

/// `POST /account/delete`.
#[instrument(skip_all)]
pub(crate) async fn post(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<Posted>,
) -> Result<HttpResponse, IdpError> {
    let found = match posted(&state, &req, Form::Delete, form.csrf.as_deref()).await? {
        Ok(found) => found,
        Err(redirect) => return Ok(redirect),
    };
    let form = form.into_inner();
    if form.password.is_empty() || form.password.len() > 1024 {
        let e = IdpError::Forbidden("Enter your password to delete your account.".to_owned());
        return refused(&state, &req, &found, e).await;
    }
    let deleted = match state.account.delete(&found.1, form.password).await {
        Ok(deleted) => deleted,
        Err(e) => return refused(&state, &req, &found, e).await,
    };
    let body = pages::render(&DeletedPage {
        title: "Account deleted",
        queued: deleted == Deleted::Queued,
    })?;
    Ok(pages::page_builder(StatusCode::OK)
        .append_header((SET_COOKIE, state.cookies.clear_session()))
        .body(body))
}
