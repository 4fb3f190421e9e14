//! Initial access tokens in the authz database (one query path for both backends).

use diesel::prelude::*;
use domain::ScopeSet;
use storage::diesel_async::{AsyncConnection, RunQueryDsl};
use storage::{Database, StorageError, with_conn};

use super::model::InitialAccessToken;
use crate::schema::registration_tokens;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = registration_tokens)]
struct TokenRow {
    id: String,
    token_hash: String,
    description: String,
    scope: String,
    uses_left: i64,
    created_at: i64,
    expires_at: i64,
}

impl TokenRow {
    fn into_token(self) -> Result<InitialAccessToken, StorageError> {
        Ok(InitialAccessToken {
            scope: ScopeSet::parse(&self.scope).map_err(|e| {
                StorageError::Query(diesel::result::Error::DeserializationError(
                    e.to_string().into(),
                ))
            })?,
            id: self.id,
            description: self.description,
            uses_left: self.uses_left,
            created_at: self.created_at,
            expires_at: self.expires_at,
        })
    }
}

/// Stores a token by the hex SHA-256 of its value, with `event` appended to the audit
/// trail in the same transaction.
pub(super) async fn insert(
    db: &Database,
    token: &InitialAccessToken,
    token_hash: &str,
    event: Option<&audit::AuditEvent>,
) -> Result<(), StorageError> {
    let row = TokenRow {
        id: token.id.clone(),
        token_hash: token_hash.to_owned(),
        description: token.description.clone(),
        scope: token.scope.to_string(),
        uses_left: token.uses_left,
        created_at: token.created_at,
        expires_at: token.expires_at,
    };
    let mut conn = db.get().await?;
    with_conn!(&mut conn, |c| c
        .transaction(async |tx| {
            diesel::insert_into(registration_tokens::table)
                .values(&row)
                .execute(tx)
                .await?;
            if let Some(event) = event {
                audit::append(tx, event).await?;
            }
            Ok::<_, diesel::result::Error>(())
        })
        .await)?;
    Ok(())
}

/// The token whose value has this hex SHA-256.
pub(super) async fn find_by_hash(
    db: &Database,
    token_hash: &str,
) -> Result<Option<InitialAccessToken>, StorageError> {
    let mut conn = db.get().await?;
    let row: Option<TokenRow> = with_conn!(&mut conn, |c| registration_tokens::table
        .filter(registration_tokens::token_hash.eq(token_hash))
        .select(TokenRow::as_select())
        .first(c)
        .await
        .optional())?;
    row.map(TokenRow::into_token).transpose()
}

/// Every token, newest first.
pub(super) async fn list(db: &Database) -> Result<Vec<InitialAccessToken>, StorageError> {
    let mut conn = db.get().await?;
    let rows: Vec<TokenRow> = with_conn!(&mut conn, |c| registration_tokens::table
        .order((
            registration_tokens::created_at.desc(),
            registration_tokens::id.asc(),
        ))
        .select(TokenRow::as_select())
        .load(c)
        .await)?;
    rows.into_iter().map(TokenRow::into_token).collect()
}

/// Deletes a token, with `event` appended to the audit trail in the same transaction;
/// clients registered with it stay. `Ok(false)`: no such token (nothing written).
pub(super) async fn delete(
    db: &Database,
    id: &str,
    event: Option<&audit::AuditEvent>,
) -> Result<bool, StorageError> {
    let mut conn = db.get().await?;
    let n = with_conn!(&mut conn, |c| c
        .transaction(async |tx| {
            let n = diesel::delete(registration_tokens::table.find(id))
                .execute(tx)
                .await?;
            if n == 1
                && let Some(event) = event
            {
                audit::append(tx, event).await?;
            }
            Ok::<_, diesel::result::Error>(n)
        })
        .await)?;
    Ok(n == 1)
}
