//! `POST /admin/v1/keys`: rotates — generates the next key of an algorithm, published at
//! once and signing after `keys.publish_ahead` (so verifiers' JWKS caches learn it first),
//! or at once with `activate_now`.

use actix_web::{HttpResponse, web};
use admin_api::scope::KeysWrite;
use admin_api::{Admin, AdminError, AdminJson, Problem};
use issuer::Algorithm;
use serde::Deserialize;
use tracing::instrument;
use utoipa::ToSchema;

use super::KeyView;
use crate::AppState;

/// Which key to generate.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RotateKey {
    /// JWS algorithm (`ES256`, `RS256`, `EdDSA`, …).
    alg: String,
    /// Sign with it at once instead of after `keys.publish_ahead`.
    #[serde(default)]
    activate_now: bool,
}

/// Generates the next signing key of an algorithm.
#[utoipa::path(
    post,
    operation_id = "keys_rotate",
    path = "/admin/v1/keys",
    tag = "keys",
    request_body = RotateKey,
    security(("admin" = ["admin:keys:write"])),
    responses(
        (status = 201, description = "The new key", body = KeyView),
        (status = 400, description = "Invalid body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token lacks admin:keys:write", body = Problem, content_type = "application/problem+json"),
    )
)]
#[instrument(skip_all)]
pub(crate) async fn handle(
    admin: Admin<KeysWrite>,
    state: web::Data<AppState>,
    body: AdminJson<RotateKey>,
) -> Result<HttpResponse, AdminError> {
    crate::admin::audited(
        &state,
        &admin,
        audit::Action::KeyRotated,
        (audit::TargetKind::Key, ""),
        async |event| {
            let input = body.into_inner()?;
            let alg: Algorithm = input
                .alg
                .parse()
                .map_err(|e: String| AdminError::invalid("alg", e))?;
            let (record, committed) = state
                .keys
                .generate_audited(alg, input.activate_now, Some(event.clone()))
                .await?;
            if let Some(committed) = committed {
                *event = committed;
            }
            Ok(HttpResponse::Created()
                .insert_header(("Cache-Control", "no-store"))
                .json(KeyView::from(&record)))
        },
    )
    .await
}
