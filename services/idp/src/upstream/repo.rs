//! The upstream sign-in tables: one query path for SQLite and PostgreSQL. Every step that
//! changes more than one row runs in one transaction, so an interrupted first login leaves
//! no half-created account.

use diesel::prelude::*;
use storage::diesel_async::{AsyncConnection, RunQueryDsl};
use storage::{Database, StorageError, with_conn};

use crate::schema::{upstream_flows, upstream_identities, upstream_pending, users};
use crate::users::repo::Row as UserRow;

/// Sets the sealed tokens of an identity inside the transaction `$tx` (nothing when
/// `$tokens` is `None`); a macro because the connection type differs per backend.
macro_rules! store_tokens {
    ($tx:expr, $provider:expr, $subject:expr, $tokens:expr, $now:expr) => {{
        if let Some(tokens) = $tokens {
            diesel::update(upstream_identities::table.find(($provider, $subject)))
                .set((
                    upstream_identities::tokens.eq(Some(tokens)),
                    upstream_identities::tokens_updated_at.eq(Some($now)),
                ))
                .execute($tx)
                .await?;
        }
        Ok::<_, diesel::result::Error>(())
    }};
}

/// A linked upstream account.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = upstream_identities)]
pub(crate) struct IdentityRow {
    pub(crate) provider: String,
    pub(crate) subject: String,
    pub(crate) user_id: String,
    pub(crate) email: Option<String>,
    pub(crate) created_at: i64,
    pub(crate) last_login_at: i64,
}

/// A redirect to an upstream, waiting for its callback.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = upstream_flows)]
pub(crate) struct FlowRow {
    pub(crate) state_hash: String,
    pub(crate) provider: String,
    pub(crate) browser_hash: String,
    pub(crate) login_challenge: Option<String>,
    pub(crate) link_user_id: Option<String>,
    pub(crate) nonce: String,
    pub(crate) pkce_verifier: String,
    pub(crate) created_at: i64,
    pub(crate) expires_at: i64,
}

/// A first upstream login waiting for its setup step.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = upstream_pending)]
pub(crate) struct PendingRow {
    pub(crate) id_hash: String,
    pub(crate) provider: String,
    pub(crate) subject: String,
    pub(crate) browser_hash: String,
    pub(crate) login_challenge: String,
    pub(crate) claims: String,
    pub(crate) created_at: i64,
    pub(crate) expires_at: i64,
    /// The upstream's tokens, sealed (`store_tokens` only), moved to the identity when the
    /// setup completes.
    pub(crate) tokens: Option<String>,
}

pub(crate) async fn insert_flow(db: &Database, row: &FlowRow) -> Result<(), StorageError> {
    let mut conn = db.get().await?;
    with_conn!(&mut conn, |c| diesel::insert_into(upstream_flows::table)
        .values(row)
        .execute(c)
        .await)?;
    Ok(())
}

/// Reads and deletes the flow of `state_hash` in one transaction: of two concurrent
/// callbacks with one `state`, only one gets the row. Expired rows are not returned.
pub(crate) async fn take_flow(
    db: &Database,
    state_hash: &str,
    now: i64,
) -> Result<Option<FlowRow>, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| c
        .transaction(async |tx| {
            let row: Option<FlowRow> = upstream_flows::table
                .find(state_hash)
                .select(FlowRow::as_select())
                .first(tx)
                .await
                .optional()?;
            let Some(row) = row else {
                return Ok::<_, diesel::result::Error>(None);
            };
            let n = diesel::delete(upstream_flows::table.find(state_hash))
                .execute(tx)
                .await?;
            Ok((n == 1 && row.expires_at > now).then_some(row))
        })
        .await)?)
}

pub(crate) async fn find_identity(
    db: &Database,
    provider: &str,
    subject: &str,
) -> Result<Option<IdentityRow>, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| upstream_identities::table
        .find((provider, subject))
        .select(IdentityRow::as_select())
        .first(c)
        .await
        .optional())?)
}

/// Marks the identity used now; `tokens` (sealed), when given, replace the stored ones in
/// the same statement.
pub(crate) async fn touch_identity(
    db: &Database,
    provider: &str,
    subject: &str,
    now: i64,
    tokens: Option<&str>,
) -> Result<(), StorageError> {
    let mut conn = db.get().await?;
    match tokens {
        Some(tokens) => with_conn!(&mut conn, |c| diesel::update(
            upstream_identities::table.find((provider, subject))
        )
        .set((
            upstream_identities::last_login_at.eq(now),
            upstream_identities::tokens.eq(Some(tokens)),
            upstream_identities::tokens_updated_at.eq(Some(now)),
        ))
        .execute(c)
        .await)?,
        None => with_conn!(&mut conn, |c| diesel::update(
            upstream_identities::table.find((provider, subject))
        )
        .set(upstream_identities::last_login_at.eq(now))
        .execute(c)
        .await)?,
    };
    Ok(())
}

/// Links an identity, with its sealed `tokens` when given (one transaction); a unique
/// violation means it is linked already (to anyone).
pub(crate) async fn insert_identity(
    db: &Database,
    row: &IdentityRow,
    tokens: Option<&str>,
) -> Result<(), StorageError> {
    let mut conn = db.get().await?;
    with_conn!(&mut conn, |c| c
        .transaction(async |tx| {
            diesel::insert_into(upstream_identities::table)
                .values(row)
                .execute(tx)
                .await?;
            store_tokens!(tx, &row.provider, &row.subject, tokens, row.last_login_at)
        })
        .await)?;
    Ok(())
}

pub(crate) async fn identities_of(
    db: &Database,
    user_id: &str,
) -> Result<Vec<IdentityRow>, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| upstream_identities::table
        .filter(upstream_identities::user_id.eq(user_id))
        .order((
            upstream_identities::provider.asc(),
            upstream_identities::created_at.asc()
        ))
        .select(IdentityRow::as_select())
        .load(c)
        .await)?)
}

/// What [`unlink`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unlinked {
    /// The identity was removed.
    Removed,
    /// No such identity of this user.
    NotFound,
    /// It is the user's last way to sign in (no password, no other identity): kept.
    LastWay,
}

/// Removes the identity `(provider, subject)` of `user_id` unless it is the user's last way
/// to sign in, decided and done in one transaction.
pub(crate) async fn unlink(
    db: &Database,
    user_id: &str,
    provider: &str,
    subject: &str,
) -> Result<Unlinked, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| c
        .transaction(async |tx| {
            let hash: Option<String> = users::table
                .find(user_id)
                .select(users::password_hash)
                .first(tx)
                .await
                .optional()?;
            let Some(hash) = hash else {
                return Ok::<_, diesel::result::Error>(Unlinked::NotFound);
            };
            let linked: i64 = upstream_identities::table
                .filter(upstream_identities::user_id.eq(user_id))
                .count()
                .get_result(tx)
                .await?;
            let target = upstream_identities::table
                .filter(upstream_identities::user_id.eq(user_id))
                .filter(upstream_identities::provider.eq(provider))
                .filter(upstream_identities::subject.eq(subject));
            let exists: i64 = target.count().get_result(tx).await?;
            if exists == 0 {
                return Ok(Unlinked::NotFound);
            }
            if hash.is_empty() && linked <= 1 {
                return Ok(Unlinked::LastWay);
            }
            diesel::delete(target).execute(tx).await?;
            Ok(Unlinked::Removed)
        })
        .await)?)
}

pub(crate) async fn insert_pending(db: &Database, row: &PendingRow) -> Result<(), StorageError> {
    let mut conn = db.get().await?;
    with_conn!(&mut conn, |c| diesel::insert_into(upstream_pending::table)
        .values(row)
        .execute(c)
        .await)?;
    Ok(())
}

pub(crate) async fn find_pending(
    db: &Database,
    id_hash: &str,
    now: i64,
) -> Result<Option<PendingRow>, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| upstream_pending::table
        .find(id_hash)
        .filter(upstream_pending::expires_at.gt(now))
        .select(PendingRow::as_select())
        .first(c)
        .await
        .optional())?)
}

/// How a pending first login ends.
pub(crate) enum Completion<'a> {
    /// A new local user is created and linked.
    NewUser(&'a UserRow),
    /// The identity is linked to the existing user `user_id`.
    Link(&'a str),
}

/// In one transaction: deletes the pending row (it must still be there: a second
/// completion gets `Ok(false)`), creates the user when asked, and links the identity with
/// the pending row's sealed tokens.
/// A taken username or email, or an identity linked meanwhile, is a unique violation that
/// rolls everything back.
pub(crate) async fn complete(
    db: &Database,
    pending: &PendingRow,
    completion: Completion<'_>,
    email: Option<String>,
    now: i64,
) -> Result<bool, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| c
        .transaction(async |tx| {
            let n = diesel::delete(upstream_pending::table.find(&pending.id_hash))
                .execute(tx)
                .await?;
            if n != 1 {
                return Ok::<_, diesel::result::Error>(false);
            }
            let user_id = match completion {
                Completion::NewUser(row) => {
                    diesel::insert_into(users::table)
                        .values(row)
                        .execute(tx)
                        .await?;
                    row.id.clone()
                }
                Completion::Link(id) => id.to_owned(),
            };
            diesel::insert_into(upstream_identities::table)
                .values(&IdentityRow {
                    provider: pending.provider.clone(),
                    subject: pending.subject.clone(),
                    user_id,
                    email: email.clone(),
                    created_at: now,
                    last_login_at: now,
                })
                .execute(tx)
                .await?;
            store_tokens!(
                tx,
                &pending.provider,
                &pending.subject,
                pending.tokens.as_deref(),
                now
            )?;
            Ok(true)
        })
        .await)?)
}

/// Deletes expired flows and pending logins; returns how many.
pub(crate) async fn purge(db: &Database, now: i64) -> Result<usize, StorageError> {
    let mut conn = db.get().await?;
    let flows = with_conn!(&mut conn, |c| diesel::delete(
        upstream_flows::table.filter(upstream_flows::expires_at.le(now))
    )
    .execute(c)
    .await)?;
    let pending = with_conn!(&mut conn, |c| diesel::delete(
        upstream_pending::table.filter(upstream_pending::expires_at.le(now))
    )
    .execute(c)
    .await)?;
    Ok(flows + pending)
}
