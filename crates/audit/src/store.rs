use std::future::Future;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use diesel::prelude::*;
use diesel::result::QueryResult;
use ring::rand::{SecureRandom, SystemRandom};
use serde::Serialize;
use storage::diesel_async::RunQueryDsl;
use storage::{Database, PgConn, SqliteConn, StorageError, with_conn};

use crate::event::{Action, AuditEvent, Ident, TargetKind};
use crate::schema::audit_events;

/// The most records one [`list`] call returns.
pub const MAX_PAGE: u32 = 1000;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_events)]
struct Row {
    id: String,
    occurred_at: i64,
    actor_kind: String,
    actor_id: Option<String>,
    address: Option<String>,
    action: String,
    target_kind: Option<String>,
    target_id: Option<String>,
    outcome: String,
    reason: Option<String>,
}

impl Row {
    fn from_event(e: &AuditEvent) -> Self {
        Self {
            id: new_id(),
            occurred_at: e.at_ms,
            actor_kind: e.actor.kind().to_owned(),
            actor_id: e.actor.id().map(|i| i.as_str().to_owned()),
            address: e.address.map(|a| a.to_string()),
            action: e.action.as_str().to_owned(),
            target_kind: e.target.as_ref().map(|t| t.kind.as_str().to_owned()),
            target_id: e.target.as_ref().map(|t| t.id.as_str().to_owned()),
            outcome: e.outcome.as_str().to_owned(),
            reason: e.reason().map(str::to_owned),
        }
    }
}

/// 128 random bits, hex: unique without coordination between replicas.
fn new_id() -> String {
    let mut bytes = [0u8; 16];
    if SystemRandom::new().fill(&mut bytes).is_err() {
        // The system RNG failing is not recoverable for a security service; a time-based
        // id keeps the row (ids only need to be unique, not secret).
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        bytes = nanos.to_be_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A connection the audit trail can be appended on: either backend's connection, also
/// inside a transaction (`with_conn!` and `transaction` hand out these types).
pub trait AuditConn: Send {
    /// Inserts `event` as one row.
    fn append_audit(&mut self, event: &AuditEvent) -> impl Future<Output = QueryResult<()>> + Send;
}

macro_rules! audit_conn {
    ($($conn:ty),*) => {
        $(
            impl AuditConn for $conn {
                async fn append_audit(&mut self, event: &AuditEvent) -> QueryResult<()> {
                    let row = Row::from_event(event);
                    diesel::insert_into(audit_events::table)
                        .values(&row)
                        .execute(self)
                        .await
                        .map(|_| ())
                }
            }
        )*
    };
}

audit_conn!(SqliteConn, PgConn);

/// Appends `event` on `conn`, typically the caller's transaction, so the event commits or
/// rolls back with the change it describes. Nothing is logged: call [`AuditEvent::log`]
/// after the commit.
pub async fn append<C: AuditConn>(conn: &mut C, event: &AuditEvent) -> QueryResult<()> {
    conn.append_audit(event).await
}

/// Appends `event` in its own statement and emits it as a log event (a security event
/// that changes nothing else: a refused sign-in).
pub async fn record(db: &Database, event: &AuditEvent) -> Result<(), StorageError> {
    let mut conn = db.get().await?;
    with_conn!(&mut conn, |c| c.append_audit(event).await)?;
    event.log();
    Ok(())
}

/// Deletes the events that occurred before `before_ms` (Unix milliseconds: now minus
/// `audit.retention`) and returns how many.
pub async fn purge(db: &Database, before_ms: i64) -> Result<usize, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| diesel::delete(
        audit_events::table.filter(audit_events::occurred_at.lt(before_ms))
    )
    .execute(c)
    .await)?)
}

/// Which events [`list`] returns; every set field must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only this action.
    pub action: Option<Action>,
    /// Only events by this actor id (an admin client id or a user id).
    pub actor_id: Option<String>,
    /// Only events about a target of this kind.
    pub target_kind: Option<TargetKind>,
    /// Only events about the target with this id.
    pub target_id: Option<String>,
    /// Only successes (`true`) or only failures (`false`).
    pub succeeded: Option<bool>,
    /// Only events at or after this time (Unix milliseconds).
    pub since_ms: Option<i64>,
    /// Only events before this time (Unix milliseconds).
    pub until_ms: Option<i64>,
}

/// One stored event as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    /// The event's id.
    pub id: String,
    /// When (RFC 3339, UTC, milliseconds).
    pub occurred_at: String,
    /// When, in Unix milliseconds.
    #[serde(skip)]
    pub occurred_at_ms: i64,
    /// `admin_client`, `user`, `operator`, `system` or `anonymous`.
    pub actor_kind: String,
    /// The admin client's or user's id.
    pub actor_id: Option<String>,
    /// The client address.
    pub address: Option<String>,
    /// What happened ([`Action`] names).
    pub action: String,
    /// The target's kind ([`TargetKind`] names).
    pub target_kind: Option<String>,
    /// The target's id.
    pub target_id: Option<String>,
    /// `success` or `failure`.
    pub outcome: String,
    /// The failure reason or a note on the success.
    pub reason: Option<String>,
}

impl From<Row> for AuditRecord {
    fn from(r: Row) -> Self {
        let at = std::time::UNIX_EPOCH
            + std::time::Duration::from_millis(u64::try_from(r.occurred_at).unwrap_or(0));
        Self {
            id: r.id,
            occurred_at: humantime::format_rfc3339_millis(at).to_string(),
            occurred_at_ms: r.occurred_at,
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

/// Where a page of [`list`] starts: just after the last record of the previous page (keyset
/// pagination, stable while events are appended).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    at_ms: i64,
    id: String,
}

/// A cursor that [`Cursor::decode`] does not accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidCursor;

impl std::fmt::Display for InvalidCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not a cursor returned by this list")
    }
}

impl std::error::Error for InvalidCursor {}

impl Cursor {
    /// The opaque text form (base64url).
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}.{}", self.at_ms, self.id))
    }

    /// Parses [`Cursor::encode`]'s output.
    pub fn decode(raw: &str) -> Result<Self, InvalidCursor> {
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| InvalidCursor)?;
        let text = String::from_utf8(bytes).map_err(|_| InvalidCursor)?;
        let (at, id) = text.split_once('.').ok_or(InvalidCursor)?;
        let at_ms = at.parse().map_err(|_| InvalidCursor)?;
        if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(InvalidCursor);
        }
        Ok(Self {
            at_ms,
            id: id.to_owned(),
        })
    }
}

/// One page of [`list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The records, newest first.
    pub records: Vec<AuditRecord>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Cursor>,
}

/// The events matching `filter`, newest first, starting after `after`, at most `limit`
/// (1 to [`MAX_PAGE`]).
pub async fn list(
    db: &Database,
    filter: &AuditFilter,
    after: Option<&Cursor>,
    limit: u32,
) -> Result<Page, StorageError> {
    let limit = limit.clamp(1, MAX_PAGE);
    let mut conn = db.get().await?;
    let mut rows: Vec<Row> = with_conn!(&mut conn, |c| {
        let mut q = audit_events::table.select(Row::as_select()).into_boxed();
        if let Some(a) = filter.action {
            q = q.filter(audit_events::action.eq(a.as_str()));
        }
        if let Some(id) = &filter.actor_id {
            q = q.filter(audit_events::actor_id.eq(Ident::new(id).as_str().to_owned()));
        }
        if let Some(k) = filter.target_kind {
            q = q.filter(audit_events::target_kind.eq(k.as_str()));
        }
        if let Some(id) = &filter.target_id {
            q = q.filter(audit_events::target_id.eq(Ident::new(id).as_str().to_owned()));
        }
        if let Some(ok) = filter.succeeded {
            q = q.filter(audit_events::outcome.eq(if ok { "success" } else { "failure" }));
        }
        if let Some(since) = filter.since_ms {
            q = q.filter(audit_events::occurred_at.ge(since));
        }
        if let Some(until) = filter.until_ms {
            q = q.filter(audit_events::occurred_at.lt(until));
        }
        if let Some(cur) = after {
            q = q.filter(
                audit_events::occurred_at
                    .lt(cur.at_ms)
                    .or(audit_events::occurred_at
                        .eq(cur.at_ms)
                        .and(audit_events::id.lt(cur.id.clone()))),
            );
        }
        q.order((audit_events::occurred_at.desc(), audit_events::id.desc()))
            .limit(i64::from(limit) + 1)
            .load(c)
            .await
    })?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next = more
        .then(|| {
            rows.last().map(|r| Cursor {
                at_ms: r.occurred_at,
                id: r.id.clone(),
            })
        })
        .flatten();
    Ok(Page {
        records: rows.into_iter().map(AuditRecord::from).collect(),
        next,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let c = Cursor {
            at_ms: 1_700_000_000_000,
            id: new_id(),
        };
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        for bad in ["", "!!", "MTIz", &URL_SAFE_NO_PAD.encode("12.zz")] {
            assert_eq!(Cursor::decode(bad), Err(InvalidCursor), "{bad}");
        }
    }
}
