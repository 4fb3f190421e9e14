//! `GET /admin/v1/registration-tokens`: every initial access token, newest first, never
//! their values.

use actix_web::{HttpResponse, web};
use admin_api::scope::ClientsRead;
use admin_api::{Admin, AdminError, Problem};

use super::RegistrationTokenView;
use crate::AppState;

/// Lists the initial access tokens.
#[utoipa::path(
    get,
    operation_id = "registration_tokens_list",
    path = "/admin/v1/registration-tokens",
    tag = "registration-tokens",
    security(("admin" = ["admin:clients:read"])),
    responses(
        (status = 200, description = "The tokens, newest first", body = Vec<RegistrationTokenView>),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token lacks admin:clients:read", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn handle(
    _admin: Admin<ClientsRead>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    let tokens: Vec<RegistrationTokenView> = state
        .registrations
        .list_tokens()
        .await?
        .iter()
        .map(RegistrationTokenView::from)
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(tokens))
}
