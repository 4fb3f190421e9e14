//! `DELETE /admin/v1/users/{subject}/consents/{client_id}`: withdraws what the user granted
//! one client in one transaction: its grants are revoked (refresh tokens stop, access
//! tokens are reported inactive, RFC 7009 §2.1), codes deleted, the consent forgotten.

use actix_web::{HttpResponse, web};
use admin_api::scope::UsersWrite;
use admin_api::{Admin, AdminError, Problem};
use tracing::instrument;

use crate::AppState;

/// Revokes a user's consent to one client, with its grants.
#[utoipa::path(
    delete,
    operation_id = "users_revoke_consent",
    path = "/admin/v1/users/{subject}/consents/{client_id}",
    tag = "users",
    params(
        ("subject" = String, Path, description = "The user's subject"),
        ("client_id" = String, Path, description = "The client"),
    ),
    security(("admin" = ["admin:users:write"])),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token lacks admin:users:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Neither a consent nor a grant", body = Problem, content_type = "application/problem+json"),
    )
)]
#[instrument(skip_all)]
pub(crate) async fn handle(
    admin: Admin<UsersWrite>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AdminError> {
    let (subject, client_id) = path.into_inner();
    let target = format!("{subject}/{client_id}");
    crate::admin::audited(
        &state,
        &admin,
        audit::Action::ConsentRevoked,
        (audit::TargetKind::User, &target),
        async |event| {
            state
                .consents
                .revoke(&subject, &client_id, Some(&*event))
                .await?;
            Ok(HttpResponse::NoContent()
                .insert_header(("Cache-Control", "no-store"))
                .finish())
        },
    )
    .await
}
