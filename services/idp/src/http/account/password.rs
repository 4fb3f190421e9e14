//! `POST /account/password`: the user changes their password. The current password is
//! required (re-authentication, OWASP ASVS V2.1.6: 403 and nothing changed when wrong), the
//! new one twice and at least `passwords.min_length` long; the user's other sessions end in
//! the same transaction (ASVS V3.3.3) and authz is told about each (`SessionEnded`), which
//! ends the authz sessions and grants they backed. This session stays.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use tracing::instrument;

use super::{Form, back, posted, refused};
use crate::account::PasswordChange;
use crate::{AppState, IdpError};

/// Longest password considered (as at sign-in).
const MAX_PASSWORD: usize = 1024;

#[derive(Deserialize)]
pub(crate) struct Posted {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
    #[serde(default)]
    confirm: String,
}

/// `POST /account/password`.
#[instrument(skip_all)]
pub(crate) async fn post(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<Posted>,
) -> Result<HttpResponse, IdpError> {
    let found = match posted(&state, &req, Form::Password, form.csrf.as_deref()).await? {
        Ok(found) => found,
        Err(redirect) => return Ok(redirect),
    };
    let form = form.into_inner();
    if [&form.current, &form.new, &form.confirm]
        .iter()
        .any(|p| p.len() > MAX_PASSWORD)
    {
        let e = IdpError::Invalid("Passwords are at most 1024 characters.".to_owned());
        return refused(&state, &req, &found, e).await;
    }
    let change = PasswordChange {
        current: form.current,
        new: form.new,
        confirm: form.confirm,
    };
    match state
        .account
        .change_password(&found.1, &found.0, change)
        .await
    {
        Ok(_) => Ok(back(&state, "password")),
        Err(e) => refused(&state, &req, &found, e).await,
    }
}
