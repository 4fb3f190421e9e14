//! What the authorization code flow works with: the validated request, where its answer
//! goes, the cookies that carry it across the browser's round trips, and what idp reports.

use std::sync::Arc;

use domain::{CodeChallenge, Prompt, ResponseMode, ScopeSet};

use super::error::AuthorizeError;
use super::repo::Pending;
use crate::clients::Client;

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
    /// upstream sign-in: `kc_idp_hint` (Keycloak's identity provider redirector), passed to
    /// idp's login page, which sends the user straight to that upstream provider.
    pub(crate) idp_hint: String,
}

impl AuthorizationRequest {
    /// Whether no existing session can satisfy the request, however fresh: `prompt=login`,
    /// or `max_age=0`, which OpenID Connect Core 1.0 §3.1.2.1 makes the same (times are in
    /// seconds, so a login made this second must not pass for it).
    pub(crate) fn refuses_every_session(&self) -> bool {
        self.prompt.login || self.max_age.is_some_and(|max| max <= 0)
    }
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
    pub(crate) step: Result<Step, AuthorizeError>,
    /// The session cookie.
    pub(crate) session: SessionCookie,
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

/// The cookie that binds pending request `id` to its browser.
pub(crate) fn flow_cookie_name(id: &str) -> String {
    format!("{FLOW_COOKIE_PREFIX}{id}")
}

/// Prefix of flow cookie names.
pub(crate) const FLOW_COOKIE_PREFIX: &str = "authz_flow_";
