//! `DELETE /admin/v1/clients/{client_id}`: deletes a client with everything issued to it
//! in one transaction ([`crate::clients::Clients::delete`]): its opaque tokens, codes,
//! consents, grants and refresh tokens die with it, and its JWT access tokens are refused
//! by introspection from then on. `If-Match` is honoured when sent.

use actix_web::{HttpResponse, web};
use admin_api::scope::ClientsWrite;
use admin_api::{Admin, AdminError, IfMatch, Problem, etag};
use tracing::instrument;

use crate::AppState;

/// Deletes a client and everything issued to it.
#[utoipa::path(
    delete,
    operation_id = "clients_delete",
    path = "/admin/v1/clients/{client_id}",
    tag = "clients",
    params(
        ("client_id" = String, Path, description = "The client"),
        ("If-Match" = Option<String>, Header, description = "Delete only at this ETag"),
    ),
    security(("admin" = ["admin:clients:write"])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token lacks admin:clients:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such client", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Changed since read", body = Problem, content_type = "application/problem+json"),
    )
)]
#[instrument(skip_all)]
pub(crate) async fn handle(
    admin: Admin<ClientsWrite>,
    state: web::Data<AppState>,
    id: web::Path<String>,
    if_match: IfMatch,
) -> Result<HttpResponse, AdminError> {
    crate::admin::audited(
        &state,
        &admin,
        audit::Action::ClientDeleted,
        (audit::TargetKind::Client, &id),
        async |event| {
            if if_match != IfMatch::Absent {
                let Some((_, _, revision)) = state.clients.get_with_revision(&id).await? else {
                    return Err(AdminError::NotFound(format!("no client {id}")));
                };
                if_match.require(&etag(revision))?;
            }
            state.clients.delete_audited(&id, Some(&*event)).await?;
            Ok(HttpResponse::NoContent()
                .insert_header(("Cache-Control", "no-store"))
                .finish())
        },
    )
    .await
}
