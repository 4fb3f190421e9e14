//! `POST /admin/v1/keys/{kid}/retire`: stops a key signing now; it stays published for
//! `keys.retired_retention` so tokens it signed keep verifying until then.

use actix_web::{HttpResponse, web};
use admin_api::scope::KeysWrite;
use admin_api::{Admin, AdminError, Problem};
use tracing::instrument;

use super::KeyView;
use crate::AppState;

/// Retires a signing key.
#[utoipa::path(
    post,
    operation_id = "keys_retire",
    path = "/admin/v1/keys/{kid}/retire",
    tag = "keys",
    params(("kid" = String, Path, description = "The key")),
    security(("admin" = ["admin:keys:write"])),
    responses(
        (status = 200, description = "The retired key", body = KeyView),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token lacks admin:keys:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such key", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already retired", body = Problem, content_type = "application/problem+json"),
    )
)]
#[instrument(skip_all)]
pub(crate) async fn handle(
    admin: Admin<KeysWrite>,
    state: web::Data<AppState>,
    kid: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    crate::admin::audited(
        &state,
        &admin,
        audit::Action::KeyRetired,
        (audit::TargetKind::Key, &kid),
        async |event| {
            let record = state.keys.retire_audited(&kid, Some(&*event)).await?;
            Ok(HttpResponse::Ok()
                .insert_header(("Cache-Control", "no-store"))
                .json(KeyView::from(&record)))
        },
    )
    .await
}
