//! Grants, refresh tokens, code redemption and the records of access tokens issued from a
//! grant, in the authz database.
//!
//! Lock order, on PostgreSQL as on SQLite (where every write transaction is exclusive
//! anyway): a transaction that touches a grant locks the grant row (or the code row, for a
//! new grant) with its first statement, before any refresh token row. Rotation and
//! revocation of one grant therefore serialise on that row and cannot deadlock, and a
//! revocation sees every access token committed before it.

use diesel::prelude::*;
use storage::KeepPrepared;
use storage::diesel_async::{AsyncConnection, RunQueryDsl};
use storage::{Database, StorageError, with_conn};

use crate::flow::repo::CodeRow;
use crate::schema::{
    authorization_codes, browser_sessions, consents, grant_access_tokens, grants, opaque_tokens,
    refresh_tokens, revoked_jtis,
};
use crate::tokens::repo::OpaqueRow;

/// A grant: everything issued from one redeemed authorization code.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = grants)]
pub(crate) struct GrantRow {
    pub(crate) id: String,
    pub(crate) client_id: String,
    pub(crate) subject: String,
    pub(crate) scope: String,
    pub(crate) sid: String,
    pub(crate) auth_time: i64,
    pub(crate) amr: String,
    pub(crate) acr: String,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
    pub(crate) expires_at: i64,
    pub(crate) revoked_at: Option<i64>,
}

/// A refresh token (by digest).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = refresh_tokens)]
pub(crate) struct RefreshRow {
    pub(crate) token_hash: String,
    pub(crate) grant_id: String,
    pub(crate) client_id: String,
    pub(crate) issued_at: i64,
    pub(crate) expires_at: i64,
    pub(crate) rotated_at: Option<i64>,
    /// Set on rotation: the salt of the successor's derivation
    /// ([`crate::tokens::successor_token`]).
    pub(crate) successor_salt: Option<String>,
}

/// An access token issued from a grant.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = grant_access_tokens)]
pub(crate) struct AccessRecord {
    pub(crate) jti: String,
    pub(crate) grant_id: String,
    pub(crate) opaque_hash: Option<String>,
    pub(crate) expires_at: i64,
}

/// What one token response stores besides the grant itself.
pub(crate) struct Issued {
    pub(crate) access: AccessRecord,
    pub(crate) opaque: Option<OpaqueRow>,
    pub(crate) refresh: Option<RefreshRow>,
}

/// Why a transaction was abandoned on purpose: the conditional update lost.
pub(super) fn lost() -> diesel::result::Error {
    diesel::result::Error::RollbackTransaction
}

pub(super) fn won(result: Result<(), diesel::result::Error>) -> Result<bool, StorageError> {
    match result {
        Ok(()) => Ok(true),
        Err(diesel::result::Error::RollbackTransaction) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Inserts what a token response stores, inside the caller's transaction (a macro: the
/// transaction's connection type differs per backend).
macro_rules! insert_issued {
    ($tx:expr, $issued:expr) => {{
        let issued: &Issued = $issued;
        diesel::insert_into(grant_access_tokens::table)
            .values(&issued.access)
            .execute($tx)
            .await?;
        if let Some(row) = &issued.opaque {
            diesel::insert_into(opaque_tokens::table)
                .values(row)
                .execute($tx)
                .await?;
        }
        if let Some(row) = &issued.refresh {
            diesel::insert_into(refresh_tokens::table)
                .values(row)
                .execute($tx)
                .await?;
        }
        Ok::<(), diesel::result::Error>(())
    }};
}
// device grant (RFC 8628): `grants/device.rs` redeems device codes the same way.
pub(super) use insert_issued;

/// The code with digest `hash`, redeemed or not.
pub(crate) async fn code(db: &Database, hash: &str) -> Result<Option<CodeRow>, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| authorization_codes::table
        .find(hash)
        .select(CodeRow::as_select())
        .first(c)
        .await
        .optional())?)
}

/// Redeems the code `hash` for `grant`, once (RFC 6749 §4.1.2: "MUST NOT be used more than
/// once"): in one transaction the grant is inserted, the code is marked redeemed by a
/// conditional UPDATE (`redeemed_at IS NULL`, unexpired) that only one caller can win, and
/// the issued tokens are recorded. `false`: another redemption won (or the code expired);
/// nothing was written.
pub(crate) async fn redeem(
    db: &Database,
    hash: &str,
    now: i64,
    grant: &GrantRow,
    issued: &Issued,
) -> Result<bool, StorageError> {
    let mut conn = db.get().await?;
    let result = with_conn!(&mut conn, |c| c
        .transaction(async |tx| {
            diesel::insert_into(grants::table)
                .values(grant)
                .execute(tx)
                .await?;
            let n = KeepPrepared(
                diesel::update(
                    authorization_codes::table
                        .filter(authorization_codes::code_hash.eq(hash))
                        .filter(authorization_codes::redeemed_at.is_null())
                        .filter(authorization_codes::expires_at.gt(now)),
                )
                .set((
                    authorization_codes::redeemed_at.eq(Some(now)),
                    authorization_codes::grant_id.eq(Some(&grant.id)),
                )),
            )
            .execute(tx)
            .await?;
            if n != 1 {
                return Err(lost());
            }
            insert_issued!(tx, issued)
        })
        .await);
    won(result)
}

/// The refresh token with digest `hash` and its grant.
pub(crate) async fn refresh_token(
    db: &Database,
    hash: &str,
) -> Result<Option<(RefreshRow, GrantRow)>, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| refresh_tokens::table
        .inner_join(grants::table)
        .filter(refresh_tokens::token_hash.eq(hash))
        .select((RefreshRow::as_select(), GrantRow::as_select()))
        .first(c)
        .await
        .optional())?)
}

/// The refresh tokens with digests in `hashes` and their grants, in one query (a batch
/// introspection looks up all its candidates at once); unknown digests are left out.
pub(crate) async fn refresh_tokens_many(
    db: &Database,
    hashes: &[String],
) -> Result<Vec<(RefreshRow, GrantRow)>, StorageError> {
    if hashes.is_empty() {
        return Ok(Vec::new());
    }
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| refresh_tokens::table
        .inner_join(grants::table)
        .filter(refresh_tokens::token_hash.eq_any(hashes))
        .select((RefreshRow::as_select(), GrantRow::as_select()))
        .load(c)
        .await)?)
}

/// Rotates the refresh token `hash` of grant `grant_id`, once (RFC 9700 §4.14.2): locks
/// the unrevoked grant, marks the token rotated (recording `successor_salt`) by a
/// conditional UPDATE (`rotated_at IS NULL`, unexpired) that only one caller can win, and
/// stores the new tokens. `false`: the grant was revoked or the token already rotated;
/// nothing was written.
pub(crate) async fn rotate(
    db: &Database,
    hash: &str,
    grant_id: &str,
    now: i64,
    grant_expires_at: i64,
    successor_salt: &str,
    issued: &Issued,
) -> Result<bool, StorageError> {
    let mut conn = db.get().await?;
    let result = with_conn!(&mut conn, |c| c
        .transaction(async |tx| {
            let n = KeepPrepared(
                diesel::update(
                    grants::table
                        .filter(grants::id.eq(grant_id))
                        .filter(grants::revoked_at.is_null()),
                )
                .set((
                    grants::updated_at.eq(now),
                    grants::expires_at.eq(grant_expires_at),
                )),
            )
            .execute(tx)
            .await?;
            if n != 1 {
                return Err(lost());
            }
            let n = KeepPrepared(
                diesel::update(
                    refresh_tokens::table
                        .filter(refresh_tokens::token_hash.eq(hash))
                        .filter(refresh_tokens::rotated_at.is_null())
                        .filter(refresh_tokens::expires_at.gt(now)),
                )
                .set((
                    refresh_tokens::rotated_at.eq(Some(now)),
                    refresh_tokens::successor_salt.eq(Some(successor_salt)),
                )),
            )
            .execute(tx)
            .await?;
            if n != 1 {
                return Err(lost());
            }
            insert_issued!(tx, issued)
        })
        .await);
    won(result)
}

/// Records the access token of a grace answer (see `refresh.rs`): locks the unrevoked
/// grant `grant_id`, checks that the successor refresh token `successor_hash` is still
/// unrotated and unexpired, and stores `issued` (whose refresh token, the existing
/// successor, is not inserted again). `false`: the grant was revoked or the successor
/// already rotated or expired; nothing was written.
pub(crate) async fn record_grace(
    db: &Database,
    grant_id: &str,
    successor_hash: &str,
    now: i64,
    issued: &Issued,
) -> Result<bool, StorageError> {
    let mut conn = db.get().await?;
    let result = with_conn!(&mut conn, |c| c
        .transaction(async |tx| {
            let n = KeepPrepared(
                diesel::update(
                    grants::table
                        .filter(grants::id.eq(grant_id))
                        .filter(grants::revoked_at.is_null()),
                )
                .set(grants::updated_at.eq(now)),
            )
            .execute(tx)
            .await?;
            if n != 1 {
                return Err(lost());
            }
            let live: i64 = refresh_tokens::table
                .filter(refresh_tokens::token_hash.eq(successor_hash))
                .filter(refresh_tokens::grant_id.eq(grant_id))
                .filter(refresh_tokens::rotated_at.is_null())
                .filter(refresh_tokens::expires_at.gt(now))
                .count()
                .get_result(tx)
                .await?;
            if live != 1 {
                return Err(lost());
            }
            let access_only = Issued {
                access: issued.access.clone(),
                opaque: issued.opaque.clone(),
                refresh: None,
            };
            insert_issued!(tx, &access_only)
        })
        .await);
    won(result)
}

/// Revokes grant `$grant_id` inside the caller's transaction (a macro: the transaction's
/// connection type differs per backend), locking its row first: marks it revoked,
/// denylists its unexpired JWT access tokens until they expire, deletes its opaque ones.
/// Evaluates to `Ok(false)` when the grant was already revoked (nothing is written).
macro_rules! revoke_in {
    ($tx:expr, $grant_id:expr, $now:expr) => {{
        let grant_id: &str = $grant_id;
        let now: i64 = $now;
        let n = diesel::update(
            grants::table
                .filter(grants::id.eq(grant_id))
                .filter(grants::revoked_at.is_null()),
        )
        .set(grants::revoked_at.eq(Some(now)))
        .execute($tx)
        .await?;
        if n == 1 {
            let client_id: String = grants::table
                .find(grant_id)
                .select(grants::client_id)
                .first($tx)
                .await?;
            let issued: Vec<AccessRecord> = grant_access_tokens::table
                .filter(grant_access_tokens::grant_id.eq(grant_id))
                .filter(grant_access_tokens::expires_at.gt(now))
                .select(AccessRecord::as_select())
                .load($tx)
                .await?;
            let mut opaque = Vec::new();
            for record in &issued {
                match &record.opaque_hash {
                    Some(hash) => opaque.push(hash.as_str()),
                    None => {
                        diesel::insert_into(revoked_jtis::table)
                            .values((
                                revoked_jtis::jti.eq(&record.jti),
                                revoked_jtis::client_id.eq(&client_id),
                                revoked_jtis::expires_at.eq(record.expires_at),
                            ))
                            .on_conflict_do_nothing()
                            .execute($tx)
                            .await?;
                    }
                }
            }
            if !opaque.is_empty() {
                diesel::delete(
                    opaque_tokens::table.filter(opaque_tokens::token_hash.eq_any(&opaque)),
                )
                .execute($tx)
                .await?;
            }
        }
        Ok::<bool, diesel::result::Error>(n == 1)
    }};
}

/// Revokes grant `grant_id` with everything issued from it, in one transaction: the grant
/// is marked revoked (so none of its refresh tokens works again), its unexpired JWT access
/// tokens go on the denylist until they expire, its opaque access tokens are deleted.
/// Revoking a revoked grant changes nothing. Returns whether this call revoked it.
pub(crate) async fn revoke_grant(
    db: &Database,
    grant_id: &str,
    now: i64,
) -> Result<bool, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| c
        .transaction(async |tx| revoke_in!(tx, grant_id, now))
        .await)?)
}

/// What [`revoke_subject`] ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SubjectRevoked {
    /// Grants this call revoked.
    pub(crate) grants: usize,
    /// authz browser sessions this call deleted.
    pub(crate) sessions: usize,
}

/// Signs `subject` out everywhere at authz, in one transaction (all or nothing): every
/// unrevoked grant of the subject is revoked as by [`revoke_grant`] (grant rows locked in
/// id order, each before anything issued from it, as the module's lock order asks), the
/// subject's unredeemed authorization codes are deleted (so none issued before can still
/// become a grant), and its browser sessions are deleted. Consents are kept. Idempotent.
///
/// `event` (an admin's "sign this user out") is appended to the audit trail in the same
/// transaction.
pub(crate) async fn revoke_subject(
    db: &Database,
    subject: &str,
    now: i64,
    event: Option<&audit::AuditEvent>,
) -> Result<SubjectRevoked, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| c
        .transaction(async |tx| {
            let ids: Vec<String> = grants::table
                .filter(grants::subject.eq(subject))
                .filter(grants::revoked_at.is_null())
                .order(grants::id.asc())
                .select(grants::id)
                .load(tx)
                .await?;
            let mut revoked = SubjectRevoked::default();
            for id in &ids {
                if revoke_in!(tx, id, now)? {
                    revoked.grants += 1;
                }
            }
            diesel::delete(
                authorization_codes::table
                    .filter(authorization_codes::subject.eq(subject))
                    .filter(authorization_codes::redeemed_at.is_null()),
            )
            .execute(tx)
            .await?;
            revoked.sessions = diesel::delete(
                browser_sessions::table.filter(browser_sessions::subject.eq(subject)),
            )
            .execute(tx)
            .await?;
            if let Some(event) = event {
                audit::append(tx, event).await?;
            }
            Ok::<SubjectRevoked, diesel::result::Error>(revoked)
        })
        .await)?)
}

// consent management (browser)
/// A remembered consent: what `subject` granted `client_id` and asked to be remembered.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub(crate) struct ConsentRow {
    pub(crate) client_id: String,
    pub(crate) scope: String,
    pub(crate) updated_at: i64,
}

/// The remembered consents of `subject`, by client id.
pub(crate) async fn consents_of(
    db: &Database,
    subject: &str,
) -> Result<Vec<ConsentRow>, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| consents::table
        .filter(consents::subject.eq(subject))
        .order(consents::client_id.asc())
        .select((consents::client_id, consents::scope, consents::updated_at))
        .load(c)
        .await)?)
}

/// What [`revoke_consent`] ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ConsentRevoked {
    /// Whether a remembered consent was deleted.
    pub(crate) consent: bool,
    /// Grants this call revoked.
    pub(crate) grants: usize,
}

/// Withdraws what `subject` granted `client_id`, in one transaction (all or nothing):
/// every unrevoked grant of the pair is revoked as by [`revoke_grant`] (grant rows first,
/// in id order, as the module's lock order asks), its unredeemed authorization codes are
/// deleted, then the remembered consent, so the next authorization request of the client
/// asks the user again. Idempotent.
///
/// `event` (an admin's revocation) is appended to the audit trail in the same transaction
/// when something was revoked.
pub(crate) async fn revoke_consent(
    db: &Database,
    subject: &str,
    client_id: &str,
    now: i64,
    event: Option<&audit::AuditEvent>,
) -> Result<ConsentRevoked, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| c
        .transaction(async |tx| {
            let ids: Vec<String> = grants::table
                .filter(grants::subject.eq(subject))
                .filter(grants::client_id.eq(client_id))
                .filter(grants::revoked_at.is_null())
                .order(grants::id.asc())
                .select(grants::id)
                .load(tx)
                .await?;
            let mut revoked = ConsentRevoked::default();
            for id in &ids {
                if revoke_in!(tx, id, now)? {
                    revoked.grants += 1;
                }
            }
            diesel::delete(
                authorization_codes::table
                    .filter(authorization_codes::subject.eq(subject))
                    .filter(authorization_codes::client_id.eq(client_id))
                    .filter(authorization_codes::redeemed_at.is_null()),
            )
            .execute(tx)
            .await?;
            revoked.consent = diesel::delete(consents::table.find((subject, client_id)))
                .execute(tx)
                .await?
                == 1;
            if (revoked.consent || revoked.grants > 0)
                && let Some(event) = event
            {
                audit::append(tx, event).await?;
            }
            Ok::<ConsentRevoked, diesel::result::Error>(revoked)
        })
        .await)?)
}

/// The unrevoked grants bound to browser session `sid`, as `(id, scope)`.
pub(crate) async fn session_grants(
    db: &Database,
    sid: &str,
) -> Result<Vec<(String, String)>, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| grants::table
        .filter(grants::sid.eq(sid))
        .filter(grants::revoked_at.is_null())
        .select((grants::id, grants::scope))
        .load(c)
        .await)?)
}

/// Deletes grants past their expiry, with their refresh tokens, access token records and
/// redeemed codes (cascade).
pub(crate) async fn purge_expired(db: &Database, now: i64) -> Result<usize, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| diesel::delete(
        grants::table.filter(grants::expires_at.le(now))
    )
    .execute(c)
    .await)?)
}

// admin API (issue 18): a client's grants (Hydra's consent sessions per client, Keycloak's
// "Sessions"/"Consents" of a client), listed and revoked by an administrator.

/// A live grant as the admin API lists it.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub(crate) struct ClientGrantRow {
    /// The grant id.
    pub(crate) id: String,
    /// The user it was granted by.
    pub(crate) subject: String,
    /// The granted scopes, space-separated.
    pub(crate) scope: String,
    /// When it was created (Unix seconds).
    pub(crate) created_at: i64,
    /// When it was last refreshed.
    pub(crate) updated_at: i64,
    /// When it expires.
    pub(crate) expires_at: i64,
}

/// Up to `limit` live (unrevoked, unexpired at `now`) grants of `client_id`, in id order,
/// after id `after` (the cursor).
pub(crate) async fn client_grants(
    db: &Database,
    client_id: &str,
    after: Option<&str>,
    now: i64,
    limit: i64,
) -> Result<Vec<ClientGrantRow>, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| {
        let mut q = grants::table
            .filter(grants::client_id.eq(client_id))
            .filter(grants::revoked_at.is_null())
            .filter(grants::expires_at.gt(now))
            .into_boxed();
        if let Some(after) = after {
            q = q.filter(grants::id.gt(after.to_owned()));
        }
        q.order(grants::id.asc())
            .limit(limit)
            .select((
                grants::id,
                grants::subject,
                grants::scope,
                grants::created_at,
                grants::updated_at,
                grants::expires_at,
            ))
            .load(c)
            .await
    })?)
}

/// Revokes the live grants of `client_id` (only grant `only` when given), each as by
/// [`revoke_grant`] (grant rows in id order, as the module's lock order asks), with
/// `event` appended to the audit trail, in one transaction (all or nothing). Returns how
/// many this call revoked; when `only` names no live grant of the client, nothing is
/// written (nor the event) and the answer is 0.
pub(crate) async fn revoke_client_grants(
    db: &Database,
    client_id: &str,
    only: Option<&str>,
    now: i64,
    event: Option<&audit::AuditEvent>,
) -> Result<usize, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| c
        .transaction(async |tx| {
            let mut q = grants::table
                .filter(grants::client_id.eq(client_id))
                .filter(grants::revoked_at.is_null())
                .into_boxed();
            if let Some(only) = only {
                q = q.filter(grants::id.eq(only.to_owned()));
            }
            let ids: Vec<String> = q
                .order(grants::id.asc())
                .select(grants::id)
                .load(tx)
                .await?;
            let mut revoked = 0;
            for id in &ids {
                if revoke_in!(tx, id, now)? {
                    revoked += 1;
                }
            }
            if (only.is_none() || revoked > 0)
                && let Some(event) = event
            {
                audit::append(tx, event).await?;
            }
            Ok::<usize, diesel::result::Error>(revoked)
        })
        .await)?)
}
