//! `DELETE /admin/v1/users/{user_id}/sessions`: signs the user out everywhere at idp
//! (recorded as `sessions.ended` in the same transaction) and tells authz about each ended
//! session (`LoginFlow.SessionEnded`: authz ends its sessions, revokes their grants except
//! `offline_access` and sends back-channel logout tokens).

use actix_web::{HttpResponse, web};
use admin_api::scope::SessionsWrite;
use admin_api::{Admin, AdminError, Problem};
use serde::Serialize;
use tracing::instrument;
use utoipa::ToSchema;

use crate::AppState;
use crate::admin::users::find;

/// What ending the sessions did.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Ended {
    /// The ids of the sessions that ended (none when the user had none).
    ended: Vec<String>,
}

/// Ends every session of a user.
#[utoipa::path(
    delete,
    path = "/admin/v1/users/{user_id}/sessions",
    operation_id = "sessions_end_all",
    tag = "sessions",
    params(("user_id" = String, Path, description = "The user's id")),
    security(("admin" = ["admin:sessions:write"])),
    responses(
        (status = 200, description = "The ended sessions", body = Ended),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token lacks admin:sessions:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
    )
)]
#[instrument(skip_all)]
pub(crate) async fn handle(
    admin: Admin<SessionsWrite>,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let target = id.to_string();
    let result: Result<HttpResponse, AdminError> = async {
        let user = find(&state, &id).await?;
        let ended = state
            .account
            .end_sessions_by(&crate::admin::caller(&admin), &user.id, None)
            .await?;
        Ok(HttpResponse::Ok()
            .insert_header(("Cache-Control", "no-store"))
            .json(Ended { ended }))
    }
    .await;
    crate::admin::audit_refusal(
        &state,
        &admin,
        audit::Action::SessionsEnded,
        Some((audit::TargetKind::User, &target)),
        result,
    )
    .await
}
