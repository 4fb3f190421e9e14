//! `DELETE /admin/v1/users/{user_id}/sessions/{session_id}`: ends one session of the user
//! (recorded as `session.ended` in the same transaction) and tells authz, which ends its
//! matching session and revokes that session's grants (`LoginFlow.SessionEnded`).

use actix_web::{HttpResponse, web};
use admin_api::scope::SessionsWrite;
use admin_api::{Admin, AdminError, Problem};
use tracing::instrument;

use crate::AppState;
use crate::admin::users::find;

/// Ends one session of a user.
#[utoipa::path(
    delete,
    path = "/admin/v1/users/{user_id}/sessions/{session_id}",
    operation_id = "sessions_end",
    tag = "sessions",
    params(
        ("user_id" = String, Path, description = "The user's id"),
        ("session_id" = String, Path, description = "The session's id"),
    ),
    security(("admin" = ["admin:sessions:write"])),
    responses(
        (status = 204, description = "Ended"),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token lacks admin:sessions:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user, or no such session of the user", body = Problem, content_type = "application/problem+json"),
    )
)]
#[instrument(skip_all)]
pub(crate) async fn handle(
    admin: Admin<SessionsWrite>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AdminError> {
    let target = path.1.to_string();
    let result: Result<HttpResponse, AdminError> = async {
        let (user_id, session_id) = path.into_inner();
        let user = find(&state, &user_id).await?;
        let ended = state
            .account
            .end_sessions_by(&crate::admin::caller(&admin), &user.id, Some(&session_id))
            .await?;
        if ended.is_empty() {
            return Err(AdminError::NotFound(format!(
                "user {user_id} has no session {session_id}"
            )));
        }
        Ok(HttpResponse::NoContent().finish())
    }
    .await;
    crate::admin::audit_refusal(
        &state,
        &admin,
        audit::Action::SessionEnded,
        Some((audit::TargetKind::Session, &target)),
        result,
    )
    .await
}
