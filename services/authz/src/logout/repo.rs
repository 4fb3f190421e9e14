//! logout: the stored queue of back-channel logout deliveries, and the sessions and grants
//! a logout concerns.

use diesel::prelude::*;
use storage::diesel_async::{AsyncConnection, RunQueryDsl};
use storage::{Database, StorageError, with_conn};

use crate::schema::{browser_sessions, grants, logout_deliveries};

/// One logout token to deliver (see the migration `logout_propagation`).
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = logout_deliveries)]
pub(crate) struct DeliveryRow {
    pub(crate) id: String,
    pub(crate) client_id: String,
    pub(crate) uri: String,
    pub(crate) subject: String,
    pub(crate) sid: String,
    pub(crate) jti: String,
    pub(crate) attempts: i32,
    pub(crate) next_attempt_at: i64,
    pub(crate) created_at: i64,
    pub(crate) expires_at: i64,
    pub(crate) last_error: Option<String>,
}

/// The clients that had grants (revoked or not) in authz browser session `sid`, with the
/// grants' subject, as distinct `(client_id, subject)`.
pub(crate) async fn session_clients(
    db: &Database,
    sid: &str,
) -> Result<Vec<(String, String)>, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| grants::table
        .filter(grants::sid.eq(sid))
        .select((grants::client_id, grants::subject))
        .distinct()
        .order(grants::client_id.asc())
        .load(c)
        .await)?)
}

/// The authz browser sessions backed by idp session `idp_session_id`, as
/// `(session_key, sid)`.
pub(crate) async fn sessions_of_idp_session(
    db: &Database,
    idp_session_id: &str,
) -> Result<Vec<(String, String)>, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| browser_sessions::table
        .filter(browser_sessions::idp_session_id.eq(idp_session_id))
        .select((browser_sessions::session_key, browser_sessions::sid))
        .load(c)
        .await)?)
}

/// Deletes the authz browser session with cookie digest `key`; whether it existed.
pub(crate) async fn delete_browser_session(db: &Database, key: &str) -> Result<bool, StorageError> {
    let mut conn = db.get().await?;
    let n = with_conn!(&mut conn, |c| diesel::delete(
        browser_sessions::table.find(key)
    )
    .execute(c)
    .await)?;
    Ok(n == 1)
}

/// The `sid`s of every authz browser session of `subject`.
pub(crate) async fn sids_of_subject(
    db: &Database,
    subject: &str,
) -> Result<Vec<String>, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| browser_sessions::table
        .filter(browser_sessions::subject.eq(subject))
        .select(browser_sessions::sid)
        .load(c)
        .await)?)
}

/// Queues `rows` in one transaction, as many as fit under `max_queued` (counting what is
/// already queued); returns how many were queued (the rest are not stored) and how many
/// are queued now.
pub(crate) async fn enqueue(
    db: &Database,
    rows: &[DeliveryRow],
    max_queued: i64,
) -> Result<(usize, i64), StorageError> {
    if rows.is_empty() {
        return Ok((0, 0));
    }
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| c
        .transaction(async |tx| {
            let queued: i64 = logout_deliveries::table.count().get_result(tx).await?;
            let room = usize::try_from(max_queued.saturating_sub(queued).max(0)).unwrap_or(0);
            let take = rows.len().min(room);
            for row in &rows[..take] {
                diesel::insert_into(logout_deliveries::table)
                    .values(row)
                    .execute(tx)
                    .await?;
            }
            let now_queued = queued.saturating_add(i64::try_from(take).unwrap_or(0));
            Ok::<(usize, i64), diesel::result::Error>((take, now_queued))
        })
        .await)?)
}

/// Claims up to `limit` deliveries due at `now` for this replica: each is leased by moving
/// its `next_attempt_at` to `lease_until` with a conditional UPDATE that only one replica
/// can win. Returns the claimed rows as they were before the lease.
pub(crate) async fn claim_due(
    db: &Database,
    now: i64,
    lease_until: i64,
    limit: i64,
) -> Result<Vec<DeliveryRow>, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| {
        let due: Vec<DeliveryRow> = logout_deliveries::table
            .filter(logout_deliveries::next_attempt_at.le(now))
            .order(logout_deliveries::next_attempt_at.asc())
            .limit(limit)
            .select(DeliveryRow::as_select())
            .load(c)
            .await?;
        let mut claimed = Vec::with_capacity(due.len());
        for row in due {
            let n = diesel::update(
                logout_deliveries::table
                    .filter(logout_deliveries::id.eq(&row.id))
                    .filter(logout_deliveries::next_attempt_at.eq(row.next_attempt_at)),
            )
            .set(logout_deliveries::next_attempt_at.eq(lease_until))
            .execute(c)
            .await?;
            if n == 1 {
                claimed.push(row);
            }
        }
        Ok::<_, diesel::result::Error>(claimed)
    })?)
}

/// Removes a delivery (delivered, or given up).
pub(crate) async fn remove(db: &Database, id: &str) -> Result<(), StorageError> {
    let mut conn = db.get().await?;
    with_conn!(&mut conn, |c| diesel::delete(
        logout_deliveries::table.find(id)
    )
    .execute(c)
    .await)?;
    Ok(())
}

/// Records a failed attempt: the attempt count, when to try again, and why it failed.
pub(crate) async fn reschedule(
    db: &Database,
    id: &str,
    attempts: i32,
    next_attempt_at: i64,
    error: &str,
) -> Result<(), StorageError> {
    let mut conn = db.get().await?;
    with_conn!(&mut conn, |c| diesel::update(
        logout_deliveries::table.find(id)
    )
    .set((
        logout_deliveries::attempts.eq(attempts),
        logout_deliveries::next_attempt_at.eq(next_attempt_at),
        logout_deliveries::last_error.eq(Some(error)),
    ))
    .execute(c)
    .await)?;
    Ok(())
}

/// Deletes deliveries past their `expires_at`; returns how many.
pub(crate) async fn purge_expired(db: &Database, now: i64) -> Result<usize, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| diesel::delete(
        logout_deliveries::table.filter(logout_deliveries::expires_at.le(now))
    )
    .execute(c)
    .await)?)
}

/// How many deliveries are queued.
pub(crate) async fn queued(db: &Database) -> Result<i64, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| logout_deliveries::table
        .count()
        .get_result(c)
        .await)?)
}
