use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tracing::instrument;

use super::avatar::{self, AvatarRefused};
use super::config::AccountConfig;
use super::repo::{self, EmailChange, OutboxRow, Renamed, SessionRow};
use crate::IdpError;
use crate::clock::{Clock, secs};
use crate::crypto::random_b64;
use crate::links::{Links, PURPOSE_EMAIL_CHANGE, Rate};
use crate::login_flow::LoginFlow;
use crate::mail::{Email, Mailer};
use crate::sessions::Session;
use crate::users::{Caller, User, Users, normalize_email, normalize_username};
use audit::{Action, TargetKind};

/// Pending revocations handed to authz per round.
const BATCH: i64 = 50;

/// What a password change needs: the current password (re-authentication) and the new one
/// twice.
pub(crate) struct PasswordChange {
    pub(crate) current: String,
    pub(crate) new: String,
    pub(crate) confirm: String,
}

/// What a deletion did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Deleted {
    /// The user is gone and authz has revoked every grant already.
    Revoked,
    /// The user is gone; authz revokes the grants once it is reachable (queued).
    Queued,
}

/// What an email change request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EmailRequest {
    /// The link is mailed to the new address.
    Sent,
    /// Over a rate limit: try again after this long.
    Limited(Duration),
}

/// What following an email change link came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Confirmed {
    /// Unknown, altered, used or expired.
    NoLink,
    /// Another account has the address by now (the link is used up).
    Taken,
    /// The account has the new address, verified.
    Changed,
}

/// What the account operations need besides the database.
pub(crate) struct Parts {
    pub(crate) users: Users,
    pub(crate) flow: LoginFlow,
    pub(crate) links: Links,
    pub(crate) mailer: Mailer,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: AccountConfig,
    pub(crate) idle_timeout: Duration,
    /// `public_url` without a trailing `/`: the base of mailed links and avatar URLs.
    pub(crate) public_url: String,
}

/// The account operations. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Account {
    db: storage::Database,
    users: Users,
    flow: LoginFlow,
    links: Links,
    mailer: Mailer,
    clock: Arc<dyn Clock>,
    config: AccountConfig,
    idle_timeout: Duration,
    public_url: Arc<str>,
    /// Wakes the delivery task when a revocation is queued.
    wake: Arc<Notify>,
}

impl Account {
    /// The service over `db`, calling authz through `parts.flow`.
    pub(crate) fn new(db: storage::Database, parts: Parts) -> Self {
        Self {
            db,
            users: parts.users,
            flow: parts.flow,
            links: parts.links,
            mailer: parts.mailer,
            clock: parts.clock,
            config: parts.config,
            idle_timeout: parts.idle_timeout,
            public_url: parts.public_url.trim_end_matches('/').into(),
            wake: Arc::new(Notify::new()),
        }
    }

    /// Largest avatar upload accepted.
    pub(crate) fn avatar_max_bytes(&self) -> usize {
        self.config.avatar_max_bytes
    }

    /// Whether the email change form is offered.
    pub(crate) fn email_change_enabled(&self) -> bool {
        self.config.email_change.enabled
    }

    /// Decodes, checks and re-encodes `upload` off the async runtime (see `avatar`), then
    /// stores it and points the user's `picture` claim at it, in one transaction.
    /// `Ok(Err(_))`: the upload was refused, nothing changed.
    pub(crate) async fn set_avatar(
        &self,
        user: &User,
        upload: Vec<u8>,
    ) -> Result<Result<(), AvatarRefused>, IdpError> {
        let config = self.config;
        let png = tokio::task::spawn_blocking(move || avatar::normalise(&upload, &config))
            .await
            .map_err(|e| IdpError::Task(format!("avatar decoding: {e}")))?;
        let png = match png {
            Ok(png) => png,
            Err(refused) => return Ok(Err(refused)),
        };
        let digest = ring::digest::digest(&ring::digest::SHA256, &png);
        let etag: String = digest.as_ref()[..12]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let url = format!("{}/avatars/{}?v={etag}", self.public_url, user.id);
        repo::store_avatar(&self.db, &user.id, &png, &etag, &url, self.clock.unix()).await?;
        tracing::info!(user = %user.id, bytes = png.len(), "avatar stored");
        Ok(Ok(()))
    }

    /// Where the page itself shows `picture` from (same origin, as the pages' CSP wants):
    /// the path under `base` when it is one of our avatars, none otherwise.
    pub(crate) fn local_avatar(&self, picture: Option<&str>, base: &str) -> Option<String> {
        let rest = picture?
            .strip_prefix(&*self.public_url)?
            .strip_prefix("/avatars/")?;
        Some(format!("{base}avatars/{rest}"))
    }

    /// Removes the user's avatar and `picture` claim.
    pub(crate) async fn remove_avatar(&self, user: &User) -> Result<(), IdpError> {
        Ok(repo::remove_avatar(&self.db, &user.id, self.clock.unix()).await?)
    }

    /// The stored avatar of `user_id` (PNG) and its tag.
    pub(crate) async fn avatar(
        &self,
        user_id: &str,
    ) -> Result<Option<(Vec<u8>, String)>, IdpError> {
        if user_id.is_empty() || user_id.len() > 64 {
            return Ok(None);
        }
        Ok(repo::avatar(&self.db, user_id).await?)
    }

    /// Asks to change the email address of `user` to `raw`: refused when invalid (400) or
    /// another account's (409); rate-limited per client `address` and new address; else a
    /// single-use link (`account.email_change.link_lifetime`) is mailed to the new address
    /// (OWASP: verify ownership before use). Nothing changes until it is followed.
    #[instrument(skip_all)]
    pub(crate) async fn request_email_change(
        &self,
        user: &User,
        raw: &str,
        address: Option<IpAddr>,
    ) -> Result<EmailRequest, IdpError> {
        if !self.config.email_change.enabled {
            return Err(IdpError::NotFound(
                "Email changes are turned off.".to_owned(),
            ));
        }
        let email = normalize_email(raw)
            .map_err(|_| IdpError::Invalid("Enter a valid email address.".to_owned()))?;
        if user.profile.email.as_deref() == Some(email.as_str()) && user.profile.email_verified {
            return Err(IdpError::Invalid(
                "That is already your email address.".to_owned(),
            ));
        }
        if repo::email_taken(&self.db, &user.id, &email).await? {
            return Err(IdpError::Conflict(
                "That email address belongs to another account.".to_owned(),
            ));
        }
        let limits = &self.config.email_change;
        if let Rate::Limited(wait) = self
            .links
            .rate(PURPOSE_EMAIL_CHANGE, address, &email, limits)
            .await?
        {
            return Ok(EmailRequest::Limited(wait));
        }
        let token = self
            .links
            .issue(
                PURPOSE_EMAIL_CHANGE,
                Some(&user.id),
                &email,
                None,
                limits.link_lifetime,
            )
            .await?;
        let link = format!("{}/account/email/verify?token={token}", self.public_url);
        let minutes = limits.link_lifetime.as_secs() / 60;
        let body = format!(
            "Hello {},\n\nsomeone, hopefully you, asked to use this address for the account \
             {} from now on. To confirm, open this link within {minutes} minutes:\n\n{link}\n\n\
             The link works once. If you did not ask for this, ignore this message: nothing \
             changes.\n",
            user.username, user.username
        );
        self.mailer
            .send(&Email {
                to: email,
                subject: "Confirm your new email address".to_owned(),
                body,
            })
            .await?;
        tracing::info!(user = %user.id, "email change link sent");
        Ok(EmailRequest::Sent)
    }

    /// Whether `token` is a live email change link.
    pub(crate) async fn email_link_live(&self, token: &str) -> Result<bool, IdpError> {
        Ok(self
            .links
            .peek(PURPOSE_EMAIL_CHANGE, token)
            .await?
            .is_some())
    }

    /// Follows an email change link: in one transaction the link is used up and its
    /// account gets the address, verified.
    #[instrument(skip_all)]
    pub(crate) async fn confirm_email_change(&self, token: &str) -> Result<Confirmed, IdpError> {
        let Some(hash) = crate::links::token_hash(token) else {
            return Ok(Confirmed::NoLink);
        };
        match repo::use_email_change_link(&self.db, &hash, self.clock.unix()).await {
            Ok(EmailChange::NoLink) => Ok(Confirmed::NoLink),
            Ok(EmailChange::Taken) => Ok(Confirmed::Taken),
            Ok(EmailChange::Changed(user)) => {
                tracing::info!(%user, "email address changed");
                Ok(Confirmed::Changed)
            }
            // Another account took it between the check and the update.
            Err(e) if e.is_unique_violation() => Ok(Confirmed::Taken),
            Err(e) => Err(e.into()),
        }
    }

    /// Changes the username of `user` (normalised as at creation). [`IdpError::Conflict`]
    /// when another account has it (as username or email) or holds it; the old name is held
    /// for `user` for `account.username_hold`.
    pub(crate) async fn change_username(&self, user: &User, raw: &str) -> Result<String, IdpError> {
        let new = normalize_username(raw)?;
        if new == user.username {
            return Ok(new);
        }
        let now = self.clock.unix();
        let hold_until = now.saturating_add(secs(self.config.username_hold));
        let taken = || IdpError::Conflict("That username is not available.".to_owned());
        match repo::change_username(&self.db, &user.id, &user.username, &new, now, hold_until).await
        {
            Ok(Renamed::Done) => {
                tracing::info!(user = %user.id, "username changed");
                Ok(new)
            }
            Ok(Renamed::Taken) => Err(taken()),
            Err(e) if e.is_unique_violation() => Err(taken()),
            Err(e) => Err(e.into()),
        }
    }

    /// Changes the password of `user` after checking the current one; in one transaction
    /// every other session of the user ends (OWASP ASVS V3.3.3); authz is told about each
    /// (`SessionEnded`, best effort: the sessions are gone here either way). Returns how
    /// many sessions ended.
    #[instrument(skip_all)]
    pub(crate) async fn change_password(
        &self,
        user: &User,
        session: &Session,
        change: PasswordChange,
    ) -> Result<usize, IdpError> {
        if change.new != change.confirm {
            return Err(IdpError::Invalid(
                "The new password and its confirmation differ.".to_owned(),
            ));
        }
        if !self.users.check_password(&user.id, change.current).await? {
            return Err(IdpError::Forbidden(
                "The current password is not correct.".to_owned(),
            ));
        }
        let hash = self.users.passwords().hash(change.new).await?;
        let ended = repo::set_password_ending_others(
            &self.db,
            &user.id,
            &hash,
            &session.id,
            self.clock.unix(),
        )
        .await?;
        tracing::info!(user = %user.id, sessions = ended.len(), "password changed");
        self.mailer
            .notify_password_changed(user, self.clock.unix(), false)?;
        self.tell_authz_ended(&ended).await;
        Ok(ended.len())
    }

    /// The live sessions of `user_id`, most recently used first.
    pub(crate) async fn sessions(&self, user_id: &str) -> Result<Vec<SessionRow>, IdpError> {
        let now = self.clock.unix();
        let idle_cutoff = now.saturating_sub(secs(self.idle_timeout));
        Ok(repo::sessions_of(&self.db, user_id, now, idle_cutoff).await?)
    }

    /// Ends every session of the user except `session` (and tells authz about each, best
    /// effort); returns how many ended.
    pub(crate) async fn end_other_sessions(&self, session: &Session) -> Result<usize, IdpError> {
        let ended = repo::end_other_sessions(&self.db, &session.user_id, &session.id).await?;
        tracing::info!(user = %session.user_id, sessions = ended.len(), "other sessions ended");
        self.tell_authz_ended(&ended).await;
        Ok(ended.len())
    }

    async fn tell_authz_ended(&self, ended: &[String]) {
        for id in ended {
            if let Err(e) = self.flow.session_ended(id).await {
                tracing::warn!(error = %e, "authz was not told that a session ended");
            }
        }
    }

    /// The applications `user_id` has a remembered consent with (from authz).
    pub(crate) async fn apps(
        &self,
        user_id: &str,
    ) -> Result<Vec<proto::authz::v1::RememberedConsent>, IdpError> {
        self.flow.list_consents(user_id).await
    }

    /// authz revokes `client_id`'s grants for `user_id` and forgets the consent.
    pub(crate) async fn revoke_app(&self, user_id: &str, client_id: &str) -> Result<u32, IdpError> {
        let client_id = client_id.trim();
        if client_id.is_empty() || client_id.len() > 255 {
            return Err(IdpError::Invalid("Choose an application.".to_owned()));
        }
        let r = self.flow.revoke_consent(user_id, client_id).await?;
        tracing::info!(user = %user_id, client_id, grants = r.grants_revoked, "application access withdrawn");
        Ok(r.grants_revoked)
    }

    /// Deletes `user` after re-authentication with `password`: in one transaction the
    /// user, its sessions, device cookies and avatar are deleted and the revocation of all
    /// its grants at authz is queued; then delivered at once when authz answers, else by
    /// the delivery task later. [`IdpError::Forbidden`] (nothing deleted) for a wrong
    /// password.
    #[instrument(skip_all)]
    pub(crate) async fn delete(&self, user: &User, password: String) -> Result<Deleted, IdpError> {
        if !self.users.check_password(&user.id, password).await? {
            return Err(IdpError::Forbidden(
                "The password is not correct; the account was not deleted.".to_owned(),
            ));
        }
        let row = self.revocation_of(&user.id)?;
        if !repo::delete_user_queueing(&self.db, &user.id, &row, None).await? {
            return Err(IdpError::NotFound(
                "The account no longer exists.".to_owned(),
            ));
        }
        tracing::info!(user = %user.id, "account deleted by its user");
        metrics::counter!("idp_accounts_deleted_total").increment(1);
        Ok(self.deliver_now(&row).await)
    }

    /// The outbox entry revoking every grant of `subject` at authz, due now.
    fn revocation_of(&self, subject: &str) -> Result<OutboxRow, IdpError> {
        let now = self.clock.unix();
        Ok(OutboxRow {
            id: random_b64(16)?,
            subject: subject.to_owned(),
            client_id: None,
            attempts: 0,
            next_attempt_at: now,
            last_error: None,
            created_at: now,
        })
    }

    /// Delivers a just-queued revocation at once, else wakes the delivery task for later.
    async fn deliver_now(&self, row: &OutboxRow) -> Deleted {
        if self.deliver(row).await {
            Deleted::Revoked
        } else {
            self.wake.notify_one();
            Deleted::Queued
        }
    }

    // admin API (issue 18, idpadmin2)
    /// Deletes the user `user_id` by `by` (an admin client): in one transaction the user,
    /// its sessions, device cookies and avatar are deleted, the revocation of all its grants
    /// at authz is queued and `user.deleted` is recorded; then the revocation is delivered
    /// as [`Account::delete`] does. [`IdpError::NotFound`] when there is no such user.
    pub(crate) async fn delete_by(&self, by: &Caller, user_id: &str) -> Result<Deleted, IdpError> {
        let row = self.revocation_of(user_id)?;
        let event = by.event_on(Action::UserDeleted, TargetKind::User, user_id);
        if !repo::delete_user_queueing(&self.db, user_id, &row, Some(&event)).await? {
            return Err(IdpError::NotFound(format!("no user {user_id}")));
        }
        event.log();
        metrics::counter!("idp_accounts_deleted_total").increment(1);
        Ok(self.deliver_now(&row).await)
    }

    /// Disables the user `user_id` by `by`: ends its idp sessions, queues the revocation of
    /// every grant of the user at authz and records `user.disabled`, in one transaction;
    /// then delivers the revocation like [`Account::delete_by`].
    pub(crate) async fn disable_by(
        &self,
        by: &Caller,
        user_id: &str,
    ) -> Result<(User, Deleted), IdpError> {
        let row = self.revocation_of(user_id)?;
        let user = self
            .users
            .set_disabled_queueing(by, user_id, true, Some(&row))
            .await?;
        Ok((user, self.deliver_now(&row).await))
    }

    /// Ends the idp sessions of `user_id` (only `only` when given) by `by`, recorded as
    /// `session.ended` / `sessions.ended` in the same transaction, and tells authz about
    /// each (`LoginFlow.SessionEnded`, best effort: authz's sessions also end when they
    /// expire). Returns the ids of the ended sessions.
    pub(crate) async fn end_sessions_by(
        &self,
        by: &Caller,
        user_id: &str,
        only: Option<&str>,
    ) -> Result<Vec<String>, IdpError> {
        let event = match only {
            Some(id) => by.event_on(Action::SessionEnded, TargetKind::Session, id),
            None => by.event_on(Action::SessionsEnded, TargetKind::User, user_id),
        };
        let ended = crate::sessions::end_all_listed(&self.db, user_id, only, Some(&event)).await?;
        if !ended.is_empty() {
            event.log();
            self.tell_authz_ended(&ended).await;
        }
        Ok(ended)
    }

    /// Hands one pending revocation to authz; on success it leaves the outbox, on failure
    /// its next attempt is pushed back (exponential back-off). Returns whether authz took it.
    async fn deliver(&self, row: &OutboxRow) -> bool {
        let result = match &row.client_id {
            None => self.flow.revoke_subject(&row.subject).await.map(|_| ()),
            Some(client_id) => self
                .flow
                .revoke_consent(&row.subject, client_id)
                .await
                .map(|_| ()),
        };
        match result {
            Ok(()) => {
                if let Err(e) = repo::delivered(&self.db, &row.id).await {
                    // Delivered again later: both RPCs are idempotent.
                    tracing::warn!(error = %e, "a delivered revocation stays queued");
                }
                metrics::counter!("idp_revocations_delivered_total").increment(1);
                true
            }
            Err(e) => {
                let attempts = row.attempts.saturating_add(1);
                let delay = self.backoff(attempts);
                let next = self.clock.unix().saturating_add(secs(delay).max(0));
                tracing::warn!(error = %e, attempts, retry_in = ?delay, "authz did not take a revocation; retrying later");
                metrics::counter!("idp_revocation_failures_total").increment(1);
                if let Err(e) =
                    repo::postponed(&self.db, &row.id, attempts, next, &e.to_string()).await
                {
                    tracing::warn!(error = %e, "cannot postpone a pending revocation");
                }
                false
            }
        }
    }

    /// `revocation_retry` × 2^(attempts-1), at most `revocation_retry_max`.
    fn backoff(&self, attempts: i64) -> Duration {
        let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
        self.config
            .revocation_retry
            .saturating_mul(1u32 << exp)
            .min(self.config.revocation_retry_max)
    }

    /// One round: delivers every revocation due now. Returns how many are still pending.
    pub(crate) async fn deliver_due(&self) -> Result<i64, IdpError> {
        let due = repo::due(&self.db, self.clock.unix(), BATCH).await?;
        for row in &due {
            self.deliver(row).await;
        }
        let pending = repo::pending(&self.db).await?;
        #[allow(clippy::cast_precision_loss)]
        metrics::gauge!("idp_revocations_pending").set(pending as f64);
        Ok(pending)
    }

    /// Until `stop`: delivers pending revocations every `account.revocation_retry` (and at
    /// once when one is queued), and purges ended username holds.
    pub(crate) fn spawn_delivery(&self, stop: impl Future<Output = ()> + Send + 'static) {
        let account = self.clone();
        tokio::spawn(async move {
            tokio::pin!(stop);
            loop {
                if let Err(e) = account.deliver_due().await {
                    tracing::warn!(error = %e, "cannot read the pending revocations");
                }
                if let Err(e) = repo::purge_holds(&account.db, account.clock.unix()).await {
                    tracing::warn!(error = %e, "cannot purge username holds");
                }
                tokio::select! {
                    () = &mut stop => return,
                    () = account.wake.notified() => {}
                    () = tokio::time::sleep(account.config.revocation_retry) => {}
                }
            }
        });
    }
}
