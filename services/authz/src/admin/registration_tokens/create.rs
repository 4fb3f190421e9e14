//! `POST /admin/v1/registration-tokens`: mints an initial access token (RFC 7591 §3); its
//! value is in this response only.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use admin_api::scope::ClientsWrite;
use admin_api::{Admin, AdminError, AdminJson, Problem};
use domain::ScopeSet;
use serde::Deserialize;
use tracing::instrument;
use utoipa::ToSchema;

use super::{ITEM_PATH, RegistrationTokenView};
use crate::AppState;

/// Longest lifetime of an initial access token: one year.
const MAX_EXPIRES_IN: u64 = 366 * 24 * 3600;

/// What token to mint.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewRegistrationToken {
    /// How long it works, seconds (1 to 31622400).
    expires_in: u64,
    /// How many clients it may register (default 1).
    #[serde(default = "one")]
    uses: u32,
    /// The most scope a client registered with it may get, space-separated (also its
    /// default); default: `registration.open_scope`.
    scope: Option<String>,
    /// A note for the listing (who it is for).
    #[serde(default)]
    description: String,
}

fn one() -> u32 {
    1
}

/// Mints an initial access token for `POST /register`.
#[utoipa::path(
    post,
    operation_id = "registration_tokens_create",
    path = "/admin/v1/registration-tokens",
    tag = "registration-tokens",
    request_body = NewRegistrationToken,
    security(("admin" = ["admin:clients:write"])),
    responses(
        (status = 201, description = "The token, with its value shown this once", body = RegistrationTokenView,
         headers(("Location" = String, description = "The token's URL (for revoking it)"))),
        (status = 400, description = "Invalid body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token lacks admin:clients:write", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
    )
)]
#[instrument(skip_all)]
pub(crate) async fn handle(
    admin: Admin<ClientsWrite>,
    state: web::Data<AppState>,
    body: AdminJson<NewRegistrationToken>,
) -> Result<HttpResponse, AdminError> {
    crate::admin::audited(
        &state,
        &admin,
        audit::Action::RegistrationTokenCreated,
        (audit::TargetKind::RegistrationToken, ""),
        async |event| {
            let input = body.into_inner()?;
            if input.expires_in == 0 || input.expires_in > MAX_EXPIRES_IN {
                return Err(AdminError::invalid(
                    "expires_in",
                    format!("must be between 1 and {MAX_EXPIRES_IN} seconds"),
                ));
            }
            if input.uses == 0 {
                return Err(AdminError::invalid("uses", "must be at least 1"));
            }
            let scope = match input.scope.as_deref() {
                Some(s) => {
                    ScopeSet::parse(s).map_err(|e| AdminError::invalid("scope", e.to_string()))?
                }
                None => state.registrations.default_scope(),
            };
            let (token, value, committed) = state
                .registrations
                .create_token_audited(
                    input.description,
                    scope,
                    Duration::from_secs(input.expires_in),
                    input.uses,
                    Some(event.clone()),
                )
                .await?;
            if let Some(committed) = committed {
                *event = committed;
            }
            let mut view = RegistrationTokenView::from(&token);
            view.token = Some(value);
            Ok(HttpResponse::Created()
                .insert_header(("Location", ITEM_PATH.replace("{id}", &token.id)))
                .insert_header(("Cache-Control", "no-store"))
                .json(view))
        },
    )
    .await
}
