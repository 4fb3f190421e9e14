//! Failure counters and device cookies in the idp database: one query path for SQLite and
//! PostgreSQL. Counters change only through atomic upserts (`failures = failures + 1`)
//! inside a transaction, so concurrent attempts on any number of replicas all count.

use diesel::prelude::*;
use storage::KeepPrepared;
use storage::diesel_async::{AsyncConnection, RunQueryDsl};
use storage::{Database, StorageError, with_conn};

use crate::schema::{login_devices, login_throttle};

/// A counter as stored.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = login_throttle)]
pub(crate) struct Counter {
    pub(crate) id: String,
    pub(crate) failures: i64,
    pub(crate) last_failure_at: i64,
    pub(crate) blocked_until: i64,
}

/// A device cookie as stored (its token only as a hex SHA-256).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = login_devices)]
pub(crate) struct Device {
    pub(crate) token_hash: String,
    pub(crate) user_id: String,
    pub(crate) network: String,
    pub(crate) created_at: i64,
    pub(crate) expires_at: i64,
}

/// The counters of `keys` that exist.
pub(crate) async fn counters(db: &Database, keys: &[String]) -> Result<Vec<Counter>, StorageError> {
    let mut conn = db.get().await?;
    // `keys` are the two or three counters of one attempt: a bounded number of forms.
    Ok(with_conn!(&mut conn, |c| KeepPrepared(
        login_throttle::table
            .filter(login_throttle::id.eq_any(keys))
            .select(Counter::as_select())
    )
    .load(c)
    .await)?)
}

/// Counts one failure against each key, in one transaction: a counter whose last failure
/// is at or before `stale_before` starts again from zero; then `failures = failures + 1`
/// (an upsert, atomic on both backends) and `blocked_until` is raised, never lowered, to
/// what `block(index of the key, failures)` says. Returns the counters as they are now.
pub(crate) async fn count_failures(
    db: &Database,
    keys: &[String],
    now: i64,
    stale_before: i64,
    block: &(dyn Fn(usize, i64) -> Option<i64> + Sync),
) -> Result<Vec<Counter>, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| c
        .transaction(async |tx| {
            let mut counted = Vec::with_capacity(keys.len());
            for (i, key) in keys.iter().enumerate() {
                diesel::delete(
                    login_throttle::table
                        .find(key)
                        .filter(login_throttle::last_failure_at.le(stale_before)),
                )
                .execute(tx)
                .await?;
                diesel::insert_into(login_throttle::table)
                    .values((
                        login_throttle::id.eq(key),
                        login_throttle::failures.eq(1_i64),
                        login_throttle::last_failure_at.eq(now),
                        login_throttle::blocked_until.eq(0_i64),
                    ))
                    .on_conflict(login_throttle::id)
                    .do_update()
                    .set((
                        login_throttle::failures.eq(login_throttle::failures + 1_i64),
                        login_throttle::last_failure_at.eq(now),
                    ))
                    .execute(tx)
                    .await?;
                let mut counter: Counter = login_throttle::table
                    .find(key)
                    .select(Counter::as_select())
                    .first(tx)
                    .await?;
                if let Some(until) = block(i, counter.failures)
                    && until > counter.blocked_until
                {
                    diesel::update(login_throttle::table.find(key))
                        .set(login_throttle::blocked_until.eq(until))
                        .execute(tx)
                        .await?;
                    counter.blocked_until = until;
                }
                counted.push(counter);
            }
            Ok::<_, diesel::result::Error>(counted)
        })
        .await)?)
}

/// After a successful login, in one transaction: forgets the counters `clear`, deletes the
/// device cookie `replaced` if it was this user's, stores `device`, and keeps at most
/// `keep` device cookies of the user (the newest).
pub(crate) async fn succeed(
    db: &Database,
    clear: &[String],
    replaced: Option<&str>,
    device: &Device,
    keep: i64,
) -> Result<(), StorageError> {
    let mut conn = db.get().await?;
    with_conn!(&mut conn, |c| c
        .transaction(async |tx| {
            KeepPrepared(diesel::delete(
                login_throttle::table.filter(login_throttle::id.eq_any(clear)),
            ))
            .execute(tx)
            .await?;
            if let Some(old) = replaced {
                diesel::delete(
                    login_devices::table
                        .find(old)
                        .filter(login_devices::user_id.eq(&device.user_id)),
                )
                .execute(tx)
                .await?;
            }
            diesel::insert_into(login_devices::table)
                .values(device)
                .execute(tx)
                .await?;
            // One statement: the user's devices beyond the `keep` newest go.
            let kept = diesel::alias!(login_devices as kept);
            let newest = kept
                .filter(kept.field(login_devices::user_id).eq(&device.user_id))
                .order((
                    kept.field(login_devices::created_at).desc(),
                    kept.field(login_devices::token_hash).desc(),
                ))
                .limit(keep)
                .select(kept.field(login_devices::token_hash));
            diesel::delete(
                login_devices::table
                    .filter(login_devices::user_id.eq(&device.user_id))
                    .filter(diesel::dsl::not(login_devices::token_hash.eq_any(newest))),
            )
            .execute(tx)
            .await?;
            Ok::<_, diesel::result::Error>(())
        })
        .await)?;
    Ok(())
}

/// After a successful login from no known address (no device cookie can be bound):
/// forgets the counters `clear`, in one transaction.
pub(crate) async fn succeed_without_device(
    db: &Database,
    clear: &[String],
) -> Result<(), StorageError> {
    let mut conn = db.get().await?;
    with_conn!(&mut conn, |c| c
        .transaction(async |tx| {
            KeepPrepared(diesel::delete(
                login_throttle::table.filter(login_throttle::id.eq_any(clear)),
            ))
            .execute(tx)
            .await
        })
        .await)?;
    Ok(())
}

/// Whether the device cookie with this hash is alive at `now` and was given to `user_id`
/// in `network`.
pub(crate) async fn device_trusted(
    db: &Database,
    token_hash: &str,
    user_id: &str,
    network: &str,
    now: i64,
) -> Result<bool, StorageError> {
    let mut conn = db.get().await?;
    let found: i64 = with_conn!(&mut conn, |c| login_devices::table
        .find(token_hash)
        .filter(login_devices::user_id.eq(user_id))
        .filter(login_devices::network.eq(network))
        .filter(login_devices::expires_at.gt(now))
        .count()
        .get_result(c)
        .await)?;
    Ok(found > 0)
}

/// Deletes counters whose last failure is at or before `stale_before` (their blocks have
/// ended: `reset_after` ≥ `max_delay`) and device cookies expired at `now`; returns how
/// many of each.
pub(crate) async fn purge(
    db: &Database,
    now: i64,
    stale_before: i64,
) -> Result<(usize, usize), StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| c
        .transaction(async |tx| {
            let counters = diesel::delete(
                login_throttle::table
                    .filter(login_throttle::last_failure_at.le(stale_before))
                    .filter(login_throttle::blocked_until.le(now)),
            )
            .execute(tx)
            .await?;
            let devices =
                diesel::delete(login_devices::table.filter(login_devices::expires_at.le(now)))
                    .execute(tx)
                    .await?;
            Ok::<_, diesel::result::Error>((counters, devices))
        })
        .await)?)
}

/// How many counters are stored (every replica's).
pub(crate) async fn count(db: &Database) -> Result<i64, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| login_throttle::table
        .count()
        .get_result(c)
        .await)?)
}
