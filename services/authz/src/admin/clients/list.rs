//! `GET /admin/v1/clients`: clients in id order, a page at a time, filtered.

use actix_web::{HttpResponse, web};
use admin_api::scope::ClientsRead;
use admin_api::{Admin, AdminError, AdminQuery, Page, Problem, page};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::ClientView;
use crate::AppState;
use crate::clients::ClientFilter;

/// The query of the listing.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Clients per page (1 to 500, default 50).
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Only clients with this token endpoint authentication method.
    token_endpoint_auth_method: Option<String>,
    /// Only clients allowed this grant type.
    grant_type: Option<String>,
    /// Only first-party (`true`) or third-party (`false`) clients.
    first_party: Option<bool>,
}

/// One page of clients.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub(crate) struct ClientPage {
    /// The clients.
    items: Vec<ClientView>,
    /// Pass as `cursor` for the next page; absent on the last.
    next_cursor: Option<String>,
}

/// Lists clients (never their secrets).
#[utoipa::path(
    get,
    operation_id = "clients_list",
    path = "/admin/v1/clients",
    tag = "clients",
    params(ListQuery),
    security(("admin" = ["admin:clients:read"])),
    responses(
        (status = 200, description = "A page of clients", body = ClientPage),
        (status = 400, description = "Invalid query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token lacks admin:clients:read", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn handle(
    _admin: Admin<ClientsRead>,
    state: web::Data<AppState>,
    query: AdminQuery<ListQuery>,
) -> Result<HttpResponse, AdminError> {
    let query = query.into_inner()?;
    let limit = page::limit(query.limit)?;
    let filter = ClientFilter {
        after: query
            .cursor
            .as_deref()
            .map(page::decode_cursor)
            .transpose()?,
        auth_method: query.token_endpoint_auth_method,
        grant_type: query.grant_type,
        first_party: query.first_party,
    };
    let rows = state.clients.page(&filter, limit + 1).await?;
    let views = rows
        .iter()
        .map(|(client, revision)| ClientView::new(client, *revision))
        .collect();
    let page: Page<ClientView> = page::page(views, limit, |v| v.client_id.clone());
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(page))
}
