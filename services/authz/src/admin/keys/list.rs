//! `GET /admin/v1/keys`: every stored signing key, public halves only.

use actix_web::{HttpResponse, web};
use admin_api::scope::KeysRead;
use admin_api::{Admin, AdminError, Problem};

use super::KeyView;
use crate::AppState;

/// Lists the signing keys.
#[utoipa::path(
    get,
    operation_id = "keys_list",
    path = "/admin/v1/keys",
    tag = "keys",
    security(("admin" = ["admin:keys:read"])),
    responses(
        (status = 200, description = "The keys", body = Vec<KeyView>),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token lacks admin:keys:read", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn handle(
    _admin: Admin<KeysRead>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    let keys: Vec<KeyView> = state.keys.list().await?.iter().map(KeyView::from).collect();
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(keys))
}
