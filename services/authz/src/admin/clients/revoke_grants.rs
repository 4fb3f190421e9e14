//! `DELETE /admin/v1/clients/{client_id}/grants`: revokes every grant of the client with
//! everything issued from them (RFC 7009 §2.1 semantics), in one transaction with its
//! audit event; the client itself stays registered. Idempotent.

use actix_web::{HttpResponse, web};
use admin_api::scope::ClientsWrite;
use admin_api::{Admin, AdminError, Problem};
use serde::Serialize;
use tracing::instrument;
use utoipa::ToSchema;

use crate::AppState;

/// What was revoked.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct GrantsRevoked {
    /// Grants revoked by this call.
    grants: usize,
}

/// Revokes every grant of a client.
#[utoipa::path(
    delete,
    operation_id = "clients_revoke_grants",
    path = "/admin/v1/clients/{client_id}/grants",
    tag = "clients",
    params(("client_id" = String, Path, description = "The client")),
    security(("admin" = ["admin:clients:write"])),
    responses(
        (status = 200, description = "Revoked", body = GrantsRevoked),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token lacks admin:clients:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such client", body = Problem, content_type = "application/problem+json"),
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
        audit::Action::GrantsRevoked,
        (audit::TargetKind::Client, &id),
        async |event| {
            if state.clients.get(&id).await?.is_none() {
                return Err(AdminError::NotFound(format!("no client {id}")));
            }
            let grants = state
                .grants
                .revoke_client_grants(&id, None, Some(&*event))
                .await
                .map_err(crate::AuthzError::from)?;
            Ok(HttpResponse::Ok()
                .insert_header(("Cache-Control", "no-store"))
                .json(GrantsRevoked { grants }))
        },
    )
    .await
}
