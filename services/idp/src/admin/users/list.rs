//! `GET /admin/v1/users`: users by username, a page at a time, searched and filtered.

use actix_web::{HttpResponse, web};
use admin_api::scope::UsersRead;
use admin_api::{Admin, AdminError, AdminQuery, Page, Problem, page};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::UserView;
use crate::AppState;
use crate::users::repo::Filter;

/// The query of the listing.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Users per page (1 to 500, default 50).
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Only users whose username or email contains this (case-insensitive).
    q: Option<String>,
    /// Only the user with this username (case-insensitive).
    username: Option<String>,
    /// Only the user with this email (case-insensitive).
    email: Option<String>,
    /// Only disabled (`true`) or enabled (`false`) users.
    disabled: Option<bool>,
}

/// One page of users.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub(crate) struct UserPage {
    /// The users, by username.
    items: Vec<UserView>,
    /// Pass as `cursor` for the next page; absent on the last.
    next_cursor: Option<String>,
}

fn lower(field: &str, v: Option<String>) -> Result<Option<String>, AdminError> {
    match v.map(|v| v.trim().to_lowercase()) {
        Some(v) if v.is_empty() || v.len() > 254 => Err(AdminError::InvalidQuery {
            field: Some(field.to_owned()),
            detail: format!("{field} must be 1 to 254 characters"),
        }),
        other => Ok(other),
    }
}

/// Lists users (never their passwords).
#[utoipa::path(
    get,
    path = "/admin/v1/users",
    operation_id = "users_list",
    tag = "users",
    params(ListQuery),
    security(("admin" = ["admin:users:read"])),
    responses(
        (status = 200, description = "A page of users", body = UserPage),
        (status = 400, description = "Invalid query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token lacks admin:users:read", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn handle(
    _admin: Admin<UsersRead>,
    state: web::Data<AppState>,
    query: AdminQuery<ListQuery>,
) -> Result<HttpResponse, AdminError> {
    let query = query.into_inner()?;
    let limit = page::limit(query.limit)?;
    let filter = Filter {
        after: query
            .cursor
            .as_deref()
            .map(page::decode_cursor)
            .transpose()?,
        contains: lower("q", query.q)?,
        username: lower("username", query.username)?,
        email: lower("email", query.email)?,
        disabled: query.disabled,
    };
    let users = state
        .users
        .page(&filter, i64::try_from(limit + 1).unwrap_or(i64::MAX))
        .await?;
    let views = users.iter().map(UserView::from).collect();
    let page: Page<UserView> = page::page(views, limit, |u| u.username.clone());
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(page))
}
