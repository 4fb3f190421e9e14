//! `POST /admin/v1/users/{subject}/sign-out`: "sign this user out of every app": every
//! grant of the user is revoked with everything issued from it and their authz browser
//! sessions end, in one transaction (consents are kept). Idempotent.

use actix_web::{HttpResponse, web};
use admin_api::scope::UsersWrite;
use admin_api::{Admin, AdminError, Problem};
use serde::Serialize;
use tracing::instrument;
use utoipa::ToSchema;

use crate::AppState;

/// What was revoked.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SignedOut {
    /// Grants revoked.
    grants: usize,
    /// authz browser sessions ended.
    sessions: usize,
}

/// Revokes every grant and session of a user.
#[utoipa::path(
    post,
    operation_id = "users_sign_out",
    path = "/admin/v1/users/{subject}/sign-out",
    tag = "users",
    params(("subject" = String, Path, description = "The user's subject")),
    security(("admin" = ["admin:users:write"])),
    responses(
        (status = 200, description = "Revoked", body = SignedOut),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token lacks admin:users:write", body = Problem, content_type = "application/problem+json"),
    )
)]
#[instrument(skip_all)]
pub(crate) async fn handle(
    admin: Admin<UsersWrite>,
    state: web::Data<AppState>,
    subject: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    crate::admin::audited(
        &state,
        &admin,
        audit::Action::GrantsRevoked,
        (audit::TargetKind::User, &subject),
        async |event| {
            let revoked = state
                .grants
                .revoke_subject_audited(&subject, Some(&*event))
                .await
                .map_err(|e| {
                    if e.is_transient() {
                        AdminError::Unavailable(e.to_string())
                    } else {
                        AdminError::Internal(e.to_string())
                    }
                })?;
            Ok(HttpResponse::Ok()
                .insert_header(("Cache-Control", "no-store"))
                .json(SignedOut {
                    grants: revoked.grants,
                    sessions: revoked.sessions,
                }))
        },
    )
    .await
}
