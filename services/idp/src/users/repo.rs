//! Users in the idp database: one query path for SQLite and PostgreSQL.

use diesel::prelude::*;
use storage::diesel_async::{AsyncConnection, RunQueryDsl};
use storage::{Database, StorageError, with_conn};

use super::model::{Profile, User};
use crate::schema::{sessions, users};

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = users)]
#[diesel(treat_none_as_null = true)]
pub(crate) struct Row {
    pub(crate) id: String,
    pub(crate) username: String,
    pub(crate) email: Option<String>,
    pub(crate) email_verified: bool,
    pub(crate) name: Option<String>,
    pub(crate) given_name: Option<String>,
    pub(crate) family_name: Option<String>,
    pub(crate) picture: Option<String>,
    pub(crate) locale: Option<String>,
    pub(crate) password_hash: String,
    pub(crate) disabled: bool,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
}

impl Row {
    pub(crate) fn user(&self) -> User {
        User {
            id: self.id.clone(),
            username: self.username.clone(),
            profile: Profile {
                email: self.email.clone(),
                email_verified: self.email_verified,
                name: self.name.clone(),
                given_name: self.given_name.clone(),
                family_name: self.family_name.clone(),
                picture: self.picture.clone(),
                locale: self.locale.clone(),
            },
            disabled: self.disabled,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

pub(crate) async fn insert(db: &Database, row: &Row) -> Result<(), StorageError> {
    let mut conn = db.get().await?;
    with_conn!(&mut conn, |c| diesel::insert_into(users::table)
        .values(row)
        .execute(c)
        .await)?;
    Ok(())
}

/// In one transaction: with `reset`, deletes the user named `row.username` (its sessions go
/// with it: `ON DELETE CASCADE`); then inserts `row` unless a user with that username
/// exists. Returns the deleted user and whether `row` was inserted. An email that another
/// user has is a unique violation and rolls everything back.
pub(crate) async fn seed(
    db: &Database,
    row: &Row,
    reset: bool,
) -> Result<(Option<Row>, bool), StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| c
        .transaction(async |tx| {
            let mut deleted = None;
            if reset {
                let existing: Option<Row> = users::table
                    .filter(users::username.eq(&row.username))
                    .select(Row::as_select())
                    .first(tx)
                    .await
                    .optional()?;
                if let Some(existing) = existing {
                    diesel::delete(users::table.find(&existing.id))
                        .execute(tx)
                        .await?;
                    deleted = Some(existing);
                }
            }
            let n = diesel::insert_into(users::table)
                .values(row)
                .on_conflict(users::username)
                .do_nothing()
                .execute(tx)
                .await?;
            Ok::<_, diesel::result::Error>((deleted, n == 1))
        })
        .await)?)
}

/// By username (exact; usernames are stored lower-case).
pub(crate) async fn find_by_username(
    db: &Database,
    username: &str,
) -> Result<Option<Row>, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| users::table
        .filter(users::username.eq(username))
        .select(Row::as_select())
        .first(c)
        .await
        .optional())?)
}

/// By id (exact), or username or email (compared lower-case, as they are stored).
pub(crate) async fn find(db: &Database, key: &str) -> Result<Option<Row>, StorageError> {
    let key = key.trim();
    let lower = key.to_lowercase();
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| users::table
        .filter(
            users::id
                .eq(key)
                .or(users::username.eq(&lower))
                .or(users::email.eq(&lower))
        )
        .select(Row::as_select())
        .first(c)
        .await
        .optional())?)
}

/// By what a user types to sign in: username or email (compared lower-case).
pub(crate) async fn find_login(db: &Database, login: &str) -> Result<Option<Row>, StorageError> {
    let lower = login.trim().to_lowercase();
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| users::table
        .filter(users::username.eq(&lower).or(users::email.eq(&lower)))
        .select(Row::as_select())
        .first(c)
        .await
        .optional())?)
}

/// By id only (the OIDC `sub`).
pub(crate) async fn find_by_id(db: &Database, id: &str) -> Result<Option<Row>, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| users::table
        .find(id)
        .select(Row::as_select())
        .first(c)
        .await
        .optional())?)
}

pub(crate) async fn list(db: &Database) -> Result<Vec<Row>, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| users::table
        .order(users::username.asc())
        .select(Row::as_select())
        .load(c)
        .await)?)
}

pub(crate) async fn update(db: &Database, row: &Row) -> Result<usize, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| diesel::update(
        users::table.find(&row.id)
    )
    .set(row)
    .execute(c)
    .await)?)
}

/// Stores `row` and, when it is disabled, deletes every session of the user, in one
/// transaction: a disabled user has no session left (disabling ends them as deleting does).
/// Returns how many sessions were deleted.
pub(crate) async fn update_ending_sessions(
    db: &Database,
    row: &Row,
) -> Result<usize, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| c
        .transaction(async |tx| {
            diesel::update(users::table.find(&row.id))
                .set(row)
                .execute(tx)
                .await?;
            if !row.disabled {
                return Ok::<usize, diesel::result::Error>(0);
            }
            diesel::delete(sessions::table.filter(sessions::user_id.eq(&row.id)))
                .execute(tx)
                .await
        })
        .await)?)
}

pub(crate) async fn delete(db: &Database, id: &str) -> Result<usize, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| diesel::delete(
        users::table.find(id)
    )
    .execute(c)
    .await)?)
}

// audit trail (issue 18, idpadmin): admin writes that append their audit event in the
// same transaction, so a change and its record commit or roll back together.

/// [`insert`] with `event` appended in the same transaction.
pub(crate) async fn insert_audited(
    db: &Database,
    row: &Row,
    event: &audit::AuditEvent,
) -> Result<(), StorageError> {
    let mut conn = db.get().await?;
    with_conn!(&mut conn, |c| c
        .transaction(async |tx| {
            diesel::insert_into(users::table)
                .values(row)
                .execute(tx)
                .await?;
            audit::append(tx, event).await
        })
        .await)?;
    Ok(())
}

/// What else an audited update of a user does, in its transaction.
#[derive(Debug, Default)]
pub(crate) struct Also<'a> {
    /// Delete every session of the user.
    pub(crate) end_sessions: bool,
    /// Write only when the stored `updated_at` (the admin API's revision) is this.
    pub(crate) if_revision: Option<i64>,
    /// Queue this revocation at authz (the account page's durable outbox).
    pub(crate) revoke: Option<&'a crate::account::repo::OutboxRow>,
}

/// Stores `row` (which must exist: `NotFound` otherwise) with `event` appended, and does
/// what `also` says. One transaction; returns how many sessions were deleted, or `None`
/// (nothing written) when `also.if_revision` is set and the stored revision differs or the
/// user is gone.
pub(crate) async fn update_audited(
    db: &Database,
    row: &Row,
    also: &Also<'_>,
    event: &audit::AuditEvent,
) -> Result<Option<usize>, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| c
        .transaction(async |tx| {
            let n = match also.if_revision {
                Some(revision) => {
                    diesel::update(
                        users::table
                            .find(&row.id)
                            .filter(users::updated_at.eq(revision)),
                    )
                    .set(row)
                    .execute(tx)
                    .await?
                }
                None => {
                    diesel::update(users::table.find(&row.id))
                        .set(row)
                        .execute(tx)
                        .await?
                }
            };
            if n == 0 {
                return match also.if_revision {
                    Some(_) => Ok(None),
                    None => Err(diesel::result::Error::NotFound),
                };
            }
            let ended = if also.end_sessions {
                diesel::delete(sessions::table.filter(sessions::user_id.eq(&row.id)))
                    .execute(tx)
                    .await?
            } else {
                0
            };
            if let Some(revocation) = also.revoke {
                diesel::insert_into(crate::schema::revocation_outbox::table)
                    .values(revocation)
                    .execute(tx)
                    .await?;
            }
            audit::append(tx, event).await?;
            Ok::<Option<usize>, diesel::result::Error>(Some(ended))
        })
        .await)?)
}

// admin API (issue 18, idpadmin2)
/// Which users a page of the admin API's listing holds.
#[derive(Debug, Default)]
pub(crate) struct Filter {
    /// Only usernames after this one (the cursor).
    pub(crate) after: Option<String>,
    /// Only users whose username or email contains this (lower-case).
    pub(crate) contains: Option<String>,
    /// Only this username.
    pub(crate) username: Option<String>,
    /// Only this email.
    pub(crate) email: Option<String>,
    /// Only disabled (`true`) or enabled (`false`) users.
    pub(crate) disabled: Option<bool>,
}

/// Escapes `%`, `_` and `\` for a `LIKE … ESCAPE '\'` pattern.
fn like_escaped(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('%');
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// Up to `limit` users matching `filter`, by username.
pub(crate) async fn page(
    db: &Database,
    filter: &Filter,
    limit: i64,
) -> Result<Vec<Row>, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| {
        let mut q = users::table.select(Row::as_select()).into_boxed();
        if let Some(after) = &filter.after {
            q = q.filter(users::username.gt(after.clone()));
        }
        if let Some(contains) = &filter.contains {
            let pattern = like_escaped(contains);
            q = q.filter(
                users::username
                    .like(pattern.clone())
                    .escape('\\')
                    .or(users::email.like(pattern).escape('\\')),
            );
        }
        if let Some(username) = &filter.username {
            q = q.filter(users::username.eq(username.clone()));
        }
        if let Some(email) = &filter.email {
            q = q.filter(users::email.eq(email.clone()));
        }
        if let Some(disabled) = filter.disabled {
            q = q.filter(users::disabled.eq(disabled));
        }
        q.order(users::username.asc()).limit(limit).load(c).await
    })?)
}

/// Deletes the user `id` (its sessions go with it) with `event` appended, in one
/// transaction; `NotFound` when there is no such user.
pub(crate) async fn delete_audited(
    db: &Database,
    id: &str,
    event: &audit::AuditEvent,
) -> Result<(), StorageError> {
    let mut conn = db.get().await?;
    with_conn!(&mut conn, |c| c
        .transaction(async |tx| {
            let n = diesel::delete(users::table.find(id)).execute(tx).await?;
            if n == 0 {
                return Err(diesel::result::Error::NotFound);
            }
            audit::append(tx, event).await
        })
        .await)?;
    Ok(())
}

// upstream sign-in
/// By email (exact; emails are stored lower-case).
pub(crate) async fn find_by_email(db: &Database, email: &str) -> Result<Option<Row>, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| users::table
        .filter(users::email.eq(email))
        .select(Row::as_select())
        .first(c)
        .await
        .optional())?)
}
