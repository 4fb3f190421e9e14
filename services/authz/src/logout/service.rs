//! logout: queueing back-channel logout tokens when a session ends, delivering them in the
//! background, and the front-channel logout URIs of a session.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use storage::{Database, StorageError};
use tokio::sync::{Notify, Semaphore};
use tracing::instrument;

use super::repo::{self, DeliveryRow};
use super::token::{self, LogoutClaims};
use crate::clients::Clients;
use crate::config::LogoutConfig;
use crate::error::Failure;
use crate::grants::Grants;
use crate::tokens::Tokens;

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 4)
}

/// Logout propagation (OpenID Connect Back-Channel Logout 1.0, Front-Channel Logout 1.0).
pub(crate) struct Logouts {
    db: Database,
    clients: Arc<Clients>,
    tokens: Arc<Tokens>,
    grants: Arc<Grants>,
    config: LogoutConfig,
    http: reqwest::Client,
    /// Wakes this replica's worker when a logout was queued here.
    wake: Notify,
    /// The earliest retry this replica scheduled and has not yet looked for (Unix
    /// seconds; `i64::MAX`: none), so the worker wakes for it rather than polling often.
    next_retry: AtomicI64,
}

/// What [`Logouts::idp_session_ended`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct IdpSessionEnded {
    /// authz browser sessions deleted.
    pub(crate) sessions: usize,
    /// Grants revoked.
    pub(crate) grants: usize,
    /// Logout tokens queued.
    pub(crate) queued: usize,
}

/// How one delivery attempt ended.
enum Outcome {
    /// 2xx (§2.8: "If the logout succeeded, the RP MUST respond with HTTP 200 OK").
    Delivered,
    /// The receiver refused the token (a 4xx other than 408/429): trying again would not
    /// help.
    Refused(String),
    /// Not delivered now (network error, timeout, 5xx, 408, 429, redirect): try again.
    Failed(String),
}

impl Logouts {
    /// The service; the worker starts with [`Logouts::spawn_worker`].
    pub(crate) fn new(
        db: Database,
        clients: Arc<Clients>,
        tokens: Arc<Tokens>,
        grants: Arc<Grants>,
        config: &LogoutConfig,
    ) -> Result<Self, Failure> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            // A logout token goes where the client registered it, nowhere else.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("authz back-channel logout")
            .build()
            .map_err(Failure::internal)?;
        Ok(Self {
            db,
            clients,
            tokens,
            grants,
            config: config.clone(),
            http,
            wake: Notify::new(),
            next_retry: AtomicI64::new(i64::MAX),
        })
    }

    /// Back-Channel Logout 1.0 §2.7: authz browser session `sid` ended, so every client
    /// that had tokens in it and registered a `backchannel_logout_uri` gets a logout token.
    /// Only queues (one transaction, up to `logout.max_queued`) and wakes the worker: the
    /// logout never waits for a receiver. Returns how many deliveries were queued; a
    /// failure to queue is logged and counted, never passed on (the session has ended).
    #[instrument(skip_all)]
    pub(crate) async fn session_ended(&self, sid: &str) -> usize {
        match self.queue(sid).await {
            Ok((queued, dropped)) => {
                if queued > 0 {
                    metrics::counter!("backchannel_logout_total", "result" => "queued")
                        .increment(queued as u64);
                    self.wake.notify_one();
                }
                if dropped > 0 {
                    metrics::counter!("backchannel_logout_total", "result" => "dropped")
                        .increment(dropped as u64);
                    tracing::warn!(
                        dropped,
                        max_queued = self.config.max_queued,
                        "back-channel logout queue full: logout not propagated"
                    );
                }
                queued
            }
            Err(e) => {
                metrics::counter!("backchannel_logout_total", "result" => "dropped").increment(1);
                tracing::warn!(error = %e, "back-channel logout not queued");
                0
            }
        }
    }

    async fn queue(&self, sid: &str) -> Result<(usize, usize), Failure> {
        let now = self.tokens.now();
        let mut rows = Vec::new();
        for (client_id, subject) in repo::session_clients(&self.db, sid).await? {
            let Some(client) = self.clients.find(&client_id).await? else {
                continue;
            };
            let Some(uri) = &client.backchannel_logout_uri else {
                continue;
            };
            rows.push(DeliveryRow {
                id: self.tokens.random(16)?,
                client_id,
                uri: uri.clone(),
                subject,
                sid: sid.to_owned(),
                jti: self.tokens.random(16)?,
                attempts: 0,
                next_attempt_at: now,
                created_at: now,
                expires_at: now.saturating_add(secs(self.config.max_age)),
                last_error: None,
            });
        }
        let (queued, total) =
            repo::enqueue(&self.db, &rows, i64::from(self.config.max_queued)).await?;
        if !rows.is_empty() {
            #[allow(clippy::cast_precision_loss)]
            metrics::gauge!("backchannel_logout_queued").set(total as f64);
        }
        Ok((queued, rows.len() - queued))
    }

    /// Front-Channel Logout 1.0 §2-§4: the `frontchannel_logout_uri` of every client that
    /// had tokens in session `sid`, each with `iss` and `sid` added as query parameters
    /// (always: authz advertises `frontchannel_logout_session_supported`).
    pub(crate) async fn frontchannel_uris(&self, sid: &str) -> Result<Vec<String>, Failure> {
        let mut uris = Vec::new();
        for (client_id, _) in repo::session_clients(&self.db, sid).await? {
            if let Some(client) = self.clients.find(&client_id).await?
                && let Some(uri) = &client.frontchannel_logout_uri
            {
                uris.push(domain::with_query(
                    uri,
                    &[("iss", self.tokens.issuer()), ("sid", sid)],
                ));
            }
        }
        Ok(uris)
    }

    /// `LoginFlow.SessionEnded`: idp session `idp_session_id` ended on idp's side. Each
    /// authz browser session backed by it is deleted, its grants are revoked except those
    /// with `offline_access` (Back-Channel Logout 1.0 §2.7, OpenID Connect Core §11), and
    /// its clients' logout tokens are queued ([`Logouts::session_ended`]).
    #[instrument(skip_all)]
    pub(crate) async fn idp_session_ended(
        &self,
        idp_session_id: &str,
    ) -> Result<IdpSessionEnded, Failure> {
        let mut ended = IdpSessionEnded::default();
        for (key, sid) in repo::sessions_of_idp_session(&self.db, idp_session_id).await? {
            if repo::delete_browser_session(&self.db, &key).await? {
                ended.sessions += 1;
            }
            ended.grants += self.grants.revoke_session(&sid).await?;
            ended.queued += self.session_ended(&sid).await;
        }
        tracing::info!(
            sessions = ended.sessions,
            grants = ended.grants,
            logout_tokens = ended.queued,
            "idp session ended"
        );
        Ok(ended)
    }

    /// The `sid`s of `subject`'s authz browser sessions.
    pub(crate) async fn sids_of_subject(&self, subject: &str) -> Result<Vec<String>, StorageError> {
        repo::sids_of_subject(&self.db, subject).await
    }

    /// Deletes deliveries older than `logout.max_age` and refreshes the
    /// `backchannel_logout_queued` gauge.
    pub(crate) async fn purge_expired(&self) -> Result<usize, StorageError> {
        let purged = repo::purge_expired(&self.db, self.tokens.now()).await?;
        #[allow(clippy::cast_precision_loss)]
        metrics::gauge!("backchannel_logout_queued").set(repo::queued(&self.db).await? as f64);
        Ok(purged)
    }

    /// Starts the delivery worker: until `stop`, every `logout.poll_interval` (or at once
    /// when a logout was queued on this replica) it claims the due deliveries, as many as
    /// `logout.concurrency` allows, and attempts each in its own task, so a slow receiver
    /// holds up no other.
    pub(crate) fn spawn_worker(self: &Arc<Self>, stop: impl Future<Output = ()> + Send + 'static) {
        let this = Arc::clone(self);
        let permits = Arc::new(Semaphore::new(
            usize::try_from(self.config.concurrency).unwrap_or(1),
        ));
        tokio::spawn(async move {
            tokio::pin!(stop);
            loop {
                this.deliver_due(&permits).await;
                let pause = this.pause();
                tokio::select! {
                    biased;
                    () = &mut stop => break,
                    () = this.wake.notified() => {}
                    () = tokio::time::sleep(pause) => {}
                }
            }
        });
    }

    /// How long the worker sleeps: until the earliest retry scheduled here, at most
    /// `logout.poll_interval` (which also picks up other replicas' deliveries).
    fn pause(&self) -> Duration {
        let next = self.next_retry.load(Ordering::SeqCst);
        let wait = next.saturating_sub(self.tokens.now()).max(0);
        Duration::from_secs(u64::try_from(wait).unwrap_or(0)).min(self.config.poll_interval)
    }

    async fn deliver_due(self: &Arc<Self>, permits: &Arc<Semaphore>) {
        let free = permits.available_permits();
        if free == 0 {
            return;
        }
        let now = self.tokens.now();
        // A retry hint that is due now is served by this round.
        let _ = self
            .next_retry
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| {
                (v <= now).then_some(i64::MAX)
            });
        // The lease outlasts one attempt (sign, POST within the timeout, record).
        let lease_until = now + secs(self.config.timeout) + 30;
        let claimed =
            match repo::claim_due(&self.db, now, lease_until, i64::try_from(free).unwrap_or(1))
                .await
            {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the back-channel logout queue");
                    return;
                }
            };
        for row in claimed {
            let Ok(permit) = Arc::clone(permits).acquire_owned().await else {
                return;
            };
            let this = Arc::clone(self);
            tokio::spawn(async move {
                this.attempt(row).await;
                drop(permit);
            });
        }
    }

    /// One attempt of one delivery, with its bookkeeping: removed when delivered, refused
    /// or out of attempts or time; otherwise rescheduled after
    /// `initial_backoff * 2^(attempts - 1)` (at most `max_backoff`).
    #[instrument(skip_all, fields(client_id = %row.client_id))]
    async fn attempt(&self, row: DeliveryRow) {
        // The backoff counts from the attempt's start, so its length does not shift it.
        let now = self.tokens.now();
        let outcome = self.post(&row).await;
        let attempts = row.attempts.saturating_add(1);
        let result = match outcome {
            Outcome::Delivered => {
                metrics::counter!("backchannel_logout_total", "result" => "delivered").increment(1);
                tracing::info!(attempts, "logout token delivered");
                repo::remove(&self.db, &row.id).await
            }
            Outcome::Refused(why) => {
                metrics::counter!("backchannel_logout_total", "result" => "refused").increment(1);
                tracing::warn!(attempts, error = %why, "logout token refused by the client");
                repo::remove(&self.db, &row.id).await
            }
            Outcome::Failed(why) => {
                let next = now.saturating_add(self.backoff(attempts));
                if u32::try_from(attempts).unwrap_or(u32::MAX) >= self.config.max_attempts
                    || next >= row.expires_at
                {
                    metrics::counter!("backchannel_logout_total", "result" => "given_up")
                        .increment(1);
                    tracing::warn!(attempts, error = %why, "logout token not delivered: giving up");
                    repo::remove(&self.db, &row.id).await
                } else {
                    metrics::counter!("backchannel_logout_total", "result" => "retry").increment(1);
                    tracing::info!(
                        attempts,
                        error = %why,
                        retry_in = next - now,
                        "logout token not delivered: will retry"
                    );
                    let result = repo::reschedule(&self.db, &row.id, attempts, next, &why).await;
                    self.next_retry.fetch_min(next, Ordering::SeqCst);
                    self.wake.notify_one();
                    result
                }
            }
        };
        if let Err(e) = result {
            // The lease runs out and another attempt follows.
            tracing::warn!(error = %e, "cannot record a back-channel logout attempt");
        }
    }

    /// Seconds to wait after the `attempts`-th failed attempt.
    fn backoff(&self, attempts: i32) -> i64 {
        let shift = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
        secs(self.config.initial_backoff)
            .saturating_mul(1i64 << shift)
            .min(secs(self.config.max_backoff))
    }

    /// Signs a fresh logout token (§2.4, with the client's algorithm and authz's current
    /// key) and POSTs it as `logout_token` (§2.5).
    async fn post(&self, row: &DeliveryRow) -> Outcome {
        let client = match self.clients.find(&row.client_id).await {
            Ok(Some(client)) => client,
            Ok(None) => return Outcome::Refused("the client no longer exists".into()),
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        let claims = token::claims(&LogoutClaims {
            issuer: self.tokens.issuer(),
            client_id: &row.client_id,
            subject: &row.subject,
            sid: &row.sid,
            jti: &row.jti,
            now: self.tokens.now(),
            ttl: secs(self.config.token_ttl),
        });
        let logout_token = match self
            .tokens
            .sign(self.tokens.alg_for(&client), token::TYP, &claims)
            .await
        {
            Ok(t) => t,
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        let sent = self
            .http
            .post(&row.uri)
            .header(reqwest::header::CACHE_CONTROL, "no-store")
            .form(&[("logout_token", logout_token.as_str())])
            .send()
            .await;
        match sent {
            Ok(res) if res.status().is_success() => Outcome::Delivered,
            Ok(res) => {
                let status = res.status();
                let why = format!("HTTP {}", status.as_u16());
                if status.is_client_error()
                    && status != reqwest::StatusCode::REQUEST_TIMEOUT
                    && status != reqwest::StatusCode::TOO_MANY_REQUESTS
                {
                    Outcome::Refused(why)
                } else {
                    Outcome::Failed(why)
                }
            }
            Err(e) if e.is_timeout() => Outcome::Failed("timed out".into()),
            Err(e) if e.is_connect() => Outcome::Failed("cannot connect".into()),
            Err(_) => Outcome::Failed("request failed".into()),
        }
    }
}
