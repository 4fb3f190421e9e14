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

mod challenges;
pub(crate) mod repo;
mod resume;

use std::sync::Arc;

use domain::{CodeChallenge, ErrorCode, OAuthError, Prompt, ResponseMode, ScopeSet};
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
        // `max_age=0` always asks for a new authentication, like `prompt=login` (Core
        // §3.1.2.1): times are in seconds, so a login made this second must not pass for it.
        let fresh = usable.filter(|s| {
            !request.prompt.login
                && request
                    .max_age
                    .is_none_or(|max| max > 0 && now - s.auth_time <= max)
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
