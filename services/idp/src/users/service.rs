use std::net::IpAddr;

use audit::{Action, Actor, AuditEvent, TargetKind};
use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use storage::Database;

use super::model::{NewUser, Profile, User, normalize_email, normalize_username};
use super::password::Passwords;
use super::repo::{self, Row};
use crate::IdpError;

/// User management over the idp database.
#[derive(Clone)]
pub struct Users {
    db: Database,
    passwords: Passwords,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A user id: 128 random bits, base64url, never starting with `-` (ids are command-line
/// arguments, `idp users show <id>`, where a leading `-` reads as an option); drawn again
/// in that case (1 in 64), so the others stay uniformly distributed.
fn new_id() -> Result<String, IdpError> {
    let mut bytes = [0u8; 16];
    let rng = SystemRandom::new();
    loop {
        rng.fill(&mut bytes)
            .map_err(|_| IdpError::Task("no randomness available".into()))?;
        // The first base64url character is the top six bits of the first byte; 62 is `-`.
        if bytes[0] >> 2 != 62 {
            return Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes));
        }
    }
}

/// A unique violation on insert: the username or email is taken.
fn in_use(e: storage::StorageError) -> IdpError {
    if e.is_unique_violation() {
        IdpError::Conflict("username or email already in use".into())
    } else {
        e.into()
    }
}

/// An account as a login name found it ([`Users::find_login`]), for
/// [`Users::check_login`]; its password hash stays inside.
pub struct LoginAccount(Row);

impl LoginAccount {
    /// The user's id (the OIDC `sub`).
    pub fn id(&self) -> &str {
        &self.0.id
    }
}

/// What [`Users::seed`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedOutcome {
    /// The user deleted first (with its sessions), when resetting and it existed.
    pub deleted: Option<User>,
    /// The user created now.
    pub created: Option<User>,
    /// The user that existed and was left untouched (nothing was created).
    pub existing: Option<User>,
}

impl Users {
    /// The user service.
    pub fn new(db: Database, passwords: Passwords) -> Self {
        Self { db, passwords }
    }

    // email, sign-up and password reset (issue 21)
    /// The password hasher (the sign-up and reset pages hash before their transaction).
    pub(crate) fn passwords(&self) -> &Passwords {
        &self.passwords
    }

    async fn row(&self, key: &str) -> Result<Row, IdpError> {
        repo::find(&self.db, key)
            .await?
            .ok_or_else(|| IdpError::NotFound(format!("no user {key}")))
    }

    /// The row of a new user: normalised username and email, a fresh id, an argon2id hash
    /// of `password` (computed on the blocking pool, with the configured parameters).
    async fn new_row(&self, new: NewUser, password: String) -> Result<Row, IdpError> {
        let username = normalize_username(&new.username)?;
        let mut profile = new.profile;
        profile.email = profile.email.as_deref().map(normalize_email).transpose()?;
        let password_hash = self.passwords.hash(password).await?;
        let t = now();
        Ok(Row {
            id: new_id()?,
            username,
            email: profile.email,
            email_verified: profile.email_verified,
            name: profile.name,
            given_name: profile.given_name,
            family_name: profile.family_name,
            picture: profile.picture,
            locale: profile.locale,
            password_hash,
            disabled: false,
            created_at: t,
            updated_at: t,
        })
    }

    /// Creates a user with an argon2id hash of `password`; username and email must be free.
    pub async fn create(&self, new: NewUser, password: String) -> Result<User, IdpError> {
        let row = self.new_row(new, password).await?;
        // account page: a username its former owner changed away from stays theirs a while.
        if crate::account::repo::username_held(&self.db, &row.username, None, now()).await? {
            return Err(IdpError::Conflict(
                "username or email already in use".into(),
            ));
        }
        repo::insert(&self.db, &row).await.map_err(in_use)?;
        Ok(row.user())
    }

    /// Creates the user `new.username` unless a user with that username exists, which is
    /// then left untouched (no password is hashed). With `reset`, that user is first
    /// deleted with its sessions, so the user is created afresh under a new id. One
    /// transaction: on any error (an email already used by another user included) nothing
    /// is changed.
    pub async fn seed(
        &self,
        new: NewUser,
        password: String,
        reset: bool,
    ) -> Result<SeedOutcome, IdpError> {
        let username = normalize_username(&new.username)?;
        if !reset && let Some(existing) = repo::find_by_username(&self.db, &username).await? {
            return Ok(SeedOutcome {
                deleted: None,
                created: None,
                existing: Some(existing.user()),
            });
        }
        let row = self.new_row(new, password).await?;
        let (deleted, created) = repo::seed(&self.db, &row, reset).await.map_err(in_use)?;
        let existing = if created {
            None
        } else {
            repo::find_by_username(&self.db, &username)
                .await?
                .map(|r| r.user())
        };
        Ok(SeedOutcome {
            deleted: deleted.map(|r| r.user()),
            created: created.then(|| row.user()),
            existing,
        })
    }

    /// By id, username or email.
    pub async fn get(&self, key: &str) -> Result<User, IdpError> {
        Ok(self.row(key).await?.user())
    }

    /// By id (the OIDC `sub`) only, disabled users included.
    pub async fn by_id(&self, id: &str) -> Result<Option<User>, IdpError> {
        if id.is_empty() {
            return Ok(None);
        }
        Ok(repo::find_by_id(&self.db, id).await?.map(|r| r.user()))
    }

    /// Every user, by username.
    pub async fn list(&self) -> Result<Vec<User>, IdpError> {
        Ok(repo::list(&self.db).await?.iter().map(Row::user).collect())
    }

    /// Replaces the password.
    pub async fn set_password(&self, key: &str, password: String) -> Result<User, IdpError> {
        let mut row = self.row(key).await?;
        row.password_hash = self.passwords.hash(password).await?;
        row.updated_at = now();
        repo::update(&self.db, &row).await?;
        Ok(row.user())
    }

    /// Disables or re-enables a user. Disabling also ends every idp session of the user, in
    /// the same transaction (authz's grants are revoked separately, by the caller, through
    /// `LoginFlow.RevokeSubject`). Disabling a disabled user is allowed and ends any
    /// session left.
    pub async fn set_disabled(&self, key: &str, disabled: bool) -> Result<User, IdpError> {
        let mut row = self.row(key).await?;
        row.disabled = disabled;
        row.updated_at = now();
        let ended = repo::update_ending_sessions(&self.db, &row).await?;
        if ended > 0 {
            tracing::info!(user = %row.id, sessions = ended, "sessions of a disabled user ended");
        }
        Ok(row.user())
    }

    /// Deletes a user with every idp session of it (`ON DELETE CASCADE`); returns the
    /// deleted user, whose id the caller needs to revoke the user's grants at authz.
    pub async fn delete(&self, key: &str) -> Result<User, IdpError> {
        let row = self.row(key).await?;
        repo::delete(&self.db, &row.id).await?;
        Ok(row.user())
    }

    /// The id of the user a login name (username or email, as [`Users::authenticate`]
    /// looks it up) belongs to, disabled users included: what the login throttle counts
    /// failures against, so every spelling of one account shares one counter.
    pub async fn resolve_login(&self, login: &str) -> Result<Option<String>, IdpError> {
        Ok(repo::find_login(&self.db, login).await?.map(|r| r.id))
    }

    /// The account a login name (username or email) names, disabled users included, read
    /// once for both the login throttle (its id, [`LoginAccount::id`]) and the password
    /// check ([`Users::check_login`]), which the sign-in form needs one after the other.
    pub async fn find_login(&self, login: &str) -> Result<Option<LoginAccount>, IdpError> {
        Ok(repo::find_login(&self.db, login).await?.map(LoginAccount))
    }

    /// Checks a login (username or email): `Some(user)` for a right password of an enabled
    /// user. Unknown users cost the same argon2id verification as known ones, and every
    /// failure looks alike. A hash with outdated parameters is replaced transparently on
    /// success.
    pub async fn authenticate(
        &self,
        login: &str,
        password: String,
    ) -> Result<Option<User>, IdpError> {
        let found = self.find_login(login).await?;
        self.check_login(found, password).await
    }

    /// [`Users::authenticate`] on an account already looked up with [`Users::find_login`]
    /// (`None`: no such account, checked like a wrong password, as long).
    pub async fn check_login(
        &self,
        found: Option<LoginAccount>,
        password: String,
    ) -> Result<Option<User>, IdpError> {
        let row = found.map(|f| f.0);
        // A user created through an upstream has no password (an empty hash): it is checked
        // like an unknown user, so it takes as long and never matches.
        let checked = self
            .passwords
            .verify(
                row.as_ref()
                    .filter(|r| !r.password_hash.is_empty())
                    .map(|r| r.password_hash.clone()),
                password.clone(),
            )
            .await?;
        let Some(mut row) = row.filter(|r| checked.valid && !r.disabled) else {
            return Ok(None);
        };
        if checked.needs_rehash {
            row.password_hash = self.passwords.hash(password).await?;
            repo::update(&self.db, &row).await?;
            tracing::info!(user = %row.id, "password rehashed with the configured parameters");
        }
        Ok(Some(row.user()))
    }

    // account page
    /// Whether `password` is the current password of enabled user `id` (argon2id, as at
    /// sign-in; the account page's re-authentication).
    #[tracing::instrument(skip_all)]
    pub(crate) async fn check_password(
        &self,
        id: &str,
        password: String,
    ) -> Result<bool, IdpError> {
        let row = repo::find_by_id(&self.db, id).await?;
        let checked = self
            .passwords
            .verify(row.as_ref().map(|r| r.password_hash.clone()), password)
            .await?;
        Ok(checked.valid && row.is_some_and(|r| !r.disabled))
    }

    /// Replaces the profile claims the user edits (OpenID Connect Core 1.0 §5.1 `name`,
    /// `given_name`, `family_name`, `locale`, and `picture` when given) and bumps
    /// `updated_at`, so the next ID token and userinfo answer carry them.
    pub async fn update_profile(
        &self,
        id: &str,
        edit: super::ProfileEdit,
    ) -> Result<User, IdpError> {
        let mut row = repo::find_by_id(&self.db, id)
            .await?
            .ok_or_else(|| IdpError::NotFound(format!("no user {id}")))?;
        if let Some(name) = edit.name {
            row.name = name;
        }
        if let Some(given_name) = edit.given_name {
            row.given_name = given_name;
        }
        if let Some(family_name) = edit.family_name {
            row.family_name = family_name;
        }
        if let Some(locale) = edit.locale {
            row.locale = locale;
        }
        if let Some(picture) = edit.picture {
            row.picture = picture;
        }
        if let Some(email) = edit.email {
            row.email = email.as_deref().map(normalize_email).transpose()?;
        }
        if let Some(verified) = edit.email_verified {
            row.email_verified = verified;
        }
        row.updated_at = now().max(row.updated_at);
        repo::update(&self.db, &row).await.map_err(in_use)?;
        Ok(row.user())
    }
}

// audit trail (issue 18, idpadmin): the admin writes of the CLI and the admin API, each
// recorded in the audit trail in the same transaction as the change.

/// Who asks for an admin write, for the audit trail: the operator at the command line or
/// an admin client of the admin API, and the client address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    actor: Actor,
    address: Option<IpAddr>,
}

impl Caller {
    /// The operator running `idp users …` on this machine.
    pub fn operator() -> Self {
        Self {
            actor: Actor::Operator,
            address: None,
        }
    }

    /// The admin client `client_id` (the access token's `client_id`) calling from `address`.
    pub fn admin_client(client_id: &str, address: Option<IpAddr>) -> Self {
        Self {
            actor: Actor::AdminClient(audit::Ident::new(client_id)),
            address,
        }
    }

    /// The event of `action` on the user `user_id` by this caller.
    fn event(&self, action: Action, user_id: &str) -> AuditEvent {
        self.event_on(action, TargetKind::User, user_id)
    }

    /// The event of `action` by this caller, about no particular target.
    pub(crate) fn event_without_target(&self, action: Action) -> AuditEvent {
        AuditEvent::new(self.actor.clone(), action).from(self.address)
    }

    /// The event of `action` on the target `kind` `id` by this caller.
    pub(crate) fn event_on(&self, action: Action, kind: TargetKind, id: &str) -> AuditEvent {
        AuditEvent::new(self.actor.clone(), action)
            .from(self.address)
            .target(kind, id)
    }
}

/// A storage error of an audited write: a vanished row is the user not found.
fn gone(key: &str) -> impl FnOnce(storage::StorageError) -> IdpError + '_ {
    move |e| {
        if e.is_not_found() {
            IdpError::NotFound(format!("no user {key}"))
        } else {
            e.into()
        }
    }
}

impl Users {
    /// [`Users::create`] by `by`, recorded as `user.created`.
    pub async fn create_by(
        &self,
        by: &Caller,
        new: NewUser,
        password: String,
    ) -> Result<User, IdpError> {
        let row = self.new_row(new, password).await?;
        let event = by.event(Action::UserCreated, &row.id);
        repo::insert_audited(&self.db, &row, &event)
            .await
            .map_err(in_use)?;
        event.log();
        Ok(row.user())
    }

    /// Replaces the profile claims of the user `key` by `by`, recorded as `user.updated`.
    /// The email is normalised and must be free.
    pub async fn update_profile_by(
        &self,
        by: &Caller,
        key: &str,
        profile: super::Profile,
    ) -> Result<User, IdpError> {
        self.update_profile_if(by, key, profile, None)
            .await?
            .ok_or_else(|| IdpError::NotFound(format!("no user {key}")))
    }

    /// [`Users::update_profile_by`], only while the user's revision (`updated_at`) is
    /// `revision` when given: `None` (nothing written) when it changed meanwhile (the admin
    /// API's `If-Match`, RFC 9110 §13.1.1).
    pub async fn update_profile_if(
        &self,
        by: &Caller,
        key: &str,
        profile: super::Profile,
        revision: Option<i64>,
    ) -> Result<Option<User>, IdpError> {
        let mut row = self.row(key).await?;
        if revision.is_some_and(|r| r != row.updated_at) {
            return Ok(None);
        }
        let email = profile.email.as_deref().map(normalize_email).transpose()?;
        row.email = email;
        row.email_verified = profile.email_verified;
        row.name = profile.name;
        row.given_name = profile.given_name;
        row.family_name = profile.family_name;
        row.picture = profile.picture;
        row.locale = profile.locale;
        row.updated_at = now().max(row.updated_at + 1);
        let event = by.event(Action::UserUpdated, &row.id);
        // The read revision is `revision` (checked above); the write checks it again.
        let also = repo::Also {
            if_revision: revision,
            ..repo::Also::default()
        };
        let written = repo::update_audited(&self.db, &row, &also, &event)
            .await
            .map_err(|e| {
                if e.is_unique_violation() {
                    in_use(e)
                } else {
                    gone(key)(e)
                }
            })?;
        if written.is_none() {
            return Ok(None);
        }
        event.log();
        Ok(Some(row.user()))
    }

    /// [`Users::set_password`] by `by`, recorded as `user.password_set` (never the
    /// password).
    pub async fn set_password_by(
        &self,
        by: &Caller,
        key: &str,
        password: String,
    ) -> Result<User, IdpError> {
        let mut row = self.row(key).await?;
        row.password_hash = self.passwords.hash(password).await?;
        row.updated_at = now().max(row.updated_at + 1);
        let event = by.event(Action::UserPasswordSet, &row.id);
        repo::update_audited(&self.db, &row, &repo::Also::default(), &event)
            .await
            .map_err(gone(key))?;
        event.log();
        Ok(row.user())
    }

    /// [`Users::set_disabled`] by `by`, recorded as `user.disabled` or `user.enabled`;
    /// disabling ends every idp session of the user in the same transaction.
    pub async fn set_disabled_by(
        &self,
        by: &Caller,
        key: &str,
        disabled: bool,
    ) -> Result<User, IdpError> {
        self.set_disabled_queueing(by, key, disabled, None).await
    }

    /// [`Users::set_disabled_by`] that also queues `revoke` (the revocation of the user's
    /// grants at authz) in the same transaction, so a disabled user never keeps its grants
    /// for want of a reachable authz.
    pub(crate) async fn set_disabled_queueing(
        &self,
        by: &Caller,
        key: &str,
        disabled: bool,
        revoke: Option<&crate::account::repo::OutboxRow>,
    ) -> Result<User, IdpError> {
        let mut row = self.row(key).await?;
        row.disabled = disabled;
        row.updated_at = now().max(row.updated_at + 1);
        let action = if disabled {
            Action::UserDisabled
        } else {
            Action::UserEnabled
        };
        let event = by.event(action, &row.id);
        let also = repo::Also {
            end_sessions: disabled,
            revoke,
            ..repo::Also::default()
        };
        let ended = repo::update_audited(&self.db, &row, &also, &event)
            .await
            .map_err(gone(key))?
            .unwrap_or_default();
        event.log();
        if ended > 0 {
            tracing::info!(user = %row.id, sessions = ended, "sessions of a disabled user ended");
        }
        Ok(row.user())
    }

    // admin API (issue 18, idpadmin2)
    /// Up to `limit` users matching `filter`, by username (the admin API's listing).
    pub(crate) async fn page(
        &self,
        filter: &repo::Filter,
        limit: i64,
    ) -> Result<Vec<User>, IdpError> {
        Ok(repo::page(&self.db, filter, limit)
            .await?
            .iter()
            .map(Row::user)
            .collect())
    }

    /// [`Users::delete`] by `by`, recorded as `user.deleted`.
    pub async fn delete_by(&self, by: &Caller, key: &str) -> Result<User, IdpError> {
        let row = self.row(key).await?;
        let event = by.event(Action::UserDeleted, &row.id);
        repo::delete_audited(&self.db, &row.id, &event)
            .await
            .map_err(gone(key))?;
        event.log();
        Ok(row.user())
    }
}

// upstream sign-in
impl Users {
    /// The row of a user created at a first upstream login: normalised username and email,
    /// a fresh id, and no password (an empty hash, which never verifies): the user signs in
    /// through the upstream until a password is set.
    pub(crate) fn federated_row(&self, username: &str, profile: Profile) -> Result<Row, IdpError> {
        let username = normalize_username(username)?;
        let mut profile = profile;
        profile.email = profile.email.as_deref().map(normalize_email).transpose()?;
        let t = now();
        Ok(Row {
            id: new_id()?,
            username,
            email: profile.email,
            email_verified: profile.email_verified,
            name: profile.name,
            given_name: profile.given_name,
            family_name: profile.family_name,
            picture: profile.picture,
            locale: profile.locale,
            password_hash: String::new(),
            disabled: false,
            created_at: t,
            updated_at: t,
        })
    }

    /// The user whose email is `email` (compared lower-case), disabled users included.
    pub(crate) async fn by_email(&self, email: &str) -> Result<Option<User>, IdpError> {
        let Ok(email) = normalize_email(email) else {
            return Ok(None);
        };
        Ok(repo::find_by_email(&self.db, &email)
            .await?
            .map(|r| r.user()))
    }
}

#[cfg(test)]
mod id_tests {
    use super::*;

    #[test]
    fn user_ids_never_read_as_options() {
        // Without the redraw, 1 id in 64 starts with `-`: 10,000 would show one.
        for _ in 0..10_000 {
            let id = new_id().unwrap();
            assert!(!id.starts_with('-'), "{id}");
            assert_eq!(id.len(), 22);
        }
    }
}
