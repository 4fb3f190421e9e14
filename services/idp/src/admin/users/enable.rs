//! `POST /admin/v1/users/{user_id}/enable`: a disabled user may sign in again (grants
//! revoked when it was disabled stay revoked). Recorded as `user.enabled` in the same
//! transaction.

use actix_web::{HttpResponse, web};
use admin_api::scope::UsersWrite;
use admin_api::{Admin, AdminError, Problem};
use tracing::instrument;

use super::{UserView, answer, find};
use crate::AppState;

/// Enables a user.
#[utoipa::path(
    post,
    path = "/admin/v1/users/{user_id}/enable",
    operation_id = "users_enable",
    tag = "users",
    params(("user_id" = String, Path, description = "The user's id")),
    security(("admin" = ["admin:users:write"])),
    responses(
        (status = 200, description = "Enabled", body = UserView,
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
        let user = state
            .users
            .set_disabled_by(&crate::admin::caller(&admin), &current.id, false)
            .await?;
        Ok(answer(HttpResponse::Ok(), &user))
    }
    .await;
    crate::admin::audit_refusal(
        &state,
        &admin,
        audit::Action::UserEnabled,
        Some((audit::TargetKind::User, &target)),
        result,
    )
    .await
}
