//! `DELETE /admin/v1/clients/{client_id}/grants/{grant_id}`: revokes one grant of the
//! client with everything issued from it (RFC 7009 §2.1 semantics: its refresh tokens
//! stop working, its access tokens are denylisted or deleted, so introspection reports
//! them inactive, RFC 7662 §2.2), in one transaction with its audit event.

use actix_web::{HttpResponse, web};
use admin_api::scope::ClientsWrite;
use admin_api::{Admin, AdminError, Problem};
use tracing::instrument;

use crate::AppState;

/// Revokes one grant of a client.
#[utoipa::path(
    delete,
    operation_id = "clients_revoke_grant",
    path = "/admin/v1/clients/{client_id}/grants/{grant_id}",
    tag = "clients",
    params(
        ("client_id" = String, Path, description = "The client"),
        ("grant_id" = String, Path, description = "The grant"),
    ),
    security(("admin" = ["admin:clients:write"])),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token lacks admin:clients:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No live grant of the client with this id", body = Problem, content_type = "application/problem+json"),
    )
)]
#[instrument(skip_all)]
pub(crate) async fn handle(
    admin: Admin<ClientsWrite>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AdminError> {
    let (client_id, grant_id) = path.into_inner();
    crate::admin::audited(
        &state,
        &admin,
        audit::Action::GrantsRevoked,
        (audit::TargetKind::Grant, &grant_id),
        async |event| {
            let revoked = state
                .grants
                .revoke_client_grants(&client_id, Some(&grant_id), Some(&*event))
                .await
                .map_err(crate::AuthzError::from)?;
            if revoked == 0 {
                return Err(AdminError::NotFound(format!(
                    "no live grant {grant_id} of client {client_id}"
                )));
            }
            Ok(HttpResponse::NoContent()
                .insert_header(("Cache-Control", "no-store"))
                .finish())
        },
    )
    .await
}
