//! The account page's tables (`retired_usernames`, `revocation_outbox`) and its queries on
//! users and sessions: one query path for SQLite and PostgreSQL, every multi-row change in
//! one transaction.

use diesel::prelude::*;
use storage::diesel_async::{AsyncConnection, RunQueryDsl};
use storage::{Database, StorageError, with_conn};

use crate::schema::{avatars, email_links, retired_usernames, revocation_outbox, sessions, users};

/// What [`change_username`] came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Renamed {
    /// The user now has the new name; the old one is held for them.
    Done,
    /// Another account has the name, has it as its email, or holds it after changing away.
    Taken,
}

/// Renames user `user_id` from `old` to `new` at `now`, in one transaction: refused when
/// another user has `new` as username or email or holds it (`held_until` ahead); else the
/// user's hold on `new` (a name they had before) ends, `old` is held for the user until
/// `hold_until`, and the username changes. A concurrent rename to the same name loses on
/// the unique index (a unique violation the caller maps to "taken").
pub(crate) async fn change_username(
    db: &Database,
    user_id: &str,
    old: &str,
    new: &str,
    now: i64,
    hold_until: i64,
) -> Result<Renamed, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| c
        .transaction(async |tx| {
            let clash: i64 = users::table
                .filter(users::id.ne(user_id))
                .filter(users::username.eq(new).or(users::email.eq(new)))
                .count()
                .get_result(tx)
                .await?;
            let held: i64 = retired_usernames::table
                .filter(retired_usernames::username.eq(new))
                .filter(retired_usernames::user_id.ne(user_id))
                .filter(retired_usernames::held_until.gt(now))
                .count()
                .get_result(tx)
                .await?;
            if clash > 0 || held > 0 {
                return Ok::<_, diesel::result::Error>(Renamed::Taken);
            }
            diesel::delete(
                retired_usernames::table.filter(
                    retired_usernames::username
                        .eq(new)
                        .or(retired_usernames::username.eq(old)),
                ),
            )
            .execute(tx)
            .await?;
            if hold_until > now {
                diesel::insert_into(retired_usernames::table)
                    .values((
                        retired_usernames::username.eq(old),
                        retired_usernames::user_id.eq(user_id),
                        retired_usernames::held_until.eq(hold_until),
                    ))
                    .execute(tx)
                    .await?;
            }
            diesel::update(users::table.find(user_id))
                .set((users::username.eq(new), users::updated_at.eq(now)))
                .execute(tx)
                .await?;
            Ok(Renamed::Done)
        })
        .await)?)
}

/// Whether `username` is held at `now` for an account other than `except`.
pub(crate) async fn username_held(
    db: &Database,
    username: &str,
    except: Option<&str>,
    now: i64,
) -> Result<bool, StorageError> {
    let mut conn = db.get().await?;
    let holders: Vec<String> = with_conn!(&mut conn, |c| retired_usernames::table
        .filter(retired_usernames::username.eq(username))
        .filter(retired_usernames::held_until.gt(now))
        .select(retired_usernames::user_id)
        .load(c)
        .await)?;
    Ok(holders.iter().any(|h| Some(h.as_str()) != except))
}

/// Deletes holds that ended before `now`.
pub(crate) async fn purge_holds(db: &Database, now: i64) -> Result<usize, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| diesel::delete(
        retired_usernames::table.filter(retired_usernames::held_until.le(now))
    )
    .execute(c)
    .await)?)
}

/// One session as the account page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub(crate) struct SessionRow {
    pub(crate) id: String,
    pub(crate) auth_time: i64,
    pub(crate) amr: String,
    pub(crate) created_at: i64,
    pub(crate) last_seen_at: i64,
}

/// The sessions of `user_id` alive at `now`, most recently used first.
pub(crate) async fn sessions_of(
    db: &Database,
    user_id: &str,
    now: i64,
    idle_cutoff: i64,
) -> Result<Vec<SessionRow>, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::expires_at.gt(now))
        .filter(sessions::last_seen_at.gt(idle_cutoff))
        .order((sessions::last_seen_at.desc(), sessions::id.asc()))
        .select((
            sessions::id,
            sessions::auth_time,
            sessions::amr,
            sessions::created_at,
            sessions::last_seen_at,
        ))
        .load(c)
        .await)?)
}

/// Deletes every session of `user_id` except `keep`, in one transaction; returns the ids
/// of the ended ones (authz is told about each).
pub(crate) async fn end_other_sessions(
    db: &Database,
    user_id: &str,
    keep: &str,
) -> Result<Vec<String>, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| c
        .transaction(async |tx| {
            let ids: Vec<String> = sessions::table
                .filter(sessions::user_id.eq(user_id))
                .filter(sessions::id.ne(keep))
                .select(sessions::id)
                .load(tx)
                .await?;
            diesel::delete(sessions::table.filter(sessions::id.eq_any(&ids)))
                .execute(tx)
                .await?;
            Ok::<_, diesel::result::Error>(ids)
        })
        .await)?)
}

/// Stores a new password hash and ends every other session of the user, in one
/// transaction; returns the ids of the ended sessions.
pub(crate) async fn set_password_ending_others(
    db: &Database,
    user_id: &str,
    password_hash: &str,
    keep: &str,
    now: i64,
) -> Result<Vec<String>, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| c
        .transaction(async |tx| {
            diesel::update(users::table.find(user_id))
                .set((
                    users::password_hash.eq(password_hash),
                    users::updated_at.eq(now),
                ))
                .execute(tx)
                .await?;
            let ids: Vec<String> = sessions::table
                .filter(sessions::user_id.eq(user_id))
                .filter(sessions::id.ne(keep))
                .select(sessions::id)
                .load(tx)
                .await?;
            diesel::delete(sessions::table.filter(sessions::id.eq_any(&ids)))
                .execute(tx)
                .await?;
            Ok::<_, diesel::result::Error>(ids)
        })
        .await)?)
}

/// A revocation authz still has to perform.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = revocation_outbox)]
pub(crate) struct OutboxRow {
    pub(crate) id: String,
    pub(crate) subject: String,
    /// `None`: every grant of the subject (`RevokeSubject`).
    pub(crate) client_id: Option<String>,
    pub(crate) attempts: i64,
    pub(crate) next_attempt_at: i64,
    pub(crate) last_error: Option<String>,
    pub(crate) created_at: i64,
}

/// Deletes user `user_id` (its sessions, device cookies and avatar go with it: `ON DELETE
/// CASCADE`) and queues `revocation` in the same transaction, so the user never
/// disappears without authz being told. Returns whether the user existed.
/// With `event`, the deletion's audit event is appended in the same transaction too.
pub(crate) async fn delete_user_queueing(
    db: &Database,
    user_id: &str,
    revocation: &OutboxRow,
    event: Option<&audit::AuditEvent>,
) -> Result<bool, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| c
        .transaction(async |tx| {
            let n = diesel::delete(users::table.find(user_id))
                .execute(tx)
                .await?;
            if n == 1 {
                diesel::insert_into(revocation_outbox::table)
                    .values(revocation)
                    .execute(tx)
                    .await?;
                if let Some(event) = event {
                    audit::append(tx, event).await?;
                }
            }
            Ok::<_, diesel::result::Error>(n == 1)
        })
        .await)?)
}

/// Revocations due at `now`, oldest first, at most `limit`.
pub(crate) async fn due(
    db: &Database,
    now: i64,
    limit: i64,
) -> Result<Vec<OutboxRow>, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| revocation_outbox::table
        .filter(revocation_outbox::next_attempt_at.le(now))
        .order((
            revocation_outbox::next_attempt_at.asc(),
            revocation_outbox::id.asc()
        ))
        .limit(limit)
        .select(OutboxRow::as_select())
        .load(c)
        .await)?)
}

/// authz performed revocation `id`: it leaves the outbox.
pub(crate) async fn delivered(db: &Database, id: &str) -> Result<(), StorageError> {
    let mut conn = db.get().await?;
    with_conn!(&mut conn, |c| diesel::delete(
        revocation_outbox::table.find(id)
    )
    .execute(c)
    .await)?;
    Ok(())
}

/// Revocation `id` failed once more: try again at `next_attempt_at`.
pub(crate) async fn postponed(
    db: &Database,
    id: &str,
    attempts: i64,
    next_attempt_at: i64,
    error: &str,
) -> Result<(), StorageError> {
    let mut conn = db.get().await?;
    with_conn!(&mut conn, |c| diesel::update(
        revocation_outbox::table.find(id)
    )
    .set((
        revocation_outbox::attempts.eq(attempts),
        revocation_outbox::next_attempt_at.eq(next_attempt_at),
        revocation_outbox::last_error.eq(error),
    ))
    .execute(c)
    .await)?;
    Ok(())
}

/// Revocations not yet delivered.
pub(crate) async fn pending(db: &Database) -> Result<i64, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| revocation_outbox::table
        .count()
        .get_result(c)
        .await)?)
}

// account page: email change
/// What using an email change link came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EmailChange {
    /// The link was not live (unknown, altered, used or expired).
    NoLink,
    /// Another account has the address by now; the link is used up, nothing else changed.
    Taken,
    /// The user (this id) now has the address, verified.
    Changed(String),
}

/// Whether an account other than `user_id` has `email`.
pub(crate) async fn email_taken(
    db: &Database,
    user_id: &str,
    email: &str,
) -> Result<bool, StorageError> {
    let mut conn = db.get().await?;
    let n: i64 = with_conn!(&mut conn, |c| users::table
        .filter(users::id.ne(user_id))
        .filter(users::email.eq(email).or(users::username.eq(email)))
        .count()
        .get_result(c)
        .await)?;
    Ok(n > 0)
}

/// Uses an email change link, in one transaction: the live link of `token_hash` is
/// deleted (so it works once however many requests race), then, unless another account
/// has the address by now, its user gets the address as verified email and a new
/// `updated_at`.
pub(crate) async fn use_email_change_link(
    db: &Database,
    token_hash: &str,
    now: i64,
) -> Result<EmailChange, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| c
        .transaction(async |tx| {
            let link: Option<(Option<String>, String)> = email_links::table
                .find(token_hash)
                .filter(email_links::purpose.eq(crate::links::PURPOSE_EMAIL_CHANGE))
                .filter(email_links::expires_at.gt(now))
                .select((email_links::user_id, email_links::email))
                .first(tx)
                .await
                .optional()?;
            let Some((Some(user_id), email)) = link else {
                return Ok::<_, diesel::result::Error>(EmailChange::NoLink);
            };
            if diesel::delete(email_links::table.find(token_hash))
                .execute(tx)
                .await?
                != 1
            {
                return Ok(EmailChange::NoLink);
            }
            let taken: i64 = users::table
                .filter(users::id.ne(&user_id))
                .filter(users::email.eq(&email).or(users::username.eq(&email)))
                .count()
                .get_result(tx)
                .await?;
            if taken > 0 {
                return Ok(EmailChange::Taken);
            }
            let n = diesel::update(users::table.find(&user_id))
                .set((
                    users::email.eq(&email),
                    users::email_verified.eq(true),
                    users::updated_at.eq(now),
                ))
                .execute(tx)
                .await?;
            Ok(if n == 1 {
                EmailChange::Changed(user_id)
            } else {
                EmailChange::NoLink
            })
        })
        .await)?)
}

// account page: avatars
/// Stores `png` as the picture of `user_id` (replacing any) and points the user's
/// `picture` claim at `url`, in one transaction.
pub(crate) async fn store_avatar(
    db: &Database,
    user_id: &str,
    png: &[u8],
    etag: &str,
    url: &str,
    now: i64,
) -> Result<(), StorageError> {
    let mut conn = db.get().await?;
    with_conn!(&mut conn, |c| c
        .transaction(async |tx| {
            diesel::delete(avatars::table.find(user_id))
                .execute(tx)
                .await?;
            diesel::insert_into(avatars::table)
                .values((
                    avatars::user_id.eq(user_id),
                    avatars::png.eq(png),
                    avatars::etag.eq(etag),
                    avatars::updated_at.eq(now),
                ))
                .execute(tx)
                .await?;
            diesel::update(users::table.find(user_id))
                .set((users::picture.eq(url), users::updated_at.eq(now)))
                .execute(tx)
                .await?;
            Ok::<_, diesel::result::Error>(())
        })
        .await)?;
    Ok(())
}

/// Deletes the picture of `user_id` and its `picture` claim, in one transaction.
pub(crate) async fn remove_avatar(
    db: &Database,
    user_id: &str,
    now: i64,
) -> Result<(), StorageError> {
    let mut conn = db.get().await?;
    with_conn!(&mut conn, |c| c
        .transaction(async |tx| {
            diesel::delete(avatars::table.find(user_id))
                .execute(tx)
                .await?;
            diesel::update(users::table.find(user_id))
                .set((users::picture.eq(None::<String>), users::updated_at.eq(now)))
                .execute(tx)
                .await?;
            Ok::<_, diesel::result::Error>(())
        })
        .await)?;
    Ok(())
}

/// The picture of `user_id` and its tag.
pub(crate) async fn avatar(
    db: &Database,
    user_id: &str,
) -> Result<Option<(Vec<u8>, String)>, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| avatars::table
        .find(user_id)
        .select((avatars::png, avatars::etag))
        .first(c)
        .await
        .optional())?)
}
