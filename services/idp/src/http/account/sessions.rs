//! `POST /account/sessions`: the user ends every other session of theirs (signed in on
//! another device or browser); authz is told about each (`SessionEnded`), which ends the
//! authz sessions and grants they backed. This session stays.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use tracing::instrument;

use super::{Form, back, posted};
use crate::{AppState, IdpError};

#[derive(Debug, Deserialize)]
pub(crate) struct Posted {
    #[serde(default)]
    csrf: Option<String>,
}

/// `POST /account/sessions`.
#[instrument(skip_all)]
pub(crate) async fn post(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<Posted>,
) -> Result<HttpResponse, IdpError> {
    let (session, _user) = match posted(&state, &req, Form::Sessions, form.csrf.as_deref()).await? {
        Ok(found) => found,
        Err(redirect) => return Ok(redirect),
    };
    state.account.end_other_sessions(&session).await?;
    Ok(back(&state, "sessions"))
}
