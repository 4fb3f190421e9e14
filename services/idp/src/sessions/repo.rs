//! Sessions in the idp database: one query path for SQLite and PostgreSQL.

use diesel::prelude::*;
use storage::KeepPrepared;
use storage::diesel_async::{AsyncConnection, RunQueryDsl};
use storage::{Database, StorageError, with_conn};

use crate::schema::sessions;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions)]
pub(crate) struct Row {
    pub(crate) id: String,
    pub(crate) secret_hash: String,
    pub(crate) user_id: String,
    pub(crate) auth_time: i64,
    /// RFC 8176 method values, space-separated.
    pub(crate) amr: String,
    pub(crate) acr: String,
    pub(crate) created_at: i64,
    pub(crate) last_seen_at: i64,
    pub(crate) expires_at: i64,
}

pub(crate) async fn insert(db: &Database, row: &Row) -> Result<(), StorageError> {
    let mut conn = db.get().await?;
    with_conn!(&mut conn, |c| diesel::insert_into(sessions::table)
        .values(row)
        .execute(c)
        .await)?;
    Ok(())
}

/// A session alive at `now` (lifetime and idle timeout) by the hash of its cookie secret.
pub(crate) async fn find_alive_by_secret(
    db: &Database,
    secret_hash: &str,
    now: i64,
    idle_cutoff: i64,
) -> Result<Option<Row>, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| sessions::table
        .filter(sessions::secret_hash.eq(secret_hash))
        .filter(sessions::expires_at.gt(now))
        .filter(sessions::last_seen_at.gt(idle_cutoff))
        .select(Row::as_select())
        .first(c)
        .await
        .optional())?)
}

/// A session alive at `now` by its public id.
pub(crate) async fn find_alive_by_id(
    db: &Database,
    id: &str,
    now: i64,
    idle_cutoff: i64,
) -> Result<Option<Row>, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| sessions::table
        .find(id)
        .filter(sessions::expires_at.gt(now))
        .filter(sessions::last_seen_at.gt(idle_cutoff))
        .select(Row::as_select())
        .first(c)
        .await
        .optional())?)
}

pub(crate) async fn touch(db: &Database, id: &str, now: i64) -> Result<(), StorageError> {
    let mut conn = db.get().await?;
    with_conn!(&mut conn, |c| KeepPrepared(
        diesel::update(sessions::table.find(id)).set(sessions::last_seen_at.eq(now))
    )
    .execute(c)
    .await)?;
    Ok(())
}

/// A fresh authentication within an existing session: new secret, `auth_time`, methods and
/// lifetime, same public id.
pub(crate) async fn reauthenticate(db: &Database, row: &Row) -> Result<usize, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| KeepPrepared(
        diesel::update(sessions::table.find(&row.id)).set((
            sessions::secret_hash.eq(&row.secret_hash),
            sessions::auth_time.eq(row.auth_time),
            sessions::amr.eq(&row.amr),
            sessions::acr.eq(&row.acr),
            sessions::last_seen_at.eq(row.last_seen_at),
            sessions::expires_at.eq(row.expires_at),
        ))
    )
    .execute(c)
    .await)?)
}

pub(crate) async fn delete_by_id(db: &Database, id: &str) -> Result<usize, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| diesel::delete(
        sessions::table.find(id)
    )
    .execute(c)
    .await)?)
}

pub(crate) async fn delete_by_user(db: &Database, user_id: &str) -> Result<usize, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| diesel::delete(
        sessions::table.filter(sessions::user_id.eq(user_id))
    )
    .execute(c)
    .await)?)
}

/// logout: deletes the sessions of `user_id` (only the one with id `only` when given) in
/// one transaction, appending `event` (the admin API's `session.ended` / `sessions.ended`)
/// when any ended, and returns their ids.
pub(crate) async fn end_all_listed(
    db: &Database,
    user_id: &str,
    only: Option<&str>,
    event: Option<&audit::AuditEvent>,
) -> Result<Vec<String>, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| c
        .transaction(async |tx| {
            let mut q = sessions::table
                .filter(sessions::user_id.eq(user_id))
                .select(sessions::id)
                .into_boxed();
            if let Some(id) = only {
                q = q.filter(sessions::id.eq(id.to_owned()));
            }
            let ids: Vec<String> = q.load(tx).await?;
            if ids.is_empty() {
                return Ok::<_, diesel::result::Error>(ids);
            }
            diesel::delete(sessions::table.filter(sessions::id.eq_any(&ids)))
                .execute(tx)
                .await?;
            if let Some(event) = event {
                audit::append(tx, event).await?;
            }
            Ok(ids)
        })
        .await)?)
}

/// Sessions alive at `now`, over the whole database (every replica's).
pub(crate) async fn count_alive(
    db: &Database,
    now: i64,
    idle_cutoff: i64,
) -> Result<i64, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| sessions::table
        .filter(sessions::expires_at.gt(now))
        .filter(sessions::last_seen_at.gt(idle_cutoff))
        .count()
        .get_result(c)
        .await)?)
}

/// Deletes sessions that are no longer alive at `now`.
pub(crate) async fn purge(
    db: &Database,
    now: i64,
    idle_cutoff: i64,
) -> Result<usize, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| diesel::delete(
        sessions::table.filter(
            sessions::expires_at
                .le(now)
                .or(sessions::last_seen_at.le(idle_cutoff))
        )
    )
    .execute(c)
    .await)?)
}
