//! Device authorizations (RFC 8628) in the authz database. Redemption, which also writes
//! the grant and its tokens, is in `grants/device.rs`.

use diesel::prelude::*;
use storage::diesel_async::RunQueryDsl;
use storage::{Database, StorageError, with_conn};

use crate::schema::device_authorizations;

/// The values of `status`.
pub(crate) mod status {
    /// Waiting for the user at idp's verification page.
    pub(crate) const PENDING: &str = "pending";
    /// The user approved; the next poll gets the tokens.
    pub(crate) const APPROVED: &str = "approved";
    /// The user denied; polls get `access_denied`.
    pub(crate) const DENIED: &str = "denied";
    /// Tokens were issued, once.
    pub(crate) const REDEEMED: &str = "redeemed";
}

/// The seconds every `slow_down` adds to the interval (RFC 8628 §3.5).
pub(crate) const SLOW_DOWN_STEP: i64 = 5;

/// A device authorization.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = device_authorizations)]
pub(crate) struct DeviceRow {
    pub(crate) device_code_hash: String,
    pub(crate) user_code_hash: String,
    pub(crate) client_id: String,
    pub(crate) scope: String,
    pub(crate) status: String,
    pub(crate) poll_interval: i64,
    pub(crate) last_polled_at: Option<i64>,
    pub(crate) subject: Option<String>,
    pub(crate) idp_session_id: Option<String>,
    pub(crate) sid: Option<String>,
    pub(crate) auth_time: Option<i64>,
    pub(crate) amr: Option<String>,
    pub(crate) acr: Option<String>,
    pub(crate) grant_id: Option<String>,
    pub(crate) created_at: i64,
    pub(crate) expires_at: i64,
}

/// What the user's approval records.
pub(crate) struct Approval<'a> {
    pub(crate) subject: &'a str,
    pub(crate) idp_session_id: &'a str,
    pub(crate) sid: &'a str,
    pub(crate) auth_time: i64,
    /// Space-separated.
    pub(crate) amr: &'a str,
    pub(crate) acr: &'a str,
}

/// Stores a new device authorization. `false`: its user code is taken (by a live or a not
/// yet purged row); nothing was written and the caller draws another.
pub(crate) async fn insert(db: &Database, row: &DeviceRow) -> Result<bool, StorageError> {
    let mut conn = db.get().await?;
    let n = with_conn!(&mut conn, |c| diesel::insert_into(
        device_authorizations::table
    )
    .values(row)
    .on_conflict(device_authorizations::user_code_hash)
    .do_nothing()
    .execute(c)
    .await)?;
    Ok(n == 1)
}

/// The device authorization of the device code with digest `hash`, in any state.
pub(crate) async fn by_device_code(
    db: &Database,
    hash: &str,
) -> Result<Option<DeviceRow>, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| device_authorizations::table
        .find(hash)
        .select(DeviceRow::as_select())
        .first(c)
        .await
        .optional())?)
}

/// The pending, unexpired device authorization of the user code with digest `hash`.
pub(crate) async fn pending_by_user_code(
    db: &Database,
    hash: &str,
    now: i64,
) -> Result<Option<DeviceRow>, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| device_authorizations::table
        .filter(device_authorizations::user_code_hash.eq(hash))
        .filter(device_authorizations::status.eq(status::PENDING))
        .filter(device_authorizations::expires_at.gt(now))
        .select(DeviceRow::as_select())
        .first(c)
        .await
        .optional())?)
}

/// Records the user's approval of the pending, unexpired request with user code digest
/// `hash`, once: a conditional UPDATE (`status = pending`) that only one answer can win.
/// `false`: unknown, expired or already answered; nothing was written.
pub(crate) async fn approve(
    db: &Database,
    hash: &str,
    now: i64,
    approval: &Approval<'_>,
) -> Result<bool, StorageError> {
    let mut conn = db.get().await?;
    let n = with_conn!(&mut conn, |c| diesel::update(
        device_authorizations::table
            .filter(device_authorizations::user_code_hash.eq(hash))
            .filter(device_authorizations::status.eq(status::PENDING))
            .filter(device_authorizations::expires_at.gt(now))
    )
    .set((
        device_authorizations::status.eq(status::APPROVED),
        device_authorizations::subject.eq(Some(approval.subject)),
        device_authorizations::idp_session_id.eq(Some(approval.idp_session_id)),
        device_authorizations::sid.eq(Some(approval.sid)),
        device_authorizations::auth_time.eq(Some(approval.auth_time)),
        device_authorizations::amr.eq(Some(approval.amr)),
        device_authorizations::acr.eq(Some(approval.acr)),
    ))
    .execute(c)
    .await)?;
    Ok(n == 1)
}

/// Records the user's denial of the pending, unexpired request with user code digest
/// `hash`, once. `false`: unknown, expired or already answered.
pub(crate) async fn deny(db: &Database, hash: &str, now: i64) -> Result<bool, StorageError> {
    let mut conn = db.get().await?;
    let n = with_conn!(&mut conn, |c| diesel::update(
        device_authorizations::table
            .filter(device_authorizations::user_code_hash.eq(hash))
            .filter(device_authorizations::status.eq(status::PENDING))
            .filter(device_authorizations::expires_at.gt(now))
    )
    .set(device_authorizations::status.eq(status::DENIED))
    .execute(c)
    .await)?;
    Ok(n == 1)
}

/// Records a poll of the device code with digest `hash` at `now`. When `too_fast`, the
/// interval also grows by [`SLOW_DOWN_STEP`] (RFC 8628 §3.5 `slow_down`: "the interval
/// MUST be increased by 5 seconds for this and all subsequent requests").
pub(crate) async fn polled(
    db: &Database,
    hash: &str,
    now: i64,
    too_fast: bool,
) -> Result<(), StorageError> {
    let mut conn = db.get().await?;
    let row = device_authorizations::table.filter(device_authorizations::device_code_hash.eq(hash));
    if too_fast {
        with_conn!(&mut conn, |c| diesel::update(row)
            .set((
                device_authorizations::last_polled_at.eq(Some(now)),
                device_authorizations::poll_interval
                    .eq(device_authorizations::poll_interval + SLOW_DOWN_STEP),
            ))
            .execute(c)
            .await)?;
    } else {
        with_conn!(&mut conn, |c| diesel::update(row)
            .set(device_authorizations::last_polled_at.eq(Some(now)))
            .execute(c)
            .await)?;
    }
    Ok(())
}

/// Deletes device authorizations that expired at or before `before` (redeemed ones live on
/// in their grant).
pub(crate) async fn purge_expired(db: &Database, before: i64) -> Result<usize, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| diesel::delete(
        device_authorizations::table.filter(device_authorizations::expires_at.le(before))
    )
    .execute(c)
    .await)?)
}
