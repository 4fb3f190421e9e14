//! `GET /admin/v1/clients/{client_id}`: one client with its secrets' lifetimes and its
//! `ETag` (RFC 9110 §8.8.3), which a replace must send back in `If-Match`.

use actix_web::{HttpResponse, web};
use admin_api::scope::ClientsRead;
use admin_api::{Admin, AdminError, Problem, etag};

use super::ClientView;
use crate::AppState;

/// Reads a client.
#[utoipa::path(
    get,
    operation_id = "clients_get",
    path = "/admin/v1/clients/{client_id}",
    tag = "clients",
    params(("client_id" = String, Path, description = "The client")),
    security(("admin" = ["admin:clients:read"])),
    responses(
        (status = 200, description = "The client", body = ClientView,
         headers(("ETag" = String, description = "The client's revision"))),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token lacks admin:clients:read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such client", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn handle(
    _admin: Admin<ClientsRead>,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let Some((client, secrets, revision)) = state.clients.get_with_revision(&id).await? else {
        return Err(AdminError::NotFound(format!("no client {id}")));
    };
    Ok(HttpResponse::Ok()
        .insert_header(("ETag", etag(revision)))
        .insert_header(("Cache-Control", "no-store"))
        .json(ClientView::new(&client, revision).with_secrets(&secrets)))
}
