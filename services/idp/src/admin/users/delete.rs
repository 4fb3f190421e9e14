//! `DELETE /admin/v1/users/{user_id}`: deletes a user with its sessions, device cookies and
//! avatar. In the same transaction the revocation of every grant of the user at authz is
//! queued (the durable outbox of account deletion) and `user.deleted` is recorded; the
//! revocation is delivered at once, or retried until authz takes it, so the user's refresh
//! tokens die even when authz was down at the time.

use actix_web::{HttpResponse, web};
use admin_api::scope::UsersWrite;
use admin_api::{Admin, AdminError, IfMatch, Problem, etag};
use tracing::instrument;

use super::find;
use crate::AppState;

/// Deletes a user. With `If-Match`, only while the user is at that revision.
#[utoipa::path(
    delete,
    path = "/admin/v1/users/{user_id}",
    operation_id = "users_delete",
    tag = "users",
    params(
        ("user_id" = String, Path, description = "The user's id"),
        ("If-Match" = Option<String>, Header, description = "Delete only at this ETag"),
    ),
    security(("admin" = ["admin:users:write"])),
    responses(
        (status = 204, description = "Deleted; the user's grants at authz are revoked or queued for revocation"),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token lacks admin:users:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Changed since read", body = Problem, content_type = "application/problem+json"),
    )
)]
#[instrument(skip_all)]
pub(crate) async fn handle(
    admin: Admin<UsersWrite>,
    state: web::Data<AppState>,
    id: web::Path<String>,
    if_match: IfMatch,
) -> Result<HttpResponse, AdminError> {
    let target = id.to_string();
    let result: Result<HttpResponse, AdminError> = async {
        let current = find(&state, &id).await?;
        if if_match != IfMatch::Absent {
            if_match.require(&etag(current.updated_at))?;
        }
        state
            .account
            .delete_by(&crate::admin::caller(&admin), &current.id)
            .await?;
        Ok(HttpResponse::NoContent().finish())
    }
    .await;
    crate::admin::audit_refusal(
        &state,
        &admin,
        audit::Action::UserDeleted,
        Some((audit::TargetKind::User, &target)),
        result,
    )
    .await
}
