//! Signing keys in the authz database: one query path for SQLite and PostgreSQL.

use diesel::prelude::*;
use issuer::{KeyRecord, KeyState};
use storage::diesel_async::{AsyncConnection, RunQueryDsl};
use storage::{Database, StorageError, with_conn};

use crate::schema::signing_keys;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = signing_keys)]
struct Row {
    kid: String,
    alg: String,
    generation: i64,
    state: String,
    public_jwk: String,
    private_key: String,
    created_at: i64,
    activates_at: i64,
    retired_at: Option<i64>,
    remove_after: Option<i64>,
}

impl Row {
    fn into_record(self) -> Result<KeyRecord, StorageError> {
        let corrupt = |what: String| {
            StorageError::Query(diesel::result::Error::DeserializationError(what.into()))
        };
        Ok(KeyRecord {
            alg: self.alg.parse().map_err(corrupt)?,
            state: self.state.parse().map_err(corrupt)?,
            kid: self.kid,
            generation: self.generation,
            public_jwk: self.public_jwk,
            private_key: self.private_key,
            created_at: self.created_at,
            activates_at: self.activates_at,
            retired_at: self.retired_at,
            remove_after: self.remove_after,
        })
    }

    fn from_record(r: &KeyRecord) -> Self {
        Self {
            kid: r.kid.clone(),
            alg: r.alg.as_str().to_owned(),
            generation: r.generation,
            state: r.state.as_str().to_owned(),
            public_jwk: r.public_jwk.clone(),
            private_key: r.private_key.clone(),
            created_at: r.created_at,
            activates_at: r.activates_at,
            retired_at: r.retired_at,
            remove_after: r.remove_after,
        }
    }
}

/// Every stored key, oldest generation first.
pub(crate) async fn all(db: &Database) -> Result<Vec<KeyRecord>, StorageError> {
    let mut conn = db.get().await?;
    let rows: Vec<Row> = with_conn!(&mut conn, |c| signing_keys::table
        .order((signing_keys::alg.asc(), signing_keys::generation.asc()))
        .select(Row::as_select())
        .load(c)
        .await)?;
    rows.into_iter().map(Row::into_record).collect()
}

/// Inserts a new key, with `event` appended to the audit trail in the same transaction. A
/// unique violation on `(alg, generation)` means another replica created this generation
/// first: reported as `Ok(false)` (nothing written).
pub(crate) async fn insert(
    db: &Database,
    record: &KeyRecord,
    event: Option<&audit::AuditEvent>,
) -> Result<bool, StorageError> {
    let row = Row::from_record(record);
    let mut conn = db.get().await?;
    let result = with_conn!(&mut conn, |c| c
        .transaction(async |tx| {
            diesel::insert_into(signing_keys::table)
                .values(&row)
                .execute(tx)
                .await?;
            if let Some(event) = event {
                audit::append(tx, event).await?;
            }
            Ok::<_, diesel::result::Error>(())
        })
        .await);
    match result.map_err(StorageError::from) {
        Ok(_) => Ok(true),
        Err(e) if e.is_unique_violation() => Ok(false),
        Err(e) => Err(e),
    }
}

/// Sets a key's state and times, with `event` appended to the audit trail in the same
/// transaction when the key exists.
pub(crate) async fn update(
    db: &Database,
    kid: &str,
    state: KeyState,
    times: (i64, Option<i64>, Option<i64>),
    event: Option<&audit::AuditEvent>,
) -> Result<usize, StorageError> {
    let (activates_at, retired_at, remove_after) = times;
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| c
        .transaction(async |tx| {
            let n = diesel::update(signing_keys::table.find(kid))
                .set((
                    signing_keys::state.eq(state.as_str()),
                    signing_keys::activates_at.eq(activates_at),
                    signing_keys::retired_at.eq(retired_at),
                    signing_keys::remove_after.eq(remove_after),
                ))
                .execute(tx)
                .await?;
            if n == 1
                && let Some(event) = event
            {
                audit::append(tx, event).await?;
            }
            Ok::<_, diesel::result::Error>(n)
        })
        .await)?)
}

/// Deletes a key (its retention is over).
pub(crate) async fn delete(db: &Database, kid: &str) -> Result<usize, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| diesel::delete(
        signing_keys::table.find(kid)
    )
    .execute(c)
    .await)?)
}
