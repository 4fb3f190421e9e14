use std::sync::Arc;
use std::time::Duration;

use config::Secret;
use domain::secret::digest_hex;
use storage::Database;
use tracing::instrument;

use super::config::SessionConfig;
use super::repo::{self, Row};
use crate::IdpError;
use crate::clock::{Clock, secs};
use crate::crypto::random_b64;

/// Sessions are marked as used at most this often, so reuse does not write on every visit.
const TOUCH_EVERY: i64 = 60;

/// A live browser session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Public id, given to authz as `AcceptLogin.session_id`.
    pub id: String,
    /// The user (`sub`).
    pub user_id: String,
    /// When the user actually authenticated (Unix seconds); reuse does not change it.
    pub auth_time: i64,
    /// Authentication methods (RFC 8176), e.g. `["pwd"]`.
    pub amr: Vec<String>,
    /// Authentication context class reference; empty when none is claimed.
    pub acr: String,
    /// Absolute end of the session (Unix seconds).
    pub expires_at: i64,
}

/// What a new session records.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// The user (`sub`).
    pub user_id: String,
    /// Authentication methods used (RFC 8176).
    pub amr: Vec<String>,
    /// Authentication context class reference, or empty.
    pub acr: String,
}

impl Row {
    fn session(&self) -> Session {
        Session {
            id: self.id.clone(),
            user_id: self.user_id.clone(),
            auth_time: self.auth_time,
            amr: self.amr.split_whitespace().map(str::to_owned).collect(),
            acr: self.acr.clone(),
            expires_at: self.expires_at,
        }
    }
}

/// Browser sessions over the idp database. Cheap to clone.
#[derive(Clone)]
pub struct Sessions {
    db: Database,
    clock: Arc<dyn Clock>,
    config: SessionConfig,
}

impl Sessions {
    /// The session store.
    pub fn new(db: Database, clock: Arc<dyn Clock>, config: SessionConfig) -> Self {
        Self { db, clock, config }
    }

    /// Lifetime and idle timeout.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// Sessions last used at or before this time have idled out.
    fn idle_cutoff(&self, now: i64) -> i64 {
        now.saturating_sub(secs(self.config.idle_timeout))
    }

    /// Records a successful authentication now and returns the session with its new cookie
    /// secret (which exists in clear only here: the database keeps its SHA-256).
    ///
    /// When the browser already has a live session of the same user (a re-authentication
    /// for `prompt=login` or `max_age`), that session is renewed under a new secret and keeps
    /// its public id, so what authz recorded about it stays valid. Otherwise a new session
    /// starts, and a session of another user in this browser ends. The secret always
    /// changes at sign-in (no session fixation).
    #[instrument(skip_all)]
    pub async fn sign_in(
        &self,
        previous: Option<&Session>,
        new: NewSession,
    ) -> Result<(Session, Secret<String>), IdpError> {
        let secret = random_b64(32)?;
        let now = self.clock.unix();
        let mut row = Row {
            id: random_b64(16)?,
            secret_hash: digest_hex(&secret),
            user_id: new.user_id,
            auth_time: now,
            amr: new.amr.join(" "),
            acr: new.acr,
            created_at: now,
            last_seen_at: now,
            expires_at: now.saturating_add(secs(self.config.lifetime)),
        };
        let renewed = match previous {
            Some(p) if p.user_id == row.user_id => {
                row.id.clone_from(&p.id);
                repo::reauthenticate(&self.db, &row).await? == 1
            }
            Some(p) => {
                adjust_gauge(-count(repo::delete_by_id(&self.db, &p.id).await?));
                false
            }
            None => false,
        };
        if !renewed {
            repo::insert(&self.db, &row).await?;
            adjust_gauge(1);
        }
        Ok((row.session(), Secret::new(secret)))
    }

    /// The live session whose cookie secret is `secret`, marked as used (which holds off
    /// the idle timeout).
    #[instrument(skip_all)]
    pub async fn by_secret(&self, secret: &str) -> Result<Option<Session>, IdpError> {
        if secret.is_empty() {
            return Ok(None);
        }
        let now = self.clock.unix();
        let Some(row) =
            repo::find_alive_by_secret(&self.db, &digest_hex(secret), now, self.idle_cutoff(now))
                .await?
        else {
            return Ok(None);
        };
        if now - row.last_seen_at >= TOUCH_EVERY {
            repo::touch(&self.db, &row.id, now).await?;
        }
        Ok(Some(row.session()))
    }

    /// The live session with public id `id` (not marked as used: asking about a session is
    /// not using it).
    pub async fn by_id(&self, id: &str) -> Result<Option<Session>, IdpError> {
        if id.is_empty() {
            return Ok(None);
        }
        let now = self.clock.unix();
        Ok(
            repo::find_alive_by_id(&self.db, id, now, self.idle_cutoff(now))
                .await?
                .map(|r| r.session()),
        )
    }

    /// Ends the session with public id `id`; returns how many ended (0 or 1).
    pub async fn end(&self, id: &str) -> Result<u32, IdpError> {
        let n = repo::delete_by_id(&self.db, id).await?;
        adjust_gauge(-count(n));
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// Ends every session of `user_id`; returns how many ended.
    pub async fn end_all(&self, user_id: &str) -> Result<u32, IdpError> {
        let n = repo::delete_by_user(&self.db, user_id).await?;
        adjust_gauge(-count(n));
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// logout: ends every session of `user_id` and returns their public ids (to tell
    /// authz about each, `LoginFlow.SessionEnded`).
    pub async fn end_all_listed(&self, user_id: &str) -> Result<Vec<String>, IdpError> {
        let ids = repo::end_all_listed(&self.db, user_id, None, None).await?;
        adjust_gauge(-count(ids.len()));
        Ok(ids)
    }

    /// Live sessions in the database (all replicas').
    pub async fn count_alive(&self) -> Result<i64, IdpError> {
        let now = self.clock.unix();
        Ok(repo::count_alive(&self.db, now, self.idle_cutoff(now)).await?)
    }

    /// Deletes expired and idled-out sessions; returns how many.
    pub async fn purge(&self) -> Result<usize, IdpError> {
        let now = self.clock.unix();
        Ok(repo::purge(&self.db, now, self.idle_cutoff(now)).await?)
    }

    /// Sets the `idp_sessions_active` gauge from the database: a count over every live
    /// session, so only [`Sessions::spawn_upkeep`] runs it, never a sign-in or a logout.
    async fn publish_gauge(&self) {
        match self.count_alive().await {
            #[allow(clippy::cast_precision_loss)]
            Ok(n) => metrics::gauge!("idp_sessions_active").set(n as f64),
            Err(e) => tracing::warn!(error = %e, "cannot count sessions"),
        }
    }

    /// Every `every` until `stop`: purges dead sessions and sets the gauge from the
    /// database (which also picks up sessions other replicas started or ended, and those
    /// that expired). In between, sign-ins and logouts move it by their own count.
    pub fn spawn_upkeep(&self, every: Duration, stop: impl Future<Output = ()> + Send + 'static) {
        let sessions = self.clone();
        runtime::spawn_periodic(
            "session upkeep",
            every,
            runtime::FirstRun::Immediately,
            stop,
            move || {
                let sessions = sessions.clone();
                async move {
                    match sessions.purge().await {
                        Ok(0) => {}
                        Ok(n) => tracing::debug!(purged = n, "expired sessions deleted"),
                        Err(e) => tracing::warn!(error = %e, "cannot purge sessions"),
                    }
                    sessions.publish_gauge().await;
                }
            },
        );
    }
}

/// Moves the `idp_sessions_active` gauge by what this replica just started (+) or ended
/// (-). A sign-in must not count the sessions table: that count reads every live session,
/// so a sign-in's cost would grow with the number of people signed in.
fn adjust_gauge(delta: i64) {
    #[allow(clippy::cast_precision_loss)]
    metrics::gauge!("idp_sessions_active").increment(delta as f64);
}

/// A row count as a gauge step.
fn count(rows: usize) -> i64 {
    i64::try_from(rows).unwrap_or(i64::MAX)
}
