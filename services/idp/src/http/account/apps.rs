//! `POST /account/apps/revoke`: the user withdraws an application's access. authz revokes
//! every grant of that client for the user (its refresh tokens stop working, its access
//! tokens are reported inactive) and forgets the remembered consent, in one transaction
//! (`LoginFlow.RevokeConsent`), so the application must ask again.

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
    client_id: String,
}

/// `POST /account/apps/revoke`.
#[instrument(skip_all)]
pub(crate) async fn post(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<Posted>,
) -> Result<HttpResponse, IdpError> {
    let found = match posted(&state, &req, Form::Apps, form.csrf.as_deref()).await? {
        Ok(found) => found,
        Err(redirect) => return Ok(redirect),
    };
    match state.account.revoke_app(&found.1.id, &form.client_id).await {
        Ok(_) => Ok(back(&state, "app")),
        Err(e) => refused(&state, &req, &found, e).await,
    }
}
