//! `GET /admin/v1/users/{user_id}/sessions`: the user's live sessions, most recently used
//! first (never their cookie secrets).

use actix_web::{HttpResponse, web};
use admin_api::scope::SessionsRead;
use admin_api::{Admin, AdminError, Problem};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::admin::users::find;

/// A live browser session.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SessionView {
    /// The session's public id (authz knows it as the login's `session_id`).
    id: String,
    /// When the user authenticated, Unix seconds.
    auth_time: i64,
    /// Authentication methods (RFC 8176), e.g. `["pwd"]`.
    amr: Vec<String>,
    /// When the session started, Unix seconds.
    created_at: i64,
    /// Last use, Unix seconds.
    last_seen_at: i64,
}

/// The sessions of a user.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SessionList {
    /// Most recently used first.
    items: Vec<SessionView>,
}

/// Lists a user's live sessions.
#[utoipa::path(
    get,
    path = "/admin/v1/users/{user_id}/sessions",
    operation_id = "sessions_list",
    tag = "sessions",
    params(("user_id" = String, Path, description = "The user's id")),
    security(("admin" = ["admin:sessions:read"])),
    responses(
        (status = 200, description = "The user's live sessions", body = SessionList),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token lacks admin:sessions:read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn handle(
    _admin: Admin<SessionsRead>,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let user = find(&state, &id).await?;
    let items = state
        .account
        .sessions(&user.id)
        .await?
        .into_iter()
        .map(|s| SessionView {
            id: s.id,
            auth_time: s.auth_time,
            amr: s.amr.split_whitespace().map(str::to_owned).collect(),
            created_at: s.created_at,
            last_seen_at: s.last_seen_at,
        })
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(SessionList { items }))
}
