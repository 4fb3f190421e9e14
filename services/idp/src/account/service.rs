use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tracing::instrument;

use super::config::AccountConfig;
use super::repo::{self, OutboxRow, Renamed, SessionRow};
use crate::clock::{Clock, secs};
use crate::crypto::random_b64;
use crate::login_flow::LoginFlow;
use crate::sessions::Session;
use crate::users::{User, Users, normalize_username};
use crate::IdpError;

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

/// The account operations. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Account {
    db: storage::Database,
    users: Users,
    flow: LoginFlow,
    clock: Arc<dyn Clock>,
    config: AccountConfig,
    idle_timeout: Duration,
    /// Wakes the delivery task when a revocation is queued.
    wake: Arc<Notify>,
}

impl Account {
    /// The service over `db`, calling authz through `flow`.
    pub(crate) fn new(
        db: storage::Database,
        users: Users,
        flow: LoginFlow,
        clock: Arc<dyn Clock>,
        config: AccountConfig,
        idle_timeout: Duration,
    ) -> Self {
        Self {
            db,
            users,
            flow,
            clock,
            config,
            idle_timeout,
            wake: Arc::new(Notify::new()),
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
        match repo::change_username(&self.db, &user.id, &user.username, &new, now, hold_until)
            .await
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
        let now = self.clock.unix();
        let row = OutboxRow {
            id: random_b64(16)?,
            subject: user.id.clone(),
            client_id: None,
            attempts: 0,
            next_attempt_at: now,
            last_error: None,
            created_at: now,
        };
        if !repo::delete_user_queueing(&self.db, &user.id, &row).await? {
            return Err(IdpError::NotFound("The account no longer exists.".to_owned()));
        }
        tracing::info!(user = %user.id, "account deleted by its user");
        metrics::counter!("idp_accounts_deleted_total").increment(1);
        if self.deliver(&row).await {
            Ok(Deleted::Revoked)
        } else {
            self.wake.notify_one();
            Ok(Deleted::Queued)
        }
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
