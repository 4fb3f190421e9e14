//! Pending authorization requests, browser sessions, remembered consent and authorization
//! codes in the authz database. Every state change that must happen once (answering a
//! challenge, finishing a request) is a conditional UPDATE or DELETE whose row count says
//! whether this caller won; multi-row changes run in one transaction whose first statement
//! writes, so SQLite takes its write lock up front and PostgreSQL locks the row.

use diesel::prelude::*;
use storage::KeepPrepared;
use storage::diesel_async::{AsyncConnection, RunQueryDsl};
use storage::{Database, StorageError, with_conn};

use crate::schema::{authorization_codes, authorization_requests, browser_sessions, consents};

/// Stages of a pending request.
pub(crate) mod stage {
    /// Waiting for idp to answer the login challenge.
    pub(crate) const LOGIN: &str = "login";
    /// idp accepted the login; the browser has not come back yet.
    pub(crate) const LOGIN_ACCEPTED: &str = "login_accepted";
    /// Waiting for idp to answer the consent challenge.
    pub(crate) const CONSENT: &str = "consent";
    /// idp accepted the consent; the browser has not come back yet.
    pub(crate) const CONSENT_ACCEPTED: &str = "consent_accepted";
    /// idp rejected the login or consent; the client gets the error.
    pub(crate) const REJECTED: &str = "rejected";
}

/// The validated parameters of a pending request (the `request` JSON column).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct StoredRequest {
    pub(crate) redirect_uri: String,
    pub(crate) response_mode: String,
    pub(crate) state: Option<String>,
    pub(crate) nonce: Option<String>,
    pub(crate) scope: String,
    pub(crate) code_challenge: String,
    pub(crate) prompt: String,
    pub(crate) max_age: Option<i64>,
    pub(crate) login_hint: String,
    pub(crate) ui_locales: String,
    pub(crate) acr_values: String,
    pub(crate) subject_hint: String,
}

/// Who logged in for a pending request (the `login` JSON column): what idp reported in
/// `AcceptLogin`, plus the authz session (`sid`) once the browser is back.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct StoredLogin {
    pub(crate) subject: String,
    pub(crate) idp_session_id: String,
    pub(crate) auth_time: i64,
    pub(crate) amr: String,
    pub(crate) acr: String,
    pub(crate) sid: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = authorization_requests)]
struct RequestRow {
    id: String,
    browser_hash: String,
    stage: String,
    challenge_hash: Option<String>,
    client_id: String,
    request: String,
    login: Option<String>,
    granted_scope: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    created_at: i64,
    expires_at: i64,
}

/// A pending authorization request.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub(crate) id: String,
    /// Digest of the flow cookie.
    pub(crate) browser_hash: String,
    pub(crate) stage: String,
    /// Digest of the outstanding challenge (only when a new request is stored).
    pub(crate) challenge_hash: Option<String>,
    pub(crate) client_id: String,
    pub(crate) request: StoredRequest,
    pub(crate) login: Option<StoredLogin>,
    pub(crate) granted_scope: Option<String>,
    pub(crate) error: Option<String>,
    pub(crate) error_description: Option<String>,
    pub(crate) created_at: i64,
    pub(crate) expires_at: i64,
}

fn corrupt(e: serde_json::Error) -> StorageError {
    StorageError::Query(diesel::result::Error::DeserializationError(Box::new(e)))
}

fn json<T: serde::Serialize>(value: &T) -> Result<String, StorageError> {
    serde_json::to_string(value).map_err(corrupt)
}

impl RequestRow {
    fn into_pending(self) -> Result<Pending, StorageError> {
        Ok(Pending {
            request: serde_json::from_str(&self.request).map_err(corrupt)?,
            login: self
                .login
                .as_deref()
                .map(serde_json::from_str)
                .transpose()
                .map_err(corrupt)?,
            id: self.id,
            browser_hash: self.browser_hash,
            stage: self.stage,
            challenge_hash: self.challenge_hash,
            client_id: self.client_id,
            granted_scope: self.granted_scope,
            error: self.error,
            error_description: self.error_description,
            created_at: self.created_at,
            expires_at: self.expires_at,
        })
    }

    fn from_pending(p: &Pending) -> Result<Self, StorageError> {
        Ok(Self {
            id: p.id.clone(),
            browser_hash: p.browser_hash.clone(),
            stage: p.stage.clone(),
            challenge_hash: p.challenge_hash.clone(),
            client_id: p.client_id.clone(),
            request: json(&p.request)?,
            login: p.login.as_ref().map(json).transpose()?,
            granted_scope: p.granted_scope.clone(),
            error: p.error.clone(),
            error_description: p.error_description.clone(),
            created_at: p.created_at,
            expires_at: p.expires_at,
        })
    }
}

/// An authz browser session.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = browser_sessions)]
pub(crate) struct SessionRow {
    pub(crate) session_key: String,
    pub(crate) sid: String,
    pub(crate) subject: String,
    pub(crate) idp_session_id: String,
    pub(crate) auth_time: i64,
    pub(crate) amr: String,
    pub(crate) acr: String,
    pub(crate) created_at: i64,
    pub(crate) expires_at: i64,
}

/// An authorization code (by digest).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = authorization_codes)]
pub(crate) struct CodeRow {
    pub(crate) code_hash: String,
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) code_challenge: String,
    pub(crate) nonce: Option<String>,
    pub(crate) scope: String,
    pub(crate) subject: String,
    pub(crate) sid: String,
    pub(crate) auth_time: i64,
    pub(crate) amr: String,
    pub(crate) acr: String,
    pub(crate) issued_at: i64,
    pub(crate) expires_at: i64,
    pub(crate) redeemed_at: Option<i64>,
    pub(crate) grant_id: Option<String>,
}

/// Stores a new pending request.
pub(crate) async fn insert_request(db: &Database, pending: &Pending) -> Result<(), StorageError> {
    let row = RequestRow::from_pending(pending)?;
    let row = &row;
    let mut conn = db.get().await?;
    with_conn!(&mut conn, |c| diesel::insert_into(
        authorization_requests::table
    )
    .values(row)
    .execute(c)
    .await)?;
    Ok(())
}

/// How many pending requests are unexpired at `now`.
pub(crate) async fn count_pending(db: &Database, now: i64) -> Result<i64, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| authorization_requests::table
        .filter(authorization_requests::expires_at.gt(now))
        .count()
        .get_result(c)
        .await)?)
}

/// The unexpired request whose outstanding challenge has digest `hash` and is at `stage`.
pub(crate) async fn request_by_challenge(
    db: &Database,
    hash: &str,
    stage: &str,
    now: i64,
) -> Result<Option<Pending>, StorageError> {
    let mut conn = db.get().await?;
    let row: Option<RequestRow> = with_conn!(&mut conn, |c| authorization_requests::table
        .filter(authorization_requests::challenge_hash.eq(hash))
        .filter(authorization_requests::stage.eq(stage))
        .filter(authorization_requests::expires_at.gt(now))
        .select(RequestRow::as_select())
        .first(c)
        .await
        .optional())?;
    row.map(RequestRow::into_pending).transpose()
}

/// Sets the expiry of request `id` to `expires_at` (never shortening it).
pub(crate) async fn extend_request(
    db: &Database,
    id: &str,
    expires_at: i64,
) -> Result<(), StorageError> {
    let mut conn = db.get().await?;
    with_conn!(&mut conn, |c| KeepPrepared(
        diesel::update(
            authorization_requests::table
                .filter(authorization_requests::id.eq(id))
                .filter(authorization_requests::expires_at.lt(expires_at))
        )
        .set(authorization_requests::expires_at.eq(expires_at))
    )
    .execute(c)
    .await)?;
    Ok(())
}

/// A request by id, whatever its stage or expiry.
pub(crate) async fn request_by_id(
    db: &Database,
    id: &str,
) -> Result<Option<Pending>, StorageError> {
    let mut conn = db.get().await?;
    let row: Option<RequestRow> = with_conn!(&mut conn, |c| authorization_requests::table
        .find(id)
        .select(RequestRow::as_select())
        .first(c)
        .await
        .optional())?;
    row.map(RequestRow::into_pending).transpose()
}

/// Answers the login challenge `hash` with an accepted login, once: `false` when the
/// challenge is unknown, expired or already answered.
pub(crate) async fn accept_login(
    db: &Database,
    hash: &str,
    now: i64,
    login: &StoredLogin,
) -> Result<bool, StorageError> {
    let login = json(login)?;
    let mut conn = db.get().await?;
    let n = with_conn!(&mut conn, |c| KeepPrepared(
        diesel::update(
            authorization_requests::table
                .filter(authorization_requests::challenge_hash.eq(hash))
                .filter(authorization_requests::stage.eq(stage::LOGIN))
                .filter(authorization_requests::expires_at.gt(now))
        )
        .set((
            authorization_requests::stage.eq(stage::LOGIN_ACCEPTED),
            authorization_requests::challenge_hash.eq(None::<String>),
            authorization_requests::login.eq(Some(&login)),
        ))
    )
    .execute(c)
    .await)?;
    Ok(n == 1)
}

/// Answers the challenge `hash` (at `stage`) with an error for the client, once.
pub(crate) async fn reject(
    db: &Database,
    hash: &str,
    from_stage: &str,
    now: i64,
    error: &str,
    description: &str,
) -> Result<bool, StorageError> {
    let mut conn = db.get().await?;
    let n = with_conn!(&mut conn, |c| diesel::update(
        authorization_requests::table
            .filter(authorization_requests::challenge_hash.eq(hash))
            .filter(authorization_requests::stage.eq(from_stage))
            .filter(authorization_requests::expires_at.gt(now))
    )
    .set((
        authorization_requests::stage.eq(stage::REJECTED),
        authorization_requests::challenge_hash.eq(None::<String>),
        authorization_requests::error.eq(Some(error)),
        authorization_requests::error_description.eq(Some(description)),
    ))
    .execute(c)
    .await)?;
    Ok(n == 1)
}

/// Answers the consent challenge `hash` with the granted scopes, once, and (in the same
/// transaction) remembers them for `(subject, client_id)` merged with what was granted
/// before, when `remember` is set.
pub(crate) async fn accept_consent(
    db: &Database,
    hash: &str,
    now: i64,
    granted: &domain::ScopeSet,
    remember: Option<(&str, &str)>,
) -> Result<bool, StorageError> {
    let granted_text = granted.to_string();
    let mut conn = db.get().await?;
    let outcome = with_conn!(&mut conn, |c| c
        .transaction(async |tx| {
            let n = diesel::update(
                authorization_requests::table
                    .filter(authorization_requests::challenge_hash.eq(hash))
                    .filter(authorization_requests::stage.eq(stage::CONSENT))
                    .filter(authorization_requests::expires_at.gt(now)),
            )
            .set((
                authorization_requests::stage.eq(stage::CONSENT_ACCEPTED),
                authorization_requests::challenge_hash.eq(None::<String>),
                authorization_requests::granted_scope.eq(Some(granted_text.as_str())),
            ))
            .execute(tx)
            .await?;
            if n != 1 {
                return Ok(false);
            }
            if let Some((subject, client_id)) = remember {
                let before: Option<String> = consents::table
                    .find((subject, client_id))
                    .select(consents::scope)
                    .first(tx)
                    .await
                    .optional()?;
                let merged = merge_scopes(before.as_deref(), granted);
                diesel::insert_into(consents::table)
                    .values((
                        consents::subject.eq(subject),
                        consents::client_id.eq(client_id),
                        consents::scope.eq(&merged),
                        consents::updated_at.eq(now),
                    ))
                    .on_conflict((consents::subject, consents::client_id))
                    .do_update()
                    .set((consents::scope.eq(&merged), consents::updated_at.eq(now)))
                    .execute(tx)
                    .await?;
            }
            Ok::<_, diesel::result::Error>(true)
        })
        .await)?;
    Ok(outcome)
}

fn merge_scopes(before: Option<&str>, granted: &domain::ScopeSet) -> String {
    let mut all: Vec<&str> = before
        .unwrap_or_default()
        .split(' ')
        .filter(|s| !s.is_empty())
        .chain(granted.iter())
        .collect();
    all.sort_unstable();
    all.dedup();
    all.join(" ")
}

/// Moves a request whose login was accepted to the consent stage with a new challenge,
/// once, recording the login with the authz session it now belongs to.
pub(crate) async fn to_consent(
    db: &Database,
    id: &str,
    now: i64,
    challenge_hash: &str,
    login: &StoredLogin,
) -> Result<bool, StorageError> {
    let login = json(login)?;
    let mut conn = db.get().await?;
    let n = with_conn!(&mut conn, |c| KeepPrepared(
        diesel::update(
            authorization_requests::table
                .filter(authorization_requests::id.eq(id))
                .filter(authorization_requests::stage.eq(stage::LOGIN_ACCEPTED))
                .filter(authorization_requests::expires_at.gt(now))
        )
        .set((
            authorization_requests::stage.eq(stage::CONSENT),
            authorization_requests::challenge_hash.eq(Some(challenge_hash)),
            authorization_requests::login.eq(Some(&login)),
        ))
    )
    .execute(c)
    .await)?;
    Ok(n == 1)
}

/// Ends a request at `from_stage`, once: deletes it and, when `code` is given, stores the
/// code in the same transaction. `false` when another caller finished it first.
pub(crate) async fn finish(
    db: &Database,
    id: &str,
    from_stage: &str,
    code: Option<&CodeRow>,
) -> Result<bool, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| c
        .transaction(async |tx| {
            let n = diesel::delete(
                authorization_requests::table
                    .filter(authorization_requests::id.eq(id))
                    .filter(authorization_requests::stage.eq(from_stage)),
            )
            .execute(tx)
            .await?;
            if n != 1 {
                return Ok(false);
            }
            if let Some(code) = code {
                diesel::insert_into(authorization_codes::table)
                    .values(code)
                    .execute(tx)
                    .await?;
            }
            Ok::<_, diesel::result::Error>(true)
        })
        .await)?)
}

/// Stores a code issued without a pending request (SSO: no page was shown).
pub(crate) async fn insert_code(db: &Database, code: &CodeRow) -> Result<(), StorageError> {
    let mut conn = db.get().await?;
    with_conn!(&mut conn, |c| diesel::insert_into(
        authorization_codes::table
    )
    .values(code)
    .execute(c)
    .await)?;
    Ok(())
}

/// The scopes `subject` granted `client_id` before, if any.
pub(crate) async fn consent(
    db: &Database,
    subject: &str,
    client_id: &str,
) -> Result<Option<String>, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| consents::table
        .find((subject, client_id))
        .select(consents::scope)
        .first(c)
        .await
        .optional())?)
}

/// Stores a new browser session and deletes the one it replaces (if any), in one
/// transaction.
pub(crate) async fn replace_session(
    db: &Database,
    row: &SessionRow,
    replaces: Option<&str>,
) -> Result<(), StorageError> {
    let mut conn = db.get().await?;
    with_conn!(&mut conn, |c| c
        .transaction(async |tx| {
            diesel::insert_into(browser_sessions::table)
                .values(row)
                .execute(tx)
                .await?;
            if let Some(old) = replaces {
                diesel::delete(browser_sessions::table.find(old))
                    .execute(tx)
                    .await?;
            }
            Ok::<_, diesel::result::Error>(())
        })
        .await)?;
    Ok(())
}

/// Records a new authentication in an existing browser session (same user, same idp
/// session): `auth_time`, `amr`, `acr`.
pub(crate) async fn update_session(db: &Database, row: &SessionRow) -> Result<(), StorageError> {
    let mut conn = db.get().await?;
    with_conn!(&mut conn, |c| KeepPrepared(
        diesel::update(browser_sessions::table.find(&row.session_key)).set((
            browser_sessions::auth_time.eq(row.auth_time),
            browser_sessions::amr.eq(&row.amr),
            browser_sessions::acr.eq(&row.acr),
        ))
    )
    .execute(c)
    .await)?;
    Ok(())
}

/// The unexpired browser session with cookie digest `key`.
pub(crate) async fn session(
    db: &Database,
    key: &str,
    now: i64,
) -> Result<Option<SessionRow>, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| browser_sessions::table
        .find(key)
        .filter(browser_sessions::expires_at.gt(now))
        .select(SessionRow::as_select())
        .first(c)
        .await
        .optional())?)
}

/// The browser session with public id `sid`, expired or not.
pub(crate) async fn session_by_sid(
    db: &Database,
    sid: &str,
) -> Result<Option<SessionRow>, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| browser_sessions::table
        .filter(browser_sessions::sid.eq(sid))
        .select(SessionRow::as_select())
        .first(c)
        .await
        .optional())?)
}

/// Deletes a browser session.
pub(crate) async fn delete_session(db: &Database, key: &str) -> Result<(), StorageError> {
    let mut conn = db.get().await?;
    with_conn!(&mut conn, |c| diesel::delete(
        browser_sessions::table.find(key)
    )
    .execute(c)
    .await)?;
    Ok(())
}

/// Deletes expired requests, sessions and never-redeemed codes (redeemed codes stay with
/// their grant, so a late replay is still recognised).
pub(crate) async fn purge_expired(db: &Database, now: i64) -> Result<usize, StorageError> {
    let mut conn = db.get().await?;
    let a = with_conn!(&mut conn, |c| diesel::delete(
        authorization_requests::table.filter(authorization_requests::expires_at.le(now))
    )
    .execute(c)
    .await)?;
    let b = with_conn!(&mut conn, |c| diesel::delete(
        browser_sessions::table.filter(browser_sessions::expires_at.le(now))
    )
    .execute(c)
    .await)?;
    let d = with_conn!(&mut conn, |c| diesel::delete(
        authorization_codes::table
            .filter(authorization_codes::expires_at.le(now))
            .filter(authorization_codes::redeemed_at.is_null())
    )
    .execute(c)
    .await)?;
    Ok(a + b + d)
}

#[cfg(test)]
mod tests {
    #[test]
    fn merged_consent_is_a_sorted_union() {
        let granted = domain::ScopeSet::parse("openid email").unwrap();
        assert_eq!(
            super::merge_scopes(Some("profile openid"), &granted),
            "email openid profile"
        );
        assert_eq!(super::merge_scopes(None, &granted), "email openid");
    }
}
