//! `GET /admin/v1/users/{subject}/consents`: the consents a user asked to be remembered.

use actix_web::{HttpResponse, web};
use admin_api::scope::UsersRead;
use admin_api::{Admin, AdminError, Problem};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;

/// A remembered consent.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ConsentView {
    /// The client it was given to.
    client_id: String,
    /// The granted scopes, space-separated.
    scope: String,
    /// When it was last given or widened, Unix seconds.
    updated_at: i64,
}

/// Lists a user's remembered consents.
#[utoipa::path(
    get,
    operation_id = "users_consents",
    path = "/admin/v1/users/{subject}/consents",
    tag = "users",
    params(("subject" = String, Path, description = "The user's subject (idp user id)")),
    security(("admin" = ["admin:users:read"])),
    responses(
        (status = 200, description = "The consents, by client id", body = Vec<ConsentView>),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token lacks admin:users:read", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn handle(
    _admin: Admin<UsersRead>,
    state: web::Data<AppState>,
    subject: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let consents: Vec<ConsentView> = state
        .consents
        .list(&subject)
        .await?
        .into_iter()
        .map(|c| ConsentView {
            client_id: c.client_id,
            scope: c.scope,
            updated_at: c.updated_at,
        })
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(consents))
}
