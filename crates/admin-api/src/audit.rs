//! The audit trail's listing, `GET /admin/v1/audit` (issue 18), shared by the services:
//! its query, its entries and one page of them, newest first. Each service keeps the
//! route itself (its `#[utoipa::path]` and its error mapping) and calls [`respond`].
//! Entries never hold secrets (see the `audit` crate).

use std::time::UNIX_EPOCH;

use actix_web::HttpResponse;
use audit::{Action, AuditFilter, AuditRecord, Cursor, TargetKind};
use serde::{Deserialize, Serialize};
use storage::{Database, StorageError};
use utoipa::{IntoParams, ToSchema};

use crate::{AdminError, Page, page};

/// The query of the listing.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Entries per page (1 to 500, default 50).
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Only this action (`login.failed`, `client.created`, `user.created`, …).
    action: Option<String>,
    /// Only entries by this actor id (admin client id, client id or user id).
    actor_id: Option<String>,
    /// Only entries about a target of this kind (`user`, `client`, `key`, `session`, …).
    target_kind: Option<String>,
    /// Only entries about the target with this id.
    target_id: Option<String>,
    /// `success` or `failure`.
    outcome: Option<String>,
    /// Only entries at or after this time (RFC 3339).
    since: Option<String>,
    /// Only entries before this time (RFC 3339).
    until: Option<String>,
}

/// One audit entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntry {
    /// The entry's id.
    id: String,
    /// When (RFC 3339, UTC).
    occurred_at: String,
    /// `admin_client`, `user`, `client`, `operator`, `system` or `anonymous`.
    actor_kind: String,
    /// The actor's id.
    actor_id: Option<String>,
    /// The caller's IP address.
    address: Option<String>,
    /// What happened.
    action: String,
    /// The target's kind.
    target_kind: Option<String>,
    /// The target's id.
    target_id: Option<String>,
    /// `success` or `failure`.
    outcome: String,
    /// Why it failed, or a note on a success.
    reason: Option<String>,
}

impl From<AuditRecord> for AuditEntry {
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

/// One page of audit entries.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct AuditPage {
    /// The entries, newest first.
    items: Vec<AuditEntry>,
    /// Pass as `cursor` for the next page; absent on the last.
    next_cursor: Option<String>,
}

fn bad(field: &str, detail: impl Into<String>) -> AdminError {
    AdminError::InvalidQuery {
        field: Some(field.to_owned()),
        detail: detail.into(),
    }
}

fn time_ms(field: &str, raw: &str) -> Result<i64, AdminError> {
    let t = humantime::parse_rfc3339_weak(raw).map_err(|_| {
        bad(
            field,
            "must be an RFC 3339 time such as 2026-12-06T10:00:00Z",
        )
    })?;
    Ok(audit::unix_ms(t.max(UNIX_EPOCH)))
}

/// Parses the query into the store's filter ("parse, don't validate").
fn filter(q: &AuditQuery) -> Result<AuditFilter, AdminError> {
    Ok(AuditFilter {
        action: q
            .action
            .as_deref()
            .map(|a| Action::parse(a).ok_or_else(|| bad("action", "unknown action")))
            .transpose()?,
        actor_id: q.actor_id.clone(),
        target_kind: q
            .target_kind
            .as_deref()
            .map(|k| TargetKind::parse(k).ok_or_else(|| bad("target_kind", "unknown target kind")))
            .transpose()?,
        target_id: q.target_id.clone(),
        succeeded: match q.outcome.as_deref() {
            None => None,
            Some("success") => Some(true),
            Some("failure") => Some(false),
            Some(_) => return Err(bad("outcome", "must be success or failure")),
        },
        since_ms: q
            .since
            .as_deref()
            .map(|s| time_ms("since", s))
            .transpose()?,
        until_ms: q
            .until
            .as_deref()
            .map(|s| time_ms("until", s))
            .transpose()?,
    })
}

/// Answers one page of the trail of `db` for `query` (200, `Cache-Control: no-store`); a
/// malformed filter or cursor is a 400 problem naming the parameter, a store failure is
/// the caller's error through `map`.
pub async fn respond<E: Into<AdminError>>(
    db: &Database,
    query: AuditQuery,
    map: impl FnOnce(StorageError) -> E,
) -> Result<HttpResponse, AdminError> {
    let limit = page::limit(query.limit)?;
    let filter = filter(&query)?;
    let after = query
        .cursor
        .as_deref()
        .map(|c| Cursor::decode(c).map_err(|e| bad("cursor", e.to_string())))
        .transpose()?;
    let found = audit::list(
        db,
        &filter,
        after.as_ref(),
        u32::try_from(limit).unwrap_or(page::MAX_LIMIT),
    )
    .await
    .map_err(|e| map(e).into())?;
    let page = Page {
        items: found
            .records
            .into_iter()
            .map(AuditEntry::from)
            .collect::<Vec<_>>(),
        next_cursor: found.next.map(|c| c.encode()),
    };
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(page))
}
