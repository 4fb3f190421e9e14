//! `POST /admin/v1/users/{user_id}/disable`: the user can no longer sign in, refresh or
//! call userinfo. In one transaction its idp sessions end, the revocation of every grant of
//! the user at authz is queued (the durable outbox of account deletion) and `user.disabled`
//! is recorded; the revocation is then delivered at once, or retried until authz takes it.

use actix_web::{HttpResponse, web};
use admin_api::scope::UsersWrite;
use admin_api::{Admin, AdminError, Problem};
use tracing::instrument;

use super::{UserView, answer, find};
use crate::AppState;

/// Disables a user (idempotent: disabling again ends any session left and revokes again).
#[utoipa::path(
    post,
    path = "/admin/v1/users/{user_id}/disable",
    operation_id = "users_disable",
    tag = "users",
    params(("user_id" = String, Path, description = "The user's id")),
    security(("admin" = ["admin:users:write"])),
    responses(
        (status = 200, description = "Disabled", body = UserView,
         headers(("ETag" = String, description = "The new revision"))),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token lacks admin:users:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
    )
)]
#[instrument(skip_all)]
pub(crate) async fn handle(
    admin: Admin<UsersWrite>,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let target = id.to_string();
    let result: Result<HttpResponse, AdminError> = async {
        let current = find(&state, &id).await?;
        let (user, _) = state
            .account
            .disable_by(&crate::admin::caller(&admin), &current.id)
            .await?;
        Ok(answer(HttpResponse::Ok(), &user))
    }
    .await;
    crate::admin::audit_refusal(
        &state,
        &admin,
        audit::Action::UserDisabled,
        Some((audit::TargetKind::User, &target)),
        result,
    )
    .await
}
