//! `GET /admin/v1/users/{user_id}`: one user with its `ETag`.

use actix_web::{HttpResponse, web};
use admin_api::scope::UsersRead;
use admin_api::{Admin, AdminError, Problem};

use super::{UserView, answer, find};
use crate::AppState;

/// Shows a user (never the password).
#[utoipa::path(
    get,
    path = "/admin/v1/users/{user_id}",
    operation_id = "users_get",
    tag = "users",
    params(("user_id" = String, Path, description = "The user's id (the OIDC sub)")),
    security(("admin" = ["admin:users:read"])),
    responses(
        (status = 200, description = "The user", body = UserView,
         headers(("ETag" = String, description = "The user's revision"))),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token lacks admin:users:read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn handle(
    _admin: Admin<UsersRead>,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let user = find(&state, &id).await?;
    Ok(answer(HttpResponse::Ok(), &user))
}
