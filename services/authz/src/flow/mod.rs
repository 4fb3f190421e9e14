//! The authorization code flow up to the code (RFC 6749 §4.1.1-§4.1.2, OpenID Connect
//! Core §3.1.2): login and consent delegated to idp over `authz.v1.LoginFlow`, authz's own
//! browser session for SSO and `prompt=none`, remembered consent, and single-use codes.
//!
//! A request that needs a page is stored as a pending request, bound to the browser by a
//! flow cookie (`authz_flow_<request id>`, holding a secret whose digest is stored) and
//! announced to idp by a single-use challenge (stored as a digest, expiring with the
//! request). idp answers the challenge over gRPC; the browser then comes back to
//! `/authorize/resume?request=<id>`, where authz checks the flow cookie and either asks
//! for consent (a new challenge) or finishes: a code, or the error idp chose.
//! Transport-neutral: the HTTP and gRPC edges call these functions.

pub(crate) mod repo;

use std::sync::Arc;

use domain::{
    CodeChallenge, ErrorCode, OAuthError, Prompt, ResponseMode, ScopeSet, constant_time_eq,
};
use storage::{Database, StorageError};
use tracing::instrument;

use self::repo::{CodeRow, Pending, SessionRow, StoredLogin, StoredRequest, stage};
use crate::clients::{Client, Clients};
use crate::config::AuthzConfig;
use crate::idp::{Idp, IdpError};
use crate::tokens::{Tokens, lookup_key, server_error, storage_error};

/// Longest accepted `state`, `nonce`, `login_hint` and similar free-text parameters.
pub(crate) const MAX_PARAM_LEN: usize = 2048;

/// A validated authorization request: the client and redirect URI are trusted, and every
/// other parameter is well-formed and allowed for the client.
#[derive(Debug)]
pub(crate) struct AuthorizationRequest {
    /// The client.
    pub(crate) client: Arc<Client>,
    /// Where the response goes.
    pub(crate) reply_to: ReplyTo,
    /// OpenID Connect `nonce`, copied into the ID token (Core §3.1.2.1).
    pub(crate) nonce: Option<String>,
    /// Requested scopes, all allowed for the client.
    pub(crate) scope: ScopeSet,
    /// PKCE S256 challenge (RFC 7636 §4.3).
    pub(crate) code_challenge: CodeChallenge,
    /// `prompt`.
    pub(crate) prompt: Prompt,
    /// `max_age` in seconds.
    pub(crate) max_age: Option<i64>,
    /// `login_hint`, passed to idp.
    pub(crate) login_hint: String,
    /// `ui_locales`, passed to idp.
    pub(crate) ui_locales: Vec<String>,
    /// `acr_values`, passed to idp.
    pub(crate) acr_values: Vec<String>,
    /// `sub` of a valid `id_token_hint`.
    pub(crate) hinted_subject: Option<String>,
}

/// Where and how the authorization response is delivered (RFC 6749 §4.1.2): the exact
/// redirect URI of the request, the response mode, and the `state` to echo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReplyTo {
    /// The redirect URI as sent in the request (it matched a registered one).
    pub(crate) redirect_uri: String,
    /// `query` or `form_post`.
    pub(crate) mode: ResponseMode,
    /// `state`, echoed in every response.
    pub(crate) state: Option<String>,
}

/// The flow cookie binding a pending request to the browser that started it.
pub(crate) struct FlowCookie {
    /// `authz_flow_<request id>`.
    pub(crate) name: String,
    /// The secret (only its digest is stored).
    pub(crate) value: String,
}

impl std::fmt::Debug for FlowCookie {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowCookie")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// What happens next in the browser. No `Debug`: it holds a code.
pub(crate) enum Step {
    /// Go to idp's login or consent page.
    Idp {
        /// The page, with its challenge.
        location: String,
        /// The flow cookie to set when the request is new (a resumed request has one).
        flow: Option<FlowCookie>,
    },
    /// Deliver this authorization code to the client.
    Code(String),
}

/// What to do with the `authz_session` cookie. No `Debug`: it may hold a cookie value.
pub(crate) enum SessionCookie {
    /// Leave it as it is.
    Keep,
    /// Set it to this value (a new session).
    Set(String),
    /// Delete it (the session it named is gone).
    Clear,
}

/// The result of `/authorize` or of `/authorize/resume` once the client's redirect URI is
/// trusted: the next step or an error for the client, plus cookie changes.
pub(crate) struct Outcome {
    /// The step, or the error to send to the client's redirect URI.
    pub(crate) step: Result<Step, OAuthError>,
    /// The session cookie.
    pub(crate) session: SessionCookie,
}

/// Why `/authorize/resume` cannot continue; shown on an error page, never redirected,
/// because the request (and so its redirect URI) is unknown or not this browser's.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ResumeError {
    /// Unknown, finished or expired request, or not the browser that started it.
    #[error("{0}")]
    Refused(&'static str),
    /// The database or idp failed.
    #[error("{0}")]
    Unavailable(OAuthError),
}

/// Why a `LoginFlow` call failed; mapped to a gRPC status at the edge.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FlowError {
    /// The challenge is unknown, expired or already answered.
    #[error("unknown, expired or already used challenge")]
    NotFound,
    /// An argument is invalid.
    #[error("{0}")]
    Invalid(String),
    /// The answer does not satisfy the request (e.g. no fresh login after `prompt=login`).
    #[error("{0}")]
    Precondition(String),
    /// Storage failure.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The view of a pending request idp needs to render its page.
#[derive(Debug)]
pub(crate) struct PendingRequest {
    /// The stored request.
    pub(crate) row: Pending,
    /// Its client.
    pub(crate) client: Arc<Client>,
    /// The scopes this user already granted this client (consent only).
    pub(crate) remembered: ScopeSet,
}

/// What idp reports in `AcceptLogin`.
#[derive(Debug)]
pub(crate) struct Login {
    /// `sub`.
    pub(crate) subject: String,
    /// idp's browser session id.
    pub(crate) idp_session_id: String,
    /// Time of the actual authentication.
    pub(crate) auth_time: i64,
    /// RFC 8176 methods.
    pub(crate) amr: Vec<String>,
    /// Authentication context class.
    pub(crate) acr: String,
}

/// The authorization-flow service.
pub(crate) struct Flow {
    db: Database,
    clients: Arc<Clients>,
    tokens: Arc<Tokens>,
    idp: Arc<Idp>,
    settings: Settings,
}

struct Settings {
    code_ttl: i64,
    request_ttl: i64,
    session_ttl: i64,
    login_url: String,
    consent_url: String,
    resume_url: String,
    idp_client_id: String,
}

fn secs(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 4)
}

/// How far in the future idp's clock may put an `auth_time`.
const AUTH_TIME_SKEW: i64 = 60;

enum Consent {
    Granted(ScopeSet),
    Ask,
}

impl Flow {
    /// The service, configured from the `authorize`, `login` and `idp` sections.
    pub(crate) fn new(
        db: Database,
        clients: Arc<Clients>,
        tokens: Arc<Tokens>,
        idp: Arc<Idp>,
        config: &AuthzConfig,
    ) -> Self {
        Self {
            db,
            clients,
            tokens,
            idp,
            settings: Settings {
                code_ttl: secs(config.authorize.code_ttl),
                request_ttl: secs(config.authorize.request_ttl),
                session_ttl: secs(config.login.session_ttl),
                login_url: config.idp.page("/login"),
                consent_url: config.idp.page("/consent"),
                resume_url: config.endpoint(crate::http::RESUME_PATH),
                idp_client_id: config.login.idp_client_id.clone(),
            },
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
    async fn live_session(
        &self,
        cookie: Option<&str>,
    ) -> Result<(Option<SessionRow>, SessionCookie), OAuthError> {
        let Some(cookie) = cookie else {
            return Ok((None, SessionCookie::Keep));
        };
        let key = lookup_key(cookie);
        let now = self.tokens.now();
        let Some(row) = repo::session(&self.db, &key, now)
            .await
            .map_err(storage_error)?
        else {
            return Ok((None, SessionCookie::Clear));
        };
        let idp = self
            .idp
            .check_session(&row.idp_session_id)
            .await
            .map_err(idp_error)?;
        if idp.active && idp.subject == row.subject {
            return Ok((Some(row), SessionCookie::Keep));
        }
        repo::delete_session(&self.db, &key)
            .await
            .map_err(storage_error)?;
        Ok((None, SessionCookie::Clear))
    }

    /// Decides a validated authorization request (OpenID Connect Core §3.1.2.2-§3.1.2.6):
    /// a code at once when the browser's session is alive, fresh enough for `max_age`, not
    /// overridden by `prompt=login`, and consent is remembered or not needed (first-party
    /// client); otherwise idp's login or consent page, or with `prompt=none` the error
    /// `login_required` / `consent_required`.
    #[instrument(skip_all, fields(client_id = %request.client.id))]
    pub(crate) async fn authorize(
        &self,
        request: &AuthorizationRequest,
        session_cookie: Option<&str>,
    ) -> Outcome {
        let (session, cookie) = match self.live_session(session_cookie).await {
            Ok(found) => found,
            Err(e) => {
                return Outcome {
                    step: Err(e),
                    session: SessionCookie::Keep,
                };
            }
        };
        Outcome {
            step: self.decide(request, session.as_ref()).await,
            session: cookie,
        }
    }

    async fn decide(
        &self,
        request: &AuthorizationRequest,
        session: Option<&SessionRow>,
    ) -> Result<Step, OAuthError> {
        if request.prompt.select_account {
            return Err(OAuthError::new(
                ErrorCode::AccountSelectionRequired,
                "this server does not offer account selection",
            ));
        }
        let now = self.tokens.now();
        let usable = session.filter(|s| {
            request
                .hinted_subject
                .as_deref()
                .is_none_or(|hinted| hinted == s.subject)
        });
        let fresh = usable.filter(|s| {
            !request.prompt.login && request.max_age.is_none_or(|max| now - s.auth_time <= max)
        });
        let Some(session) = fresh else {
            if request.prompt.none {
                return Err(OAuthError::new(
                    ErrorCode::LoginRequired,
                    "the End-User must log in",
                ));
            }
            let subject_hint = request
                .hinted_subject
                .clone()
                .or_else(|| session.map(|s| s.subject.clone()))
                .unwrap_or_default();
            return self
                .pending(request, stage::LOGIN, subject_hint, None, now)
                .await;
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
                repo::insert_code(&self.db, &row)
                    .await
                    .map_err(storage_error)?;
                Ok(Step::Code(code))
            }
            Consent::Ask if request.prompt.none => Err(OAuthError::new(
                ErrorCode::ConsentRequired,
                "the End-User must consent",
            )),
            Consent::Ask => {
                self.pending(
                    request,
                    stage::CONSENT,
                    session.subject.clone(),
                    Some(session),
                    now,
                )
                .await
            }
        }
    }

    /// Whether the scopes can be granted without asking: first-party clients need no
    /// consent, other clients need a remembered grant covering every requested scope; with
    /// `prompt=consent` the user is always asked.
    async fn consent(
        &self,
        client: &Client,
        subject: &str,
        requested: &ScopeSet,
        prompt: Prompt,
    ) -> Result<Consent, OAuthError> {
        if prompt.consent {
            return Ok(Consent::Ask);
        }
        if client.first_party {
            return Ok(Consent::Granted(requested.clone()));
        }
        let remembered = self
            .remembered(subject, client.id.as_str())
            .await
            .map_err(storage_error)?;
        if requested.is_subset(&remembered) {
            Ok(Consent::Granted(requested.clone()))
        } else {
            Ok(Consent::Ask)
        }
    }

    async fn remembered(&self, subject: &str, client_id: &str) -> Result<ScopeSet, StorageError> {
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
    ) -> Result<Step, OAuthError> {
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
            expires_at: now + self.settings.request_ttl,
            id,
        };
        repo::insert_request(&self.db, &row)
            .await
            .map_err(storage_error)?;
        let page = if at == stage::LOGIN {
            (&self.settings.login_url, "login_challenge")
        } else {
            (&self.settings.consent_url, "consent_challenge")
        };
        Ok(Step::Idp {
            location: with_query(page.0, &[(page.1, &challenge)]),
            flow: Some(FlowCookie {
                name: flow_cookie_name(&row.id),
                value: flow,
            }),
        })
    }

    fn new_code(&self, input: CodeInput<'_>) -> Result<(String, CodeRow), OAuthError> {
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

    /// The pending request `id` if the flow cookie proves this browser started it.
    async fn own_request(
        &self,
        id: &str,
        flow_cookie: Option<&str>,
    ) -> Result<(Pending, Arc<Client>), ResumeError> {
        let row = repo::request_by_id(&self.db, id)
            .await
            .map_err(|e| ResumeError::Unavailable(storage_error(e)))?
            .ok_or(ResumeError::Refused(
                "This sign-in request is unknown or already finished. Go back to the application and start again.",
            ))?;
        let presented = flow_cookie.map(lookup_key).unwrap_or_default();
        if !constant_time_eq(presented.as_bytes(), row.browser_hash.as_bytes()) {
            return Err(ResumeError::Refused(
                "This sign-in was started in another browser (or its cookie is gone). Go back to the application and start again.",
            ));
        }
        if row.expires_at <= self.tokens.now() {
            return Err(ResumeError::Refused(
                "This sign-in request has expired. Go back to the application and start again.",
            ));
        }
        let client = self
            .clients
            .find(&row.client_id)
            .await
            .map_err(|e| ResumeError::Unavailable(storage_error(e)))?
            .ok_or(ResumeError::Refused("The application no longer exists."))?;
        Ok((row, client))
    }

    /// `/authorize/resume`: the browser is back from idp. After an accepted login the
    /// authz session is created (or refreshed) and consent decided; after an accepted
    /// consent the code is issued; after a rejection the client gets idp's error. Each
    /// stage is finished by a conditional update, so a request yields at most one code.
    #[instrument(skip_all)]
    pub(crate) async fn resume(
        &self,
        id: &str,
        flow_cookie: Option<&str>,
        session_cookie: Option<&str>,
    ) -> Result<(ReplyTo, Outcome), ResumeError> {
        let (row, client) = self.own_request(id, flow_cookie).await?;
        let reply_to = ReplyTo {
            redirect_uri: row.request.redirect_uri.clone(),
            mode: if row.request.response_mode == ResponseMode::FormPost.as_str() {
                ResponseMode::FormPost
            } else {
                ResponseMode::Query
            },
            state: row.request.state.clone(),
        };
        let outcome = match row.stage.as_str() {
            stage::REJECTED => {
                if !repo::finish(&self.db, &row.id, stage::REJECTED, None)
                    .await
                    .map_err(|e| ResumeError::Unavailable(storage_error(e)))?
                {
                    return Err(already_finished());
                }
                let code = row
                    .error
                    .as_deref()
                    .and_then(|e| e.parse().ok())
                    .unwrap_or(ErrorCode::AccessDenied);
                Outcome {
                    step: Err(OAuthError::new(
                        code,
                        row.error_description.clone().unwrap_or_default(),
                    )),
                    session: SessionCookie::Keep,
                }
            }
            stage::LOGIN_ACCEPTED => self.after_login(&row, &client, session_cookie).await?,
            stage::CONSENT_ACCEPTED => Outcome {
                step: self.after_consent(&row, &client).await?,
                session: SessionCookie::Keep,
            },
            _ => {
                return Err(ResumeError::Refused(
                    "This sign-in is not finished yet. Complete it on the sign-in page.",
                ));
            }
        };
        Ok((reply_to, outcome))
    }

    async fn after_login(
        &self,
        row: &Pending,
        client: &Arc<Client>,
        session_cookie: Option<&str>,
    ) -> Result<Outcome, ResumeError> {
        let unavailable = ResumeError::Unavailable;
        let Some(login) = &row.login else {
            return Err(unavailable(server_error("accepted login without subject")));
        };
        let now = self.tokens.now();
        // The browser's current session: refreshed when it is the same login at idp,
        // replaced otherwise.
        let current = match session_cookie {
            Some(c) => repo::session(&self.db, &lookup_key(c), now)
                .await
                .map_err(|e| unavailable(storage_error(e)))?,
            None => None,
        };
        let (sid, cookie) = match current {
            Some(s) if s.subject == login.subject && s.idp_session_id == login.idp_session_id => {
                let updated = SessionRow {
                    auth_time: login.auth_time.max(s.auth_time),
                    amr: login.amr.clone(),
                    acr: login.acr.clone(),
                    ..s.clone()
                };
                repo::update_session(&self.db, &updated)
                    .await
                    .map_err(|e| unavailable(storage_error(e)))?;
                (s.sid, SessionCookie::Keep)
            }
            other => {
                let value = self.tokens.opaque_token().map_err(unavailable)?;
                let session = SessionRow {
                    session_key: lookup_key(&value),
                    sid: self.tokens.random(16).map_err(unavailable)?,
                    subject: login.subject.clone(),
                    idp_session_id: login.idp_session_id.clone(),
                    auth_time: login.auth_time,
                    amr: login.amr.clone(),
                    acr: login.acr.clone(),
                    created_at: now,
                    expires_at: now + self.settings.session_ttl,
                };
                repo::replace_session(
                    &self.db,
                    &session,
                    other.as_ref().map(|o| o.session_key.as_str()),
                )
                .await
                .map_err(|e| unavailable(storage_error(e)))?;
                (session.sid, SessionCookie::Set(value))
            }
        };
        let login = StoredLogin {
            sid: Some(sid),
            ..login.clone()
        };
        let requested = ScopeSet::parse(&row.request.scope).unwrap_or_default();
        let prompt = Prompt::parse(Some(&row.request.prompt)).unwrap_or_default();
        let step = match self
            .consent(client, &login.subject, &requested, prompt)
            .await
        {
            Err(e) => Err(e),
            Ok(Consent::Granted(granted)) => {
                self.finish_with_code(row, &login, client, stage::LOGIN_ACCEPTED, &granted)
                    .await?
            }
            Ok(Consent::Ask) => {
                let challenge = self.tokens.opaque_token().map_err(unavailable)?;
                if !repo::to_consent(&self.db, &row.id, now, &lookup_key(&challenge), &login)
                    .await
                    .map_err(|e| unavailable(storage_error(e)))?
                {
                    return Err(already_finished());
                }
                Ok(Step::Idp {
                    location: with_query(
                        &self.settings.consent_url,
                        &[("consent_challenge", &challenge)],
                    ),
                    flow: None,
                })
            }
        };
        Ok(Outcome {
            step,
            session: cookie,
        })
    }

    async fn after_consent(
        &self,
        row: &Pending,
        client: &Arc<Client>,
    ) -> Result<Result<Step, OAuthError>, ResumeError> {
        let Some(login) = &row.login else {
            return Err(ResumeError::Unavailable(server_error(
                "accepted consent without login",
            )));
        };
        let granted =
            ScopeSet::parse(row.granted_scope.as_deref().unwrap_or_default()).unwrap_or_default();
        self.finish_with_code(row, login, client, stage::CONSENT_ACCEPTED, &granted)
            .await
    }

    /// Issues the code of a pending request and deletes the request, in one transaction.
    async fn finish_with_code(
        &self,
        row: &Pending,
        login: &StoredLogin,
        client: &Arc<Client>,
        from_stage: &str,
        granted: &ScopeSet,
    ) -> Result<Result<Step, OAuthError>, ResumeError> {
        let (code, code_row) = self
            .new_code(CodeInput {
                client,
                redirect_uri: &row.request.redirect_uri,
                code_challenge: &row.request.code_challenge,
                nonce: row.request.nonce.as_deref(),
                scope: granted,
                subject: &login.subject,
                sid: login.sid.as_deref().unwrap_or_default(),
                auth_time: login.auth_time,
                amr: &login.amr,
                acr: &login.acr,
            })
            .map_err(ResumeError::Unavailable)?;
        if !repo::finish(&self.db, &row.id, from_stage, Some(&code_row))
            .await
            .map_err(|e| ResumeError::Unavailable(storage_error(e)))?
        {
            return Err(already_finished());
        }
        Ok(Ok(Step::Code(code)))
    }

    async fn pending_by_challenge(
        &self,
        challenge: &str,
        at: &str,
    ) -> Result<(Pending, Arc<Client>), FlowError> {
        if challenge.is_empty() {
            return Err(FlowError::Invalid("the challenge is required".into()));
        }
        let now = self.tokens.now();
        let row = repo::request_by_challenge(&self.db, &lookup_key(challenge), at, now)
            .await?
            .ok_or(FlowError::NotFound)?;
        let client = self
            .clients
            .find(&row.client_id)
            .await?
            .ok_or(FlowError::NotFound)?;
        Ok((row, client))
    }

    /// `GetLoginRequest`: the pending request behind an unanswered, unexpired login
    /// challenge.
    pub(crate) async fn login_request(&self, challenge: &str) -> Result<PendingRequest, FlowError> {
        let (row, client) = self.pending_by_challenge(challenge, stage::LOGIN).await?;
        Ok(PendingRequest {
            row,
            client,
            remembered: ScopeSet::default(),
        })
    }

    /// `GetConsentRequest`: the pending request behind an unanswered, unexpired consent
    /// challenge, with what the user granted this client before.
    pub(crate) async fn consent_request(
        &self,
        challenge: &str,
    ) -> Result<PendingRequest, FlowError> {
        let (row, client) = self.pending_by_challenge(challenge, stage::CONSENT).await?;
        let remembered = self
            .remembered(
                row.login.as_ref().map_or("", |l| l.subject.as_str()),
                &row.client_id,
            )
            .await?;
        Ok(PendingRequest {
            row,
            client,
            remembered,
        })
    }

    fn resume_url(&self, id: &str) -> String {
        with_query(&self.settings.resume_url, &[("request", id)])
    }

    /// `AcceptLogin`: records who logged in, once per challenge. The authentication must
    /// satisfy the request: after it was made for `prompt=login`, within `max_age`
    /// seconds before it otherwise (OpenID Connect Core §3.1.2.1).
    #[instrument(skip_all)]
    pub(crate) async fn accept_login(
        &self,
        challenge: &str,
        login: Login,
    ) -> Result<String, FlowError> {
        let now = self.tokens.now();
        if login.subject.is_empty() || login.subject.len() > 255 {
            return Err(FlowError::Invalid(
                "subject must be 1 to 255 characters".into(),
            ));
        }
        if login.idp_session_id.is_empty() || login.idp_session_id.len() > 255 {
            return Err(FlowError::Invalid(
                "session_id must be 1 to 255 characters".into(),
            ));
        }
        if login.auth_time <= 0 || login.auth_time > now + AUTH_TIME_SKEW {
            return Err(FlowError::Invalid(
                "auth_time must be the Unix time of the authentication".into(),
            ));
        }
        if login
            .amr
            .iter()
            .any(|m| m.is_empty() || m.contains(' ') || m.len() > 64)
        {
            return Err(FlowError::Invalid(
                "amr values must be non-empty words".into(),
            ));
        }
        if login.acr.contains(' ') || login.acr.len() > 255 {
            return Err(FlowError::Invalid("acr must be one word".into()));
        }
        let (row, _) = self.pending_by_challenge(challenge, stage::LOGIN).await?;
        let prompt = Prompt::parse(Some(&row.request.prompt)).unwrap_or_default();
        if !domain::authentication_is_fresh_enough(
            prompt,
            row.request.max_age,
            row.created_at,
            login.auth_time,
        ) {
            return Err(FlowError::Precondition(
                "the request needs a fresh authentication (prompt=login or max_age): auth_time is too old".into(),
            ));
        }
        let accepted = repo::accept_login(
            &self.db,
            &lookup_key(challenge),
            now,
            &StoredLogin {
                amr: login.amr.join(" "),
                subject: login.subject,
                idp_session_id: login.idp_session_id,
                auth_time: login.auth_time,
                acr: login.acr,
                sid: None,
            },
        )
        .await?;
        if !accepted {
            return Err(FlowError::NotFound);
        }
        Ok(self.resume_url(&row.id))
    }

    /// `RejectLogin` / `RejectConsent`: the client will get `error` (an OAuth or OpenID
    /// Connect authorization error code; `access_denied` when empty).
    #[instrument(skip_all)]
    pub(crate) async fn reject(
        &self,
        challenge: &str,
        consent: bool,
        error: &str,
        description: &str,
    ) -> Result<String, FlowError> {
        let code = if error.is_empty() {
            ErrorCode::AccessDenied
        } else {
            error
                .parse::<ErrorCode>()
                .ok()
                .filter(|c| REJECT_CODES.contains(c))
                .ok_or_else(|| {
                    FlowError::Invalid(format!(
                        "error must be one of: {}",
                        REJECT_CODES
                            .iter()
                            .map(|c| c.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?
        };
        let printable = description
            .chars()
            .all(|c| c == ' ' || (c.is_ascii_graphic() && c != '"' && c != '\\'));
        if description.len() > 512 || !printable {
            return Err(FlowError::Invalid(
                "error_description must be at most 512 printable ASCII characters without quotes or backslashes (RFC 6749 §4.1.2.1)".into(),
            ));
        }
        let at = if consent {
            stage::CONSENT
        } else {
            stage::LOGIN
        };
        let (row, _) = self.pending_by_challenge(challenge, at).await?;
        let now = self.tokens.now();
        if !repo::reject(
            &self.db,
            &lookup_key(challenge),
            at,
            now,
            code.as_str(),
            description,
        )
        .await?
        {
            return Err(FlowError::NotFound);
        }
        Ok(self.resume_url(&row.id))
    }

    /// `AcceptConsent`: the granted scopes (a subset of the requested ones), remembered for
    /// later requests of this client when `remember` is set.
    #[instrument(skip_all)]
    pub(crate) async fn accept_consent(
        &self,
        challenge: &str,
        granted: &[String],
        remember: bool,
    ) -> Result<String, FlowError> {
        let granted = ScopeSet::parse(&granted.join(" "))
            .map_err(|e| FlowError::Invalid(format!("granted_scopes: {e}")))?;
        let (row, _) = self.pending_by_challenge(challenge, stage::CONSENT).await?;
        let requested = ScopeSet::parse(&row.request.scope).unwrap_or_default();
        if !granted.is_subset(&requested) {
            return Err(FlowError::Invalid(format!(
                "granted_scopes must be a subset of the requested scopes; not requested: {}",
                granted.difference(&requested)
            )));
        }
        let subject = row
            .login
            .as_ref()
            .map(|l| l.subject.clone())
            .unwrap_or_default();
        let now = self.tokens.now();
        let accepted = repo::accept_consent(
            &self.db,
            &lookup_key(challenge),
            now,
            &granted,
            remember.then_some((subject.as_str(), row.client_id.as_str())),
        )
        .await?;
        if !accepted {
            return Err(FlowError::NotFound);
        }
        Ok(self.resume_url(&row.id))
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
    pub(crate) async fn end_session(&self, session: &SessionRow) -> Result<(), OAuthError> {
        self.idp
            .end_session(&session.idp_session_id)
            .await
            .map_err(idp_error)?;
        repo::delete_session(&self.db, &session.session_key)
            .await
            .map_err(storage_error)
    }

    /// Deletes expired pending requests, sessions and unredeemed codes.
    pub(crate) async fn purge_expired(&self) -> Result<usize, StorageError> {
        repo::purge_expired(&self.db, self.tokens.now()).await
    }
}

struct CodeInput<'a> {
    client: &'a Client,
    redirect_uri: &'a str,
    code_challenge: &'a str,
    nonce: Option<&'a str>,
    scope: &'a ScopeSet,
    subject: &'a str,
    sid: &'a str,
    auth_time: i64,
    amr: &'a str,
    acr: &'a str,
}

/// The errors idp may end a flow with (RFC 6749 §4.1.2.1, OpenID Connect Core §3.1.2.6).
const REJECT_CODES: &[ErrorCode] = &[
    ErrorCode::AccessDenied,
    ErrorCode::LoginRequired,
    ErrorCode::ConsentRequired,
    ErrorCode::InteractionRequired,
    ErrorCode::AccountSelectionRequired,
    ErrorCode::TemporarilyUnavailable,
];

fn already_finished() -> ResumeError {
    ResumeError::Refused(
        "This sign-in request is already finished. Go back to the application and start again.",
    )
}

/// A failed idp call as the client sees it.
pub(crate) fn idp_error(e: IdpError) -> OAuthError {
    match e {
        IdpError::Unavailable(m) => {
            tracing::warn!(error = %m, "idp unavailable");
            OAuthError::new(ErrorCode::TemporarilyUnavailable, "try again later")
        }
        other => server_error(other),
    }
}

/// The cookie that binds pending request `id` to its browser.
pub(crate) fn flow_cookie_name(id: &str) -> String {
    format!("{FLOW_COOKIE_PREFIX}{id}")
}

/// Prefix of flow cookie names.
pub(crate) const FLOW_COOKIE_PREFIX: &str = "authz_flow_";

/// `base` with `params` appended to its query (an existing query is kept, RFC 6749
/// §3.1.2).
pub(crate) fn with_query(base: &str, params: &[(&str, &str)]) -> String {
    let mut out = base.to_owned();
    let mut sep = if base.contains('?') { '&' } else { '?' };
    if base.ends_with(['?', '&']) {
        sep = '\0';
    }
    for (k, v) in params {
        if sep != '\0' {
            out.push(sep);
        }
        sep = '&';
        out.extend(url::form_urlencoded::byte_serialize(k.as_bytes()));
        out.push('=');
        out.extend(url::form_urlencoded::byte_serialize(v.as_bytes()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::with_query;

    #[test]
    fn query_parameters_are_appended_and_encoded() {
        assert_eq!(
            with_query("https://a.example/cb", &[("code", "x y"), ("state", "s&t")]),
            "https://a.example/cb?code=x+y&state=s%26t"
        );
        assert_eq!(
            with_query("https://a.example/cb?k=v", &[("code", "c")]),
            "https://a.example/cb?k=v&code=c"
        );
        assert_eq!(
            with_query("https://a.example/cb?", &[("code", "c")]),
            "https://a.example/cb?code=c"
        );
    }
}
