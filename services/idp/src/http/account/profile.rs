//! `POST /account/profile`: the user edits their profile claims (OpenID Connect Core 1.0
//! §5.1 `name`, `given_name`, `family_name`, `locale`). `updated_at` moves, and the next
//! ID token and userinfo answer carry the new values (authz reads them through
//! `Sessions.GetUserClaims` each time). An empty field removes the claim.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use tracing::instrument;

use super::{Form, back, posted, refused};
use crate::users::{ProfileEdit, claim_text, locale};
use crate::{AppState, IdpError};

#[derive(Debug, Deserialize)]
pub(crate) struct Posted {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    given_name: String,
    #[serde(default)]
    family_name: String,
    #[serde(default)]
    locale: String,
}

fn edit(p: &Posted) -> Result<ProfileEdit, IdpError> {
    Ok(ProfileEdit {
        name: Some(claim_text("name", &p.name)?),
        given_name: Some(claim_text("given_name", &p.given_name)?),
        family_name: Some(claim_text("family_name", &p.family_name)?),
        locale: Some(locale(&p.locale)?),
        ..ProfileEdit::default()
    })
}

/// `POST /account/profile`.
#[instrument(skip_all)]
pub(crate) async fn post(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<Posted>,
) -> Result<HttpResponse, IdpError> {
    let found = match posted(&state, &req, Form::Profile, form.csrf.as_deref()).await? {
        Ok(found) => found,
        Err(redirect) => return Ok(redirect),
    };
    let result = match edit(&form) {
        Ok(edit) => state.users.update_profile(&found.1.id, edit).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => {
            tracing::info!(user = %found.1.id, "profile changed");
            Ok(back(&state, "profile"))
        }
        Err(e) => refused(&state, &req, &found, e).await,
    }
}
