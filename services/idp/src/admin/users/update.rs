//! `PUT /admin/v1/users/{user_id}`: replaces a user's profile claims, only with `If-Match`
//! naming its current `ETag` (RFC 9110 §13.1.1): 412 when it changed since it was read,
//! 428 without `If-Match`. The write is conditional in the database, so of two concurrent
//! replaces from the same revision exactly one is applied.

use actix_web::{HttpResponse, web};
use admin_api::scope::UsersWrite;
use admin_api::{Admin, AdminError, AdminJson, IfMatch, Problem, etag};
use tracing::instrument;

use super::{ProfileInput, UserView, answer, find};
use crate::AppState;
use crate::admin::error::on_field;

/// Replaces a user's profile claims (OpenID Connect Core 1.0 §5.1); the next ID token and
/// userinfo answer carry them.
#[utoipa::path(
    put,
    path = "/admin/v1/users/{user_id}",
    operation_id = "users_update",
    tag = "users",
    params(
        ("user_id" = String, Path, description = "The user's id"),
        ("If-Match" = String, Header, description = "The ETag of the user as read"),
    ),
    request_body = ProfileInput,
    security(("admin" = ["admin:users:write"])),
    responses(
        (status = 200, description = "Replaced", body = UserView,
         headers(("ETag" = String, description = "The new revision"))),
        (status = 400, description = "Invalid body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token lacks admin:users:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Email in use", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Changed since read", body = Problem, content_type = "application/problem+json"),
        (status = 428, description = "If-Match missing", body = Problem, content_type = "application/problem+json"),
    )
)]
#[instrument(skip_all)]
pub(crate) async fn handle(
    admin: Admin<UsersWrite>,
    state: web::Data<AppState>,
    id: web::Path<String>,
    if_match: IfMatch,
    body: AdminJson<ProfileInput>,
) -> Result<HttpResponse, AdminError> {
    let target = id.to_string();
    let result: Result<HttpResponse, AdminError> = async {
        let current = find(&state, &id).await?;
        if_match.require(&etag(current.updated_at))?;
        let profile = body.into_inner()?.into_profile()?;
        let Some(user) = state
            .users
            .update_profile_if(
                &crate::admin::caller(&admin),
                &current.id,
                profile,
                Some(current.updated_at),
            )
            .await
            .map_err(on_field("email"))?
        else {
            return Err(AdminError::PreconditionFailed);
        };
        Ok(answer(HttpResponse::Ok(), &user))
    }
    .await;
    crate::admin::audit_refusal(
        &state,
        &admin,
        audit::Action::UserUpdated,
        Some((audit::TargetKind::User, &target)),
        result,
    )
    .await
}
