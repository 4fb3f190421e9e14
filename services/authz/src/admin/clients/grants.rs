//! `GET /admin/v1/clients/{client_id}/grants`: the client's live grants (what users
//! granted it and it still holds tokens from), in id order, a page at a time. Hydra's
//! consent sessions, Keycloak's "Sessions" tab of a client.

use actix_web::{HttpResponse, web};
use admin_api::scope::ClientsRead;
use admin_api::{Admin, AdminError, AdminQuery, Page, Problem, page};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::grants::repo::ClientGrantRow;

/// The query of the listing.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct GrantsQuery {
    /// Grants per page (1 to 500, default 50).
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// A live grant: the family of tokens issued from one authorization.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct GrantView {
    /// The grant id (for revoking it).
    id: String,
    /// The user who granted it.
    subject: String,
    /// The granted scopes, space-separated.
    scope: String,
    /// When it was created, Unix seconds.
    created_at: i64,
    /// When it was last used to refresh, Unix seconds.
    updated_at: i64,
    /// When it expires, Unix seconds.
    expires_at: i64,
}

impl From<ClientGrantRow> for GrantView {
    fn from(r: ClientGrantRow) -> Self {
        Self {
            id: r.id,
            subject: r.subject,
            scope: r.scope,
            created_at: r.created_at,
            updated_at: r.updated_at,
            expires_at: r.expires_at,
        }
    }
}

/// One page of grants.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub(crate) struct GrantPage {
    /// The grants.
    items: Vec<GrantView>,
    /// Pass as `cursor` for the next page; absent on the last.
    next_cursor: Option<String>,
}

/// Lists a client's live grants.
#[utoipa::path(
    get,
    operation_id = "clients_grants",
    path = "/admin/v1/clients/{client_id}/grants",
    tag = "clients",
    params(("client_id" = String, Path, description = "The client"), GrantsQuery),
    security(("admin" = ["admin:clients:read"])),
    responses(
        (status = 200, description = "A page of grants", body = GrantPage),
        (status = 400, description = "Invalid query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token lacks admin:clients:read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such client", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn handle(
    _admin: Admin<ClientsRead>,
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: AdminQuery<GrantsQuery>,
) -> Result<HttpResponse, AdminError> {
    let query = query.into_inner()?;
    let limit = page::limit(query.limit)?;
    let after = query
        .cursor
        .as_deref()
        .map(page::decode_cursor)
        .transpose()?;
    if state.clients.get(&id).await?.is_none() {
        return Err(AdminError::NotFound(format!("no client {id}")));
    }
    let rows = state
        .grants
        .client_grants(&id, after.as_deref(), limit + 1)
        .await
        .map_err(crate::AuthzError::from)?;
    let views = rows.into_iter().map(GrantView::from).collect();
    let page: Page<GrantView> = page::page(views, limit, |v| v.id.clone());
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(page))
}
