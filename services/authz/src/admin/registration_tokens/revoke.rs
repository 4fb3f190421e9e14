//! `DELETE /admin/v1/registration-tokens/{id}`: revokes an initial access token at once;
//! the clients registered with it stay.

use actix_web::{HttpResponse, web};
use admin_api::scope::ClientsWrite;
use admin_api::{Admin, AdminError, Problem};
use tracing::instrument;

use crate::AppState;

/// Revokes an initial access token.
#[utoipa::path(
    delete,
    operation_id = "registration_tokens_revoke",
    path = "/admin/v1/registration-tokens/{id}",
    tag = "registration-tokens",
    params(("id" = String, Path, description = "The token's id")),
    security(("admin" = ["admin:clients:write"])),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token lacks admin:clients:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such token", body = Problem, content_type = "application/problem+json"),
    )
)]
#[instrument(skip_all)]
pub(crate) async fn handle(
    admin: Admin<ClientsWrite>,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    crate::admin::audited(
        &state,
        &admin,
        audit::Action::RegistrationTokenRevoked,
        (audit::TargetKind::RegistrationToken, &id),
        async |event| {
            state
                .registrations
                .revoke_token_audited(&id, Some(&*event))
                .await?;
            Ok(HttpResponse::NoContent()
                .insert_header(("Cache-Control", "no-store"))
                .finish())
        },
    )
    .await
}
