//! The authorization-flow service: decides an authorization request (a code at once, or
//! idp's login or consent page), keeps authz's browser sessions, and issues single-use
//! codes. `challenges.rs` holds the `LoginFlow` answers from idp, `resume.rs` the
//! browser's return from idp.

use std::net::IpAddr;
use std::sync::Arc;

use domain::{Prompt, ScopeSet, with_query};
use storage::{Database, StorageError};
use tracing::instrument;

use super::admission::PerAddress;
use super::error::AuthorizeError;
use super::model::{
    AuthorizationRequest, FlowCookie, Outcome, SessionCookie, Step, flow_cookie_name,
};
use super::repo::{self, CodeRow, Pending, SessionRow, StoredLogin, StoredRequest, stage};
use crate::clients::{Client, Clients};
use crate::config::AuthzConfig;
use crate::error::Failure;
use crate::idp::Idp;
use crate::tokens::{Tokens, lookup_key};

/// The authorization-flow service.
pub(crate) struct Flow {
    pub(super) db: Database,
    pub(super) clients: Arc<Clients>,
    pub(super) tokens: Arc<Tokens>,
    idp: Arc<Idp>,
    pub(super) settings: Settings,
    per_address: PerAddress,
}

/// The flow's configuration, fixed at start.
pub(super) struct Settings {
    code_ttl: i64,
    pub(super) request_ttl: i64,
    unresumed_ttl: i64,
    max_pending: i64,
    pub(super) session_ttl: i64,
    login_url: String,
    pub(super) consent_url: String,
    /// Where idp sends the browser back (`/authorize/resume` under the issuer).
    pub(super) resume_url: String,
    idp_client_id: String,
}

fn secs(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 4)
}

/// How far in the future idp's clock may put an `auth_time`.
pub(super) const AUTH_TIME_SKEW: i64 = 60;

/// Whether scopes can be granted without asking the End-User.
pub(super) enum Consent {
    /// Yes: these scopes.
    Granted(ScopeSet),
    /// No: idp must show the consent page.
    Ask,
}

impl Flow {
    /// The service, configured from the `authorize`, `login` and `idp` sections;
    /// `resume_url` is where idp sends the browser back after answering a challenge (the
    /// edge's `/authorize/resume`, as an absolute URL).
    pub(crate) fn new(
        db: Database,
        clients: Arc<Clients>,
        tokens: Arc<Tokens>,
        idp: Arc<Idp>,
        config: &AuthzConfig,
        resume_url: String,
    ) -> Self {
        Self {
            db,
            clients,
            tokens,
            idp,
            settings: Settings {
                code_ttl: secs(config.authorize.code_ttl),
                request_ttl: secs(config.authorize.request_ttl),
                unresumed_ttl: secs(config.authorize.unresumed_ttl)
                    .min(secs(config.authorize.request_ttl)),
                max_pending: i64::try_from(config.authorize.max_pending_requests)
                    .unwrap_or(i64::MAX),
                session_ttl: secs(config.login.session_ttl),
                login_url: config.idp.page("/login"),
                consent_url: config.idp.page("/consent"),
                resume_url,
                idp_client_id: config.login.idp_client_id.clone(),
            },
            per_address: PerAddress::new(config.authorize.pending_requests_per_address),
        }
    }

    /// The client idp must authenticate as on `LoginFlow`.
    pub(crate) fn idp_client_id(&self) -> &str {
        &self.settings.idp_client_id
    }

    /// Lifetime of the `authz_session` cookie, seconds.
    pub(crate) fn session_ttl(&self) -> i64 {
        self.settings.session_ttl
    }

    /// Lifetime of a flow cookie, seconds.
    pub(crate) fn request_ttl(&self) -> i64 {
        self.settings.request_ttl
    }

    /// The browser session named by the `authz_session` cookie, if idp confirms its own
    /// session is still alive for the same user (`Sessions.CheckSession`). A session that
    /// is gone is deleted and its cookie cleared.
    ///
    /// With `confirm` false the unexpired row is returned without asking idp: for a request
    /// that refuses every session (`prompt=login`, `max_age=0`), where the session can only
    /// name the subject to hint, a CheckSession round trip could not change the answer.
    async fn live_session(
        &self,
        cookie: Option<&str>,
        confirm: bool,
    ) -> Result<(Option<SessionRow>, SessionCookie), Failure> {
        let Some(cookie) = cookie else {
            return Ok((None, SessionCookie::Keep));
        };
        let key = lookup_key(cookie);
        let now = self.tokens.now();
        let Some(row) = repo::session(&self.db, &key, now).await? else {
            return Ok((None, SessionCookie::Clear));
        };
        if !confirm {
            return Ok((Some(row), SessionCookie::Keep));
        }
        let idp = self.idp.check_session(&row.idp_session_id).await?;
        if idp.active && idp.subject == row.subject {
            return Ok((Some(row), SessionCookie::Keep));
        }
        repo::delete_session(&self.db, &key).await?;
        Ok((None, SessionCookie::Clear))
    }

    /// Decides a validated authorization request (OpenID Connect Core §3.1.2.2-§3.1.2.6):
    /// a code at once when the browser's session is alive, fresh enough for `max_age`, not
    /// overridden by `prompt=login`, and consent is remembered or not needed (first-party
    /// client); otherwise idp's login or consent page, or with `prompt=none` the error
    /// `login_required` / `consent_required`. A request that must be stored as pending is
    /// refused with [`AuthorizeError::Busy`] when `peer` (the TCP peer address; forwarding
    /// headers are not trusted) exceeded its per-minute allowance or the pending requests
    /// reached their cap.
    #[instrument(skip_all, fields(client_id = %request.client.id))]
    pub(crate) async fn authorize(
        &self,
        request: &AuthorizationRequest,
        session_cookie: Option<&str>,
        peer: Option<IpAddr>,
    ) -> Outcome {
        let confirm = !request.refuses_every_session();
        let (session, cookie) = match self.live_session(session_cookie, confirm).await {
            Ok(found) => found,
            Err(e) => {
                return Outcome {
                    step: Err(e.into()),
                    session: SessionCookie::Keep,
                };
            }
        };
        Outcome {
            step: self.decide(request, session.as_ref(), peer).await,
            session: cookie,
        }
    }

    async fn decide(
        &self,
        request: &AuthorizationRequest,
        session: Option<&SessionRow>,
        peer: Option<IpAddr>,
    ) -> Result<Step, AuthorizeError> {
        if request.prompt.select_account {
            return Err(AuthorizeError::AccountSelectionRequired);
        }
        let now = self.tokens.now();
        let usable = session.filter(|s| {
            request
                .hinted_subject
                .as_deref()
                .is_none_or(|hinted| hinted == s.subject)
        });
        let fresh = usable.filter(|s| {
            !request.refuses_every_session()
                && request.max_age.is_none_or(|max| now - s.auth_time <= max)
        });
        let Some(session) = fresh else {
            if request.prompt.none {
                return Err(AuthorizeError::LoginRequired);
            }
            let subject_hint = request
                .hinted_subject
                .clone()
                .or_else(|| session.map(|s| s.subject.clone()))
                .unwrap_or_default();
            self.admit(peer, now).await?;
            return Ok(self
                .pending(request, stage::LOGIN, subject_hint, None, now)
                .await?);
        };
        match self
            .consent(
                &request.client,
                &session.subject,
                &request.scope,
                request.prompt,
            )
            .await?
        {
            Consent::Granted(granted) => {
                let (code, row) = self.new_code(CodeInput {
                    client: &request.client,
                    redirect_uri: &request.reply_to.redirect_uri,
                    code_challenge: request.code_challenge.as_str(),
                    nonce: request.nonce.as_deref(),
                    scope: &granted,
                    subject: &session.subject,
                    sid: &session.sid,
                    auth_time: session.auth_time,
                    amr: &session.amr,
                    acr: &session.acr,
                })?;
                repo::insert_code(&self.db, &row).await?;
                Ok(Step::Code(code))
            }
            Consent::Ask if request.prompt.none => Err(AuthorizeError::ConsentRequired),
            Consent::Ask => {
                self.admit(peer, now).await?;
                Ok(self
                    .pending(
                        request,
                        stage::CONSENT,
                        session.subject.clone(),
                        Some(session),
                        now,
                    )
                    .await?)
            }
        }
    }

    /// Whether a new pending request may be stored: `peer` within its per-minute allowance
    /// (an unknown peer, e.g. a Unix socket, is not limited per address), and fewer than
    /// `authorize.max_pending_requests` unexpired pending requests. The count and the
    /// insert are not one transaction: concurrent requests can overshoot the cap by at most
    /// their number, which the per-address limit and the HTTP worker count bound.
    async fn admit(&self, peer: Option<IpAddr>, now: i64) -> Result<(), AuthorizeError> {
        if let Some(addr) = peer
            && !self.per_address.admit(addr, now)
        {
            metrics::counter!("authorize_pending_refused_total", "reason" => "per_address")
                .increment(1);
            return Err(AuthorizeError::Busy(
                "too many sign-in requests from this address; try again in a minute",
            ));
        }
        if repo::count_pending(&self.db, now).await? >= self.settings.max_pending {
            metrics::counter!("authorize_pending_refused_total", "reason" => "cap").increment(1);
            tracing::warn!("pending authorization requests at their cap: request refused");
            return Err(AuthorizeError::Busy(
                "too many sign-in requests are pending; try again later",
            ));
        }
        Ok(())
    }

    /// Whether the scopes can be granted without asking: first-party clients need no
    /// consent, other clients need a remembered grant covering every requested scope; with
    /// `prompt=consent` the user is always asked.
    pub(super) async fn consent(
        &self,
        client: &Client,
        subject: &str,
        requested: &ScopeSet,
        prompt: Prompt,
    ) -> Result<Consent, StorageError> {
        if prompt.consent {
            return Ok(Consent::Ask);
        }
        if client.first_party {
            return Ok(Consent::Granted(requested.clone()));
        }
        let remembered = self.remembered(subject, client.id.as_str()).await?;
        if requested.is_subset(&remembered) {
            Ok(Consent::Granted(requested.clone()))
        } else {
            Ok(Consent::Ask)
        }
    }

    /// The scopes `subject` granted `client_id` before and asked to be remembered.
    pub(super) async fn remembered(
        &self,
        subject: &str,
        client_id: &str,
    ) -> Result<ScopeSet, StorageError> {
        let stored = repo::consent(&self.db, subject, client_id).await?;
        Ok(stored
            .and_then(|s| ScopeSet::parse(&s).ok())
            .unwrap_or_default())
    }

    /// Stores a pending request at `stage` (login, or consent for a known session) with a
    /// fresh challenge and flow cookie, and points the browser at idp.
    async fn pending(
        &self,
        request: &AuthorizationRequest,
        at: &'static str,
        subject_hint: String,
        session: Option<&SessionRow>,
        now: i64,
    ) -> Result<Step, Failure> {
        let id = self.tokens.random(16)?;
        let challenge = self.tokens.opaque_token()?;
        let flow = self.tokens.opaque_token()?;
        let row = Pending {
            browser_hash: lookup_key(&flow),
            stage: at.to_owned(),
            challenge_hash: Some(lookup_key(&challenge)),
            client_id: request.client.id.as_str().to_owned(),
            request: StoredRequest {
                redirect_uri: request.reply_to.redirect_uri.clone(),
                response_mode: request.reply_to.mode.as_str().to_owned(),
                state: request.reply_to.state.clone(),
                nonce: request.nonce.clone(),
                scope: request.scope.to_string(),
                code_challenge: request.code_challenge.as_str().to_owned(),
                prompt: request.prompt.to_string(),
                max_age: request.max_age,
                login_hint: request.login_hint.clone(),
                ui_locales: request.ui_locales.join(" "),
                acr_values: request.acr_values.join(" "),
                subject_hint,
            },
            login: session.map(|s| StoredLogin {
                subject: s.subject.clone(),
                idp_session_id: s.idp_session_id.clone(),
                auth_time: s.auth_time,
                amr: s.amr.clone(),
                acr: s.acr.clone(),
                sid: Some(s.sid.clone()),
            }),
            granted_scope: None,
            error: None,
            error_description: None,
            created_at: now,
            // Until idp reads the challenge (the browser reached its page), the row lives
            // only `unresumed_ttl`; reading it extends it to `request_ttl` (challenges.rs).
            expires_at: now + self.settings.unresumed_ttl,
            id,
        };
        repo::insert_request(&self.db, &row).await?;
        let page = if at == stage::LOGIN {
            (&self.settings.login_url, "login_challenge")
        } else {
            (&self.settings.consent_url, "consent_challenge")
        };
        let mut query = vec![(page.1, challenge.as_str())];
        // upstream sign-in: idp redirects to the provider named by kc_idp_hint.
        if at == stage::LOGIN && !request.idp_hint.is_empty() {
            query.push(("kc_idp_hint", request.idp_hint.as_str()));
        }
        Ok(Step::Idp {
            location: with_query(page.0, &query),
            flow: Some(FlowCookie {
                name: flow_cookie_name(&row.id),
                value: flow,
            }),
        })
    }

    /// A new code for `input` and the row to store (by digest) before it is handed out.
    pub(super) fn new_code(&self, input: CodeInput<'_>) -> Result<(String, CodeRow), Failure> {
        let code = self.tokens.opaque_token()?;
        let now = self.tokens.now();
        let row = CodeRow {
            code_hash: lookup_key(&code),
            client_id: input.client.id.as_str().to_owned(),
            redirect_uri: input.redirect_uri.to_owned(),
            code_challenge: input.code_challenge.to_owned(),
            nonce: input.nonce.map(str::to_owned),
            scope: input.scope.to_string(),
            subject: input.subject.to_owned(),
            sid: input.sid.to_owned(),
            auth_time: input.auth_time,
            amr: input.amr.to_owned(),
            acr: input.acr.to_owned(),
            issued_at: now,
            expires_at: now + self.settings.code_ttl,
            redeemed_at: None,
            grant_id: None,
        };
        Ok((code, row))
    }

    /// The browser session named by an `authz_session` cookie (unexpired), for logout.
    pub(crate) async fn session_by_cookie(
        &self,
        cookie: &str,
    ) -> Result<Option<SessionRow>, StorageError> {
        repo::session(&self.db, &lookup_key(cookie), self.tokens.now()).await
    }

    /// The browser session with public id `sid`, for logout with an `id_token_hint`.
    pub(crate) async fn session_by_sid(
        &self,
        sid: &str,
    ) -> Result<Option<SessionRow>, StorageError> {
        repo::session_by_sid(&self.db, sid).await
    }

    /// Ends an authz browser session (RP-Initiated Logout 1.0 §2): first idp's session
    /// behind it (`Sessions.EndSession`), then authz's own. When idp cannot be reached
    /// nothing is changed, so the End-User can try again and is not left signed in at idp
    /// while believing to be signed out.
    #[instrument(skip_all)]
    pub(crate) async fn end_session(&self, session: &SessionRow) -> Result<(), Failure> {
        self.idp.end_session(&session.idp_session_id).await?;
        Ok(repo::delete_session(&self.db, &session.session_key).await?)
    }

    /// Deletes expired pending requests, sessions and unredeemed codes.
    pub(crate) async fn purge_expired(&self) -> Result<usize, StorageError> {
        repo::purge_expired(&self.db, self.tokens.now()).await
    }
}

/// What a code is bound to.
pub(super) struct CodeInput<'a> {
    pub(super) client: &'a Client,
    pub(super) redirect_uri: &'a str,
    pub(super) code_challenge: &'a str,
    pub(super) nonce: Option<&'a str>,
    pub(super) scope: &'a ScopeSet,
    pub(super) subject: &'a str,
    pub(super) sid: &'a str,
    pub(super) auth_time: i64,
    pub(super) amr: &'a str,
    pub(super) acr: &'a str,
}
