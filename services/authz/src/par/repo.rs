//! Pushed requests in the authz database (one query path for both backends).

use diesel::prelude::*;
use storage::diesel_async::RunQueryDsl;
use storage::{Database, StorageError, with_conn};

use crate::schema::pushed_requests;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = pushed_requests)]
pub(super) struct PushedRow {
    pub(super) client_id: String,
    pub(super) parameters: String,
    pub(super) expires_at: i64,
}

pub(super) async fn insert(
    db: &Database,
    hash: &str,
    client_id: &str,
    parameters: &str,
    now: i64,
    expires_at: i64,
) -> Result<(), StorageError> {
    let mut conn = db.get().await?;
    with_conn!(&mut conn, |c| diesel::insert_into(pushed_requests::table)
        .values((
            pushed_requests::request_hash.eq(hash),
            pushed_requests::client_id.eq(client_id),
            pushed_requests::parameters.eq(parameters),
            pushed_requests::created_at.eq(now),
            pushed_requests::expires_at.eq(expires_at),
        ))
        .execute(c)
        .await)?;
    Ok(())
}

pub(super) async fn find(db: &Database, hash: &str) -> Result<Option<PushedRow>, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| pushed_requests::table
        .find(hash)
        .select(PushedRow::as_select())
        .first(c)
        .await
        .optional())?)
}

/// Deletes the row; `Ok(true)` only for the one caller whose delete removed it.
pub(super) async fn delete(db: &Database, hash: &str) -> Result<bool, StorageError> {
    let mut conn = db.get().await?;
    let n = with_conn!(&mut conn, |c| diesel::delete(
        pushed_requests::table.find(hash)
    )
    .execute(c)
    .await)?;
    Ok(n == 1)
}

pub(super) async fn purge(db: &Database, now: i64) -> Result<usize, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| diesel::delete(
        pushed_requests::table.filter(pushed_requests::expires_at.le(now))
    )
    .execute(c)
    .await)?)
}
