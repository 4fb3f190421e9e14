//! `POST /admin/v1/clients`: registers a client; 201 with `Location` and `ETag`, and the
//! generated secret of a confidential client in this response only (only its SHA-256 is
//! stored).

use actix_web::{HttpResponse, web};
use admin_api::scope::ClientsWrite;
use admin_api::{Admin, AdminError, AdminJson, Problem, etag};
use domain::ClientId;
use tracing::instrument;

use super::{ClientInput, ClientView, ITEM_PATH};
use crate::AppState;
use crate::clients::NewClient;

/// Creates a client.
#[utoipa::path(
    post,
    operation_id = "clients_create",
    path = "/admin/v1/clients",
    tag = "clients",
    request_body = ClientInput,
    security(("admin" = ["admin:clients:write"])),
    responses(
        (status = 201, description = "Created; `client_secret` is shown this once", body = ClientView,
         headers(("Location" = String, description = "The new client"), ("ETag" = String, description = "Its revision"))),
        (status = 400, description = "Invalid body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token lacks admin:clients:write", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The client_id exists", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
    )
)]
#[instrument(skip_all)]
pub(crate) async fn handle(
    admin: Admin<ClientsWrite>,
    state: web::Data<AppState>,
    body: AdminJson<ClientInput>,
) -> Result<HttpResponse, AdminError> {
    crate::admin::audited(
        &state,
        &admin,
        audit::Action::ClientCreated,
        (audit::TargetKind::Client, ""),
        async |event| {
            let input = body.into_inner()?;
            let id = match &input.client_id {
                Some(id) => ClientId::parse(id).map_err(|e| AdminError::invalid("client_id", e))?,
                None => ClientId::parse(&crate::clients::generated_id()?)
                    .map_err(|e| AdminError::Internal(e.to_string()))?,
            };
            crate::admin::retarget(event, audit::TargetKind::Client, id.as_str());
            let client = input.into_client(id)?;
            let (client, secret) = state
                .clients
                .create_audited(
                    NewClient {
                        client,
                        secret: None,
                    },
                    Some(&*event),
                )
                .await?;
            let Some((client, secrets, revision)) =
                state.clients.get_with_revision(client.id.as_str()).await?
            else {
                return Err(AdminError::Conflict(format!(
                    "client {} was deleted while it was being created",
                    client.id
                )));
            };
            let mut view = ClientView::new(&client, revision).with_secrets(&secrets);
            view.client_secret = secret;
            let location = ITEM_PATH.replace("{client_id}", client.id.as_str());
            Ok(HttpResponse::Created()
                .insert_header(("Location", location))
                .insert_header(("ETag", etag(revision)))
                .insert_header(("Cache-Control", "no-store"))
                .json(view))
        },
    )
    .await
}
