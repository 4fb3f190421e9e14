//! `POST /admin/v1/clients/{client_id}/secret`: issues a new generated secret, shown in
//! this response only; the previous secrets keep working for `grace` seconds (Hydra's and
//! Keycloak's secret rotation), then stop.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use admin_api::scope::ClientsWrite;
use admin_api::{Admin, AdminError, AdminJson, Problem, etag};
use serde::{Deserialize, Serialize};
use tracing::instrument;
use utoipa::ToSchema;

use crate::AppState;

/// Longest grace: 30 days.
const MAX_GRACE: u64 = 30 * 86_400;

/// How long the previous secrets keep working.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RotateInput {
    /// Seconds the previous secrets stay valid (0 to 2592000; 0 stops them now).
    grace: u64,
}

/// The new secret (shown once).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RotatedSecret {
    /// The client.
    client_id: String,
    /// The new secret; only its SHA-256 is stored.
    client_secret: String,
    /// Seconds the previous secrets stay valid.
    previous_valid_for: u64,
}

/// Rotates a confidential client's secret.
#[utoipa::path(
    post,
    operation_id = "clients_rotate_secret",
    path = "/admin/v1/clients/{client_id}/secret",
    tag = "clients",
    params(("client_id" = String, Path, description = "The client")),
    request_body = RotateInput,
    security(("admin" = ["admin:clients:write"])),
    responses(
        (status = 200, description = "The new secret, shown this once", body = RotatedSecret,
         headers(("ETag" = String, description = "The client's new revision"))),
        (status = 400, description = "Invalid body, or a public client", body = Problem, content_type = "application/problem+json"),
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
    body: AdminJson<RotateInput>,
) -> Result<HttpResponse, AdminError> {
    crate::admin::audited(
        &state,
        &admin,
        audit::Action::ClientSecretRotated,
        (audit::TargetKind::Client, &id),
        async |event| {
            let input = body.into_inner()?;
            if input.grace > MAX_GRACE {
                return Err(AdminError::invalid(
                    "grace",
                    format!("must be at most {MAX_GRACE} seconds"),
                ));
            }
            let secret = state
                .clients
                .rotate_secret_audited(&id, Duration::from_secs(input.grace), Some(&*event))
                .await?;
            let mut response = HttpResponse::Ok();
            response.insert_header(("Cache-Control", "no-store"));
            if let Some((_, _, revision)) = state.clients.get_with_revision(&id).await? {
                response.insert_header(("ETag", etag(revision)));
            }
            Ok(response.json(RotatedSecret {
                client_id: id.to_string(),
                client_secret: secret,
                previous_valid_for: input.grace,
            }))
        },
    )
    .await
}
