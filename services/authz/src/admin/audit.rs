//! `GET /admin/v1/audit`: authz's audit trail (admin writes through the API and the CLI,
//! security events), newest first, filtered, a page at a time.

use actix_web::{HttpResponse, web};
use admin_api::scope::AuditRead;
use admin_api::{Admin, AdminError, AdminQuery, Problem, page};
use audit::{Action, AuditFilter, AuditRecord, Cursor, TargetKind};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;

/// The path.
pub(crate) const PATH: &str = "/admin/v1/audit";

/// Filters of the audit listing.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditQuery {
    /// Events per page (1 to 500, default 50).
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Only this action (`client.created`, `key.rotated`, …).
    action: Option<String>,
    /// Only events by this actor (an admin client id or a user id).
    actor_id: Option<String>,
    /// Only events about targets of this kind (`client`, `key`, `user`, …).
    target_kind: Option<String>,
    /// Only events about this target id.
    target_id: Option<String>,
    /// `success` or `failure`.
    outcome: Option<String>,
    /// Only events at or after this time, Unix milliseconds.
    since: Option<i64>,
    /// Only events before this time, Unix milliseconds.
    until: Option<i64>,
}

/// One audit event.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuditView {
    id: String,
    /// RFC 3339.
    occurred_at: String,
    actor_kind: String,
    actor_id: Option<String>,
    address: Option<String>,
    action: String,
    target_kind: Option<String>,
    target_id: Option<String>,
    /// `success` or `failure`.
    outcome: String,
    reason: Option<String>,
}

impl From<AuditRecord> for AuditView {
    fn from(r: AuditRecord) -> Self {
        Self {
            id: r.id,
            occurred_at: r.occurred_at,
            actor_kind: r.actor_kind,
            actor_id: r.actor_id,
            address: r.address,
            action: r.action,
            target_kind: r.target_kind,
            target_id: r.target_id,
            outcome: r.outcome,
            reason: r.reason,
        }
    }
}

/// A page of audit events.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuditPage {
    items: Vec<AuditView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

fn bad(field: &str, detail: &str) -> AdminError {
    AdminError::InvalidQuery {
        field: Some(field.to_owned()),
        detail: detail.to_owned(),
    }
}

/// Lists audit events.
#[utoipa::path(
    get,
    path = "/admin/v1/audit",
    tag = "audit",
    params(AuditQuery),
    security(("admin" = ["admin:audit:read"])),
    responses(
        (status = 200, description = "A page of events, newest first", body = AuditPage),
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
    let q = query.into_inner()?;
    let limit = page::limit(q.limit)?;
    let filter = AuditFilter {
        action: q
            .action
            .as_deref()
            .map(|a| Action::parse(a).ok_or_else(|| bad("action", "unknown action")))
            .transpose()?,
        actor_id: q.actor_id,
        target_kind: q
            .target_kind
            .as_deref()
            .map(|k| TargetKind::parse(k).ok_or_else(|| bad("target_kind", "unknown kind")))
            .transpose()?,
        target_id: q.target_id,
        succeeded: match q.outcome.as_deref() {
            None => None,
            Some("success") => Some(true),
            Some("failure") => Some(false),
            Some(_) => return Err(bad("outcome", "must be success or failure")),
        },
        since_ms: q.since,
        until_ms: q.until,
    };
    let cursor = q
        .cursor
        .as_deref()
        .map(|c| Cursor::decode(c).map_err(|e| bad("cursor", &e.to_string())))
        .transpose()?;
    let limit = u32::try_from(limit).unwrap_or(u32::MAX);
    let found = audit::list(&state.db, &filter, cursor.as_ref(), limit)
        .await
        .map_err(|e| AdminError::Internal(e.to_string()))?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(AuditPage {
            items: found.records.into_iter().map(AuditView::from).collect(),
            next_cursor: found.next.map(|c| c.encode()),
        }))
}
