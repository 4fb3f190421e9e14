//! `POST /admin/v1/users/{user_id}/password`: sets a new password (argon2id on the
//! blocking pool), recorded as `user.password_set` in the same transaction (never the
//! password). With `sessions.end_on_password_change` the user's sessions end too, as with
//! `idp users set-password`.

use actix_web::{HttpResponse, web};
use admin_api::scope::UsersWrite;
use admin_api::{Admin, AdminError, AdminJson, Problem};
use config::Secret;
use serde::Deserialize;
use tracing::instrument;
use utoipa::ToSchema;

use super::{UserView, answer, find};
use crate::AppState;
use crate::admin::error::on_field;

/// The new password.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PasswordInput {
    /// At least `passwords.min_length` characters.
    #[schema(value_type = String, format = Password)]
    password: Secret<String>,
}

/// Sets a user's password.
#[utoipa::path(
    post,
    path = "/admin/v1/users/{user_id}/password",
    operation_id = "users_set_password",
    tag = "users",
    params(("user_id" = String, Path, description = "The user's id")),
    request_body = PasswordInput,
    security(("admin" = ["admin:users:write"])),
    responses(
        (status = 200, description = "Set", body = UserView,
         headers(("ETag" = String, description = "The new revision"))),
        (status = 400, description = "Invalid body or too short", body = Problem, content_type = "application/problem+json"),
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
    body: AdminJson<PasswordInput>,
) -> Result<HttpResponse, AdminError> {
    let target = id.to_string();
    let result: Result<HttpResponse, AdminError> = async {
        let current = find(&state, &id).await?;
        let input = body.into_inner()?;
        let by = crate::admin::caller(&admin);
        let user = state
            .users
            .set_password_by(&by, &current.id, input.password.expose().clone())
            .await
            .map_err(on_field("password"))?;
        if state.sessions.config().end_on_password_change {
            state.account.end_sessions_by(&by, &user.id, None).await?;
        }
        Ok(answer(HttpResponse::Ok(), &user))
    }
    .await;
    crate::admin::audit_refusal(
        &state,
        &admin,
        audit::Action::UserPasswordSet,
        Some((audit::TargetKind::User, &target)),
        result,
    )
    .await
}
