//! `POST /account/username`: the user picks a new username (1-64 characters of `a-z 0-9 .
//! _ - @ +`, stored lower-case). Refused (409) when another account has it as username or
//! email, or holds it because it changed away from it less than `account.username_hold`
//! ago; the old name is then held for this user for that long.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use tracing::instrument;

use super::{Form, back, posted, refused};
use crate::{AppState, IdpError};

#[derive(Debug, Deserialize)]
pub(crate) struct Posted {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    username: String,
}

/// `POST /account/username`.
#[instrument(skip_all)]
pub(crate) async fn post(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<Posted>,
) -> Result<HttpResponse, IdpError> {
    let found = match posted(&state, &req, Form::Username, form.csrf.as_deref()).await? {
        Ok(found) => found,
        Err(redirect) => return Ok(redirect),
    };
    match state
        .account
        .change_username(&found.1, &form.username)
        .await
    {
        Ok(_) => Ok(back(&state, "username")),
        Err(e) => refused(&state, &req, &found, e).await,
    }
}
