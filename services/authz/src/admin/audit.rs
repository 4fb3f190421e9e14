//! `GET /admin/v1/audit`: authz's audit trail (issue 18), newest first, filtered, a page
//! at a time ([`admin_api::audit`]). Entries never hold secrets (see the `audit` crate).

use actix_web::{HttpResponse, web};
use admin_api::audit::{AuditPage, AuditQuery};
use admin_api::scope::AuditRead;
use admin_api::{Admin, AdminError, AdminQuery, Problem};

use crate::{AppState, AuthzError};

/// The route's path.
pub(crate) const PATH: &str = "/admin/v1/audit";

/// Lists the audit trail: admin writes and security events.
#[utoipa::path(
    get,
    operation_id = "audit_list",
    path = "/admin/v1/audit",
    tag = "audit",
    params(AuditQuery),
    security(("admin" = ["admin:audit:read"])),
    responses(
        (status = 200, description = "A page of audit entries, newest first", body = AuditPage),
        (status = 400, description = "Invalid query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token lacks admin:audit:read", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn handle(
    _admin: Admin<AuditRead>,
    state: web::Data<AppState>,
    query: AdminQuery<AuditQuery>,
) -> Result<HttpResponse, AdminError> {
    admin_api::audit::respond(&state.db, query.into_inner()?, AuthzError::from).await
}
