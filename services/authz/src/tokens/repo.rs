//! Opaque tokens and the JWT denylist in the authz database.

use diesel::prelude::*;
use storage::diesel_async::RunQueryDsl;
use storage::{Database, StorageError, with_conn};

use crate::schema::{opaque_tokens, revoked_jtis};

/// A stored opaque token (by digest).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = opaque_tokens)]
pub(crate) struct OpaqueRow {
    pub(crate) token_hash: String,
    pub(crate) jti: String,
    pub(crate) client_id: String,
    pub(crate) subject: String,
    pub(crate) scope: String,
    /// JSON array.
    pub(crate) audience: String,
    pub(crate) issued_at: i64,
    pub(crate) expires_at: i64,
    // token exchange (RFC 8693)
    /// The `act` claim as JSON, for exchanged tokens.
    pub(crate) act: Option<String>,
}

/// Inserts several opaque tokens in one transaction. The one place that differs by
/// backend: on SQLite the whole batch runs in a single hop to the blocking pool, as one
/// single-row statement (prepared once per connection and kept) stepped once per row; a
/// multi-row `INSERT` would have a new text for every batch size, parsed again each time.
/// PostgreSQL gets [`InsertOpaqueColumns`]: one statement of the same text for any batch
/// size, prepared once per connection, one round trip per batch.
pub(crate) async fn insert_opaque_many(
    db: &Database,
    rows: Vec<OpaqueRow>,
) -> Result<(), StorageError> {
    let mut conn = db.get().await?;
    match &mut conn {
        storage::DbConn::Sqlite(c) => {
            c.spawn_blocking(move |sync| {
                diesel::Connection::transaction(sync, |tx| {
                    for row in &rows {
                        diesel::RunQueryDsl::execute(
                            diesel::insert_into(opaque_tokens::table).values(columns(row)),
                            tx,
                        )?;
                    }
                    Ok::<_, diesel::result::Error>(())
                })
            })
            .await?;
        }
        storage::DbConn::Postgres(c) => {
            InsertOpaqueColumns::from(rows).execute(&mut **c).await?;
        }
    }
    Ok(())
}

/// One row's values for a SQLite `INSERT` whose text never varies. The derived `Insertable`
/// leaves a `None` column out of the statement, so diesel cannot key the prepared statement
/// by type and renders the SQL again for every row to find it in the cache; `act` bound as
/// a nullable value (`NULL` or the JSON) keeps one statement text and a static query id.
#[allow(clippy::type_complexity)]
fn columns(
    row: &OpaqueRow,
) -> (
    diesel::dsl::Eq<opaque_tokens::token_hash, &str>,
    diesel::dsl::Eq<opaque_tokens::jti, &str>,
    diesel::dsl::Eq<opaque_tokens::client_id, &str>,
    diesel::dsl::Eq<opaque_tokens::subject, &str>,
    diesel::dsl::Eq<opaque_tokens::scope, &str>,
    diesel::dsl::Eq<opaque_tokens::audience, &str>,
    diesel::dsl::Eq<opaque_tokens::issued_at, i64>,
    diesel::dsl::Eq<opaque_tokens::expires_at, i64>,
    diesel::dsl::Eq<opaque_tokens::act, Option<&str>>,
) {
    (
        opaque_tokens::token_hash.eq(row.token_hash.as_str()),
        opaque_tokens::jti.eq(row.jti.as_str()),
        opaque_tokens::client_id.eq(row.client_id.as_str()),
        opaque_tokens::subject.eq(row.subject.as_str()),
        opaque_tokens::scope.eq(row.scope.as_str()),
        opaque_tokens::audience.eq(row.audience.as_str()),
        opaque_tokens::issued_at.eq(row.issued_at),
        opaque_tokens::expires_at.eq(row.expires_at),
        opaque_tokens::act.eq(row.act.as_deref()),
    )
}

/// A batch of opaque tokens as one PostgreSQL statement whose text does not depend on the
/// batch size: each column is one array parameter, and `unnest` makes the rows
/// (`INSERT … SELECT * FROM unnest($1, …, $9)`). Diesel's multi-row `INSERT` has one
/// `VALUES` tuple per row, so each batch size is another statement: never kept prepared,
/// parsed and planned by the server for every batch, and an extra round trip to prepare it.
/// This one has a static query id, so it is prepared once per connection and kept.
#[derive(Default)]
struct InsertOpaqueColumns {
    token_hash: Vec<String>,
    jti: Vec<String>,
    client_id: Vec<String>,
    subject: Vec<String>,
    scope: Vec<String>,
    audience: Vec<String>,
    issued_at: Vec<i64>,
    expires_at: Vec<i64>,
    act: Vec<Option<String>>,
}

impl From<Vec<OpaqueRow>> for InsertOpaqueColumns {
    fn from(rows: Vec<OpaqueRow>) -> Self {
        let mut columns = Self::default();
        for row in rows {
            columns.token_hash.push(row.token_hash);
            columns.jti.push(row.jti);
            columns.client_id.push(row.client_id);
            columns.subject.push(row.subject);
            columns.scope.push(row.scope);
            columns.audience.push(row.audience);
            columns.issued_at.push(row.issued_at);
            columns.expires_at.push(row.expires_at);
            columns.act.push(row.act);
        }
        columns
    }
}

impl diesel::query_builder::QueryId for InsertOpaqueColumns {
    type QueryId = Self;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl diesel::query_builder::QueryFragment<diesel::pg::Pg> for InsertOpaqueColumns {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> QueryResult<()> {
        use diesel::sql_types::{Array, BigInt, Nullable, Text};
        out.push_sql(
            "INSERT INTO opaque_tokens (token_hash, jti, client_id, subject, scope, audience, \
             issued_at, expires_at, act) SELECT * FROM unnest(",
        );
        for (i, column) in [
            &self.token_hash,
            &self.jti,
            &self.client_id,
            &self.subject,
            &self.scope,
            &self.audience,
        ]
        .into_iter()
        .enumerate()
        {
            if i > 0 {
                out.push_sql(", ");
            }
            out.push_bind_param::<Array<Text>, _>(column)?;
        }
        out.push_sql(", ");
        out.push_bind_param::<Array<BigInt>, _>(&self.issued_at)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<BigInt>, _>(&self.expires_at)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.act)?;
        out.push_sql(")");
        Ok(())
    }
}

/// Deletes an opaque token if it belongs to `client_id`.
pub(crate) async fn delete_opaque(
    db: &Database,
    hash: &str,
    client_id: &str,
) -> Result<usize, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| diesel::delete(
        opaque_tokens::table
            .filter(opaque_tokens::token_hash.eq(hash))
            .filter(opaque_tokens::client_id.eq(client_id))
    )
    .execute(c)
    .await)?)
}

/// Puts a JWT's `jti` on the denylist until `expires_at`; already listed is fine.
pub(crate) async fn revoke_jti(
    db: &Database,
    jti: &str,
    client_id: &str,
    expires_at: i64,
) -> Result<(), StorageError> {
    let mut conn = db.get().await?;
    let result = with_conn!(&mut conn, |c| diesel::insert_into(revoked_jtis::table)
        .values((
            revoked_jtis::jti.eq(jti),
            revoked_jtis::client_id.eq(client_id),
            revoked_jtis::expires_at.eq(expires_at),
        ))
        .execute(c)
        .await);
    match result.map_err(StorageError::from) {
        Ok(_) => Ok(()),
        Err(e) if e.is_unique_violation() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Which of `jtis` are on the denylist (one query for a whole batch). A single `jti`, the
/// common case, uses a fixed statement that stays prepared on the connection; on SQLite
/// `IN (…)` lists vary in length, so their statements are prepared per call (PostgreSQL's
/// is one `= ANY($1)` statement for every length).
pub(crate) async fn revoked_among(
    db: &Database,
    jtis: &[&str],
) -> Result<Vec<String>, StorageError> {
    if jtis.is_empty() {
        return Ok(Vec::new());
    }
    let mut conn = db.get().await?;
    Ok(match jtis {
        [jti] => with_conn!(&mut conn, |c| revoked_jtis::table
            .filter(revoked_jtis::jti.eq(*jti))
            .select(revoked_jtis::jti)
            .load(c)
            .await)?,
        _ => with_conn!(&mut conn, |c| revoked_jtis::table
            .filter(revoked_jtis::jti.eq_any(jtis))
            .select(revoked_jtis::jti)
            .load(c)
            .await)?,
    })
}

/// The stored opaque tokens among `hashes` (one query for a whole batch; a single hash
/// uses a statement that stays prepared, as in [`revoked_among`]).
pub(crate) async fn find_opaque_many(
    db: &Database,
    hashes: &[&str],
) -> Result<Vec<OpaqueRow>, StorageError> {
    if hashes.is_empty() {
        return Ok(Vec::new());
    }
    let mut conn = db.get().await?;
    Ok(match hashes {
        [hash] => with_conn!(&mut conn, |c| opaque_tokens::table
            .filter(opaque_tokens::token_hash.eq(*hash))
            .select(OpaqueRow::as_select())
            .load(c)
            .await)?,
        _ => with_conn!(&mut conn, |c| opaque_tokens::table
            .filter(opaque_tokens::token_hash.eq_any(hashes))
            .select(OpaqueRow::as_select())
            .load(c)
            .await)?,
    })
}

/// Deletes opaque tokens and denylist entries that expired before `now`.
pub(crate) async fn purge_expired(db: &Database, now: i64) -> Result<usize, StorageError> {
    let mut conn = db.get().await?;
    let a = with_conn!(&mut conn, |c| diesel::delete(
        opaque_tokens::table.filter(opaque_tokens::expires_at.le(now))
    )
    .execute(c)
    .await)?;
    let b = with_conn!(&mut conn, |c| diesel::delete(
        revoked_jtis::table.filter(revoked_jtis::expires_at.le(now))
    )
    .execute(c)
    .await)?;
    Ok(a + b)
}
