//! `PUT /admin/v1/clients/{client_id}`: replaces a client's settings, only with
//! `If-Match` naming its current `ETag` (RFC 9110 §13.1.1): 412 when it changed since it
//! was read, 428 without `If-Match`. The write is conditional in the database, so of two
//! concurrent replaces from the same revision exactly one is applied.

use actix_web::{HttpResponse, web};
use admin_api::scope::ClientsWrite;
use admin_api::{Admin, AdminError, AdminJson, IfMatch, Problem, etag};
use domain::ClientId;
use tracing::instrument;

use super::{ClientInput, ClientView};
use crate::AppState;

/// Replaces a client's settings (secrets and creation time are kept).
#[utoipa::path(
    put,
    operation_id = "clients_update",
    path = "/admin/v1/clients/{client_id}",
    tag = "clients",
    params(
        ("client_id" = String, Path, description = "The client"),
        ("If-Match" = String, Header, description = "The ETag of the client as read"),
    ),
    request_body = ClientInput,
    security(("admin" = ["admin:clients:write"])),
    responses(
        (status = 200, description = "Replaced", body = ClientView,
         headers(("ETag" = String, description = "The new revision"))),
        (status = 400, description = "Invalid body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token lacks admin:clients:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such client", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Changed since read", body = Problem, content_type = "application/problem+json"),
        (status = 428, description = "If-Match missing", body = Problem, content_type = "application/problem+json"),
    )
)]
#[instrument(skip_all)]
pub(crate) async fn handle(
    admin: Admin<ClientsWrite>,
    state: web::Data<AppState>,
    id: web::Path<String>,
    if_match: IfMatch,
    body: AdminJson<ClientInput>,
) -> Result<HttpResponse, AdminError> {
    crate::admin::audited(
        &state,
        &admin,
        audit::Action::ClientUpdated,
        (audit::TargetKind::Client, &id),
        async |event| {
            let Some((current, secrets, revision)) = state.clients.get_with_revision(&id).await?
            else {
                return Err(AdminError::NotFound(format!("no client {id}")));
            };
            if_match.require(&etag(revision))?;
            let input = body.into_inner()?;
            if input
                .client_id
                .as_deref()
                .is_some_and(|given| given != id.as_str())
            {
                return Err(AdminError::invalid(
                    "client_id",
                    "must equal the client_id of the path",
                ));
            }
            let client_id =
                ClientId::parse(&id).map_err(|e| AdminError::invalid("client_id", e))?;
            let mut client = input.into_client(client_id)?;
            client.created_at = current.created_at;
            let Some((client, revision)) = state
                .clients
                .update_if(client, revision, Some(&*event))
                .await?
            else {
                return Err(AdminError::PreconditionFailed);
            };
            Ok(HttpResponse::Ok()
                .insert_header(("ETag", etag(revision)))
                .insert_header(("Cache-Control", "no-store"))
                .json(ClientView::new(&client, revision).with_secrets(&secrets)))
        },
    )
    .await
}
