//! Email links and rate counters in the idp database: one query path for SQLite and
//! PostgreSQL. Using a link deletes it in the same transaction as what it does.

use diesel::prelude::*;
use storage::diesel_async::{AsyncConnection, RunQueryDsl};
use storage::{Database, StorageError, with_conn};

use crate::schema::{email_links, email_rate, sessions, users};
use crate::users::repo::Row as UserRow;

/// A link as stored (its token only as a hex SHA-256).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = email_links)]
pub(crate) struct LinkRow {
    pub(crate) token_hash: String,
    pub(crate) purpose: String,
    pub(crate) user_id: Option<String>,
    pub(crate) email: String,
    pub(crate) payload: Option<String>,
    pub(crate) created_at: i64,
    pub(crate) expires_at: i64,
}

/// Stores `row`; with `replace_user_links`, first deletes the other links of the same
/// purpose and user (only the newest reset link works), in one transaction.
pub(crate) async fn insert(
    db: &Database,
    row: &LinkRow,
    replace_user_links: bool,
) -> Result<(), StorageError> {
    let mut conn = db.get().await?;
    with_conn!(&mut conn, |c| c
        .transaction(async |tx| {
            if replace_user_links && let Some(user) = &row.user_id {
                diesel::delete(
                    email_links::table
                        .filter(email_links::purpose.eq(&row.purpose))
                        .filter(email_links::user_id.eq(user)),
                )
                .execute(tx)
                .await?;
            }
            diesel::insert_into(email_links::table)
                .values(row)
                .execute(tx)
                .await?;
            Ok::<_, diesel::result::Error>(())
        })
        .await)?;
    Ok(())
}

/// The live link of `purpose` with this token hash (not expired at `now`).
pub(crate) async fn find(
    db: &Database,
    purpose: &str,
    token_hash: &str,
    now: i64,
) -> Result<Option<LinkRow>, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| email_links::table
        .find(token_hash)
        .filter(email_links::purpose.eq(purpose))
        .filter(email_links::expires_at.gt(now))
        .select(LinkRow::as_select())
        .first(c)
        .await
        .optional())?)
}

/// Uses a password reset link: in one transaction deletes the live link of `token_hash`
/// (nothing else happens when there is none: unknown, used or expired), stores
/// `password_hash` for its user, deletes every session of that user and every other reset
/// link of the user. Returns the user as it is now, or `None` when the link was not live.
pub(crate) async fn use_reset_link(
    db: &Database,
    token_hash: &str,
    now: i64,
    password_hash: &str,
) -> Result<Option<(UserRow, usize)>, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| c
        .transaction(async |tx| {
            let link: Option<LinkRow> = email_links::table
                .find(token_hash)
                .filter(email_links::purpose.eq(super::PURPOSE_RESET))
                .filter(email_links::expires_at.gt(now))
                .select(LinkRow::as_select())
                .first(tx)
                .await
                .optional()?;
            let Some(user_id) = link.and_then(|l| l.user_id) else {
                return Ok::<_, diesel::result::Error>(None);
            };
            let deleted = diesel::delete(email_links::table.find(token_hash))
                .execute(tx)
                .await?;
            if deleted != 1 {
                return Ok(None);
            }
            diesel::update(users::table.find(&user_id))
                .set((
                    users::password_hash.eq(password_hash),
                    users::updated_at.eq(now),
                ))
                .execute(tx)
                .await?;
            let ended = diesel::delete(sessions::table.filter(sessions::user_id.eq(&user_id)))
                .execute(tx)
                .await?;
            diesel::delete(
                email_links::table
                    .filter(email_links::purpose.eq(super::PURPOSE_RESET))
                    .filter(email_links::user_id.eq(&user_id)),
            )
            .execute(tx)
            .await?;
            let user: UserRow = users::table
                .find(&user_id)
                .select(UserRow::as_select())
                .first(tx)
                .await?;
            Ok(Some((user, ended)))
        })
        .await)?)
}

/// What using a sign-up link came to.
pub(crate) enum SignupUse {
    /// The link was not live (unknown, used, expired).
    NoLink,
    /// The username or email was taken since the link was sent; nothing changed, the link
    /// is gone.
    Taken,
    /// The user was created.
    Created(UserRow),
}

/// Uses a sign-up link: in one transaction deletes the live link and inserts `make(link)`,
/// the new user. A username or email taken in the meantime deletes the link only.
pub(crate) async fn use_signup_link(
    db: &Database,
    token_hash: &str,
    now: i64,
    make: &(dyn Fn(&LinkRow) -> Option<UserRow> + Sync),
) -> Result<SignupUse, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| c
        .transaction(async |tx| {
            let link: Option<LinkRow> = email_links::table
                .find(token_hash)
                .filter(email_links::purpose.eq(super::PURPOSE_SIGNUP))
                .filter(email_links::expires_at.gt(now))
                .select(LinkRow::as_select())
                .first(tx)
                .await
                .optional()?;
            let Some(link) = link else {
                return Ok::<_, diesel::result::Error>(SignupUse::NoLink);
            };
            let deleted = diesel::delete(email_links::table.find(token_hash))
                .execute(tx)
                .await?;
            let Some(row) = make(&link).filter(|_| deleted == 1) else {
                return Ok(SignupUse::NoLink);
            };
            let taken: i64 = users::table
                .filter(
                    users::username
                        .eq(&row.username)
                        .or(users::email.eq(&link.email)),
                )
                .count()
                .get_result(tx)
                .await?;
            if taken > 0 {
                return Ok(SignupUse::Taken);
            }
            diesel::insert_into(users::table)
                .values(&row)
                .execute(tx)
                .await?;
            Ok(SignupUse::Created(row))
        })
        .await)?)
}

/// Whether an account has `username`.
pub(crate) async fn username_taken(db: &Database, username: &str) -> Result<bool, StorageError> {
    let mut conn = db.get().await?;
    let n: i64 = with_conn!(&mut conn, |c| users::table
        .filter(users::username.eq(username))
        .count()
        .get_result(c)
        .await)?;
    Ok(n > 0)
}

/// Whether a live sign-up link holds `username` (pending sign-ups reserve their name).
pub(crate) async fn signup_pending(
    db: &Database,
    username_payload_prefix: &str,
    now: i64,
) -> Result<bool, StorageError> {
    let mut conn = db.get().await?;
    let n: i64 = with_conn!(&mut conn, |c| email_links::table
        .filter(email_links::purpose.eq(super::PURPOSE_SIGNUP))
        .filter(email_links::expires_at.gt(now))
        .filter(
            email_links::payload
                .like(format!("{}%", escape_like(username_payload_prefix)))
                .escape('\\')
        )
        .count()
        .get_result(c)
        .await)?;
    Ok(n > 0)
}

/// `s` with LIKE's wildcards and escape character escaped by `\`.
fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

/// Deletes links that expired at or before `now`; returns how many.
pub(crate) async fn purge(db: &Database, now: i64) -> Result<usize, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| diesel::delete(
        email_links::table.filter(email_links::expires_at.le(now))
    )
    .execute(c)
    .await)?)
}

/// Counts one request against each key (fixed windows of `window` seconds starting at a
/// key's first request), in one transaction; returns each key's count and window start.
pub(crate) async fn count_requests(
    db: &Database,
    keys: &[String],
    now: i64,
    window: i64,
) -> Result<Vec<(i64, i64)>, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| c
        .transaction(async |tx| {
            let mut out = Vec::with_capacity(keys.len());
            for key in keys {
                diesel::delete(
                    email_rate::table
                        .find(key)
                        .filter(email_rate::window_start.le(now - window)),
                )
                .execute(tx)
                .await?;
                diesel::insert_into(email_rate::table)
                    .values((
                        email_rate::id.eq(key),
                        email_rate::window_start.eq(now),
                        email_rate::count.eq(1_i64),
                    ))
                    .on_conflict(email_rate::id)
                    .do_update()
                    .set(email_rate::count.eq(email_rate::count + 1_i64))
                    .execute(tx)
                    .await?;
                let row: (i64, i64) = email_rate::table
                    .find(key)
                    .select((email_rate::count, email_rate::window_start))
                    .first(tx)
                    .await?;
                out.push(row);
            }
            Ok::<_, diesel::result::Error>(out)
        })
        .await)?)
}

/// Deletes rate counters whose window ended at or before `now`.
pub(crate) async fn purge_rates(db: &Database, before: i64) -> Result<usize, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| diesel::delete(
        email_rate::table.filter(email_rate::window_start.le(before))
    )
    .execute(c)
    .await)?)
}
