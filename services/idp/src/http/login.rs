//! `GET/POST /login?login_challenge=…`: the login step of authz's authorization request.
//!
//! GET reads the pending request (`LoginFlow.GetLoginRequest`). A live idp session is
//! accepted at once, keeping its original `auth_time`, unless the request asks for a fresh
//! authentication (OpenID Connect Core 1.0 §3.1.2.1: `prompt=login`, or a `max_age` the
//! session's `auth_time` exceeds; `max_age=0` is `prompt=login`; with `prompt=login` or
//! `max_age=0` the session is not even looked up). Without a usable session `prompt=none` is
//! answered with `login_required` (§3.1.2.6); otherwise the form is shown, prefilled with
//! `login_hint`. The form's CSRF token also vouches for the request's expiry as authz gave
//! it ([`crate::csrf::Csrf::token_until`]).
//!
//! POST checks the CSRF token first (403 and nothing else otherwise), then either cancels
//! (`RejectLogin` with `access_denied`) or, unless the expiry the token vouches for has
//! passed (410 before any password work), checks the password without asking authz again
//! (`AcceptLogin` refuses a request answered meanwhile: the form posted again, e.g. from
//! the back button, signs the browser in anew and then shows the 410 page): the login
//! throttle first
//! (OWASP ASVS V2.2.1, see `throttle`: 429 with `Retry-After` while the address is blocked,
//! or the account is and the browser has no device cookie of it from this network; the
//! refused attempt counts as a failure), then argon2id. Every failure shows the same
//! message, whether the user is unknown, disabled or typed a wrong password. On success
//! the session cookie and a fresh device cookie are set and the browser goes where
//! `AcceptLogin` says (303).

use actix_web::http::StatusCode;
use actix_web::http::header::HeaderValue;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use proto::authz::v1::{AcceptLoginRequest, LoginRequest, RejectRequest};
use serde::Deserialize;
use tracing::instrument;

use super::pages::{self, LoginPage};
use super::{browser_session, challenge, csrf_rejected, current_session, see_other};
use crate::csrf::Purpose;
use crate::sessions::{NewSession, Session};
use crate::throttle::{Account, Attempt, Verdict};
use crate::{AppState, IdpError};
use audit::{Action, Actor, AuditEvent, Ident, TargetKind};

/// The `acr` of a password login (OpenID Connect Core 1.0 §2): "1", ISO/IEC 29115 level 1
/// (a single factor), as Keycloak reports it; "0" would say even that was not met.
pub(crate) const PASSWORD_ACR: &str = "1";

/// The one message for every failed login: it never says whether the account exists.
pub(crate) const FAILED: &str = "Incorrect username or password.";
/// Shown while back-off refuses attempts (for unknown names exactly as for known ones).
pub(crate) const THROTTLED: &str =
    "Too many failed attempts. Please wait a moment before trying again.";

/// Longest login name considered (longer ones fail like a wrong password).
const MAX_LOGIN: usize = 254;
/// Longest password considered.
const MAX_PASSWORD: usize = 1024;

#[derive(Debug, Deserialize)]
pub(crate) struct Query {
    login_challenge: Option<String>,
    /// upstream sign-in: Keycloak's `kc_idp_hint`, forwarded by authz.
    #[serde(default)]
    kc_idp_hint: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct Form {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    login_challenge: Option<String>,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    action: Option<String>,
}

/// Whether the request refuses every session, however fresh: `prompt=login`, or
/// `max_age=0`, which OpenID Connect Core 1.0 §3.1.2.1 makes the same.
fn refuses_every_session(prompt: &[String], max_age: Option<i64>) -> bool {
    prompt.iter().any(|p| p == "login") || max_age.is_some_and(|max| max <= 0)
}

/// Whether a session authenticated at `auth_time` is too old or not enough for this
/// request (OpenID Connect Core 1.0 §3.1.2.1 `prompt=login` and `max_age`).
pub(crate) fn must_reauthenticate(
    prompt: &[String],
    max_age: Option<i64>,
    auth_time: i64,
    now: i64,
) -> bool {
    refuses_every_session(prompt, max_age)
        || max_age.is_some_and(|max| now.saturating_sub(auth_time) > max)
}

/// The login form with `username` prefilled and an optional error.
fn form(
    state: &AppState,
    req: &HttpRequest,
    status: StatusCode,
    request: &LoginRequest,
    username: &str,
    error: Option<&str>,
) -> Result<HttpResponse, IdpError> {
    let (cookie, set) = state.cookies.ensure_csrf(req)?;
    let csrf = state.csrf.token_until(
        &cookie,
        Purpose::Login,
        &request.challenge,
        request.expires_at,
    );
    let upstream_csrf = state
        .csrf
        .token(&cookie, Purpose::UpstreamStart, &request.challenge);
    let body = pages::render(&LoginPage {
        title: "Sign in",
        base: &state.base,
        client_name: pages::client_name(request.client.as_ref()),
        challenge: &request.challenge,
        csrf: &csrf,
        username,
        error,
        // email, sign-up and password reset (issue 21)
        signup: state.signup.enabled,
        forgot: state.password_reset.enabled,
        flow_query: &pages::flow_query(&request.challenge),
        providers: pages::provider_buttons(&state.upstreams),
        upstream_csrf: &upstream_csrf,
    })?;
    Ok(pages::with_csrf_cookie(status, set, body))
}

async fn accept(state: &AppState, challenge: &str, session: &Session) -> Result<String, IdpError> {
    state
        .flow
        .accept_login(AcceptLoginRequest {
            login_challenge: challenge.to_owned(),
            subject: session.user_id.clone(),
            session_id: session.id.clone(),
            auth_time: session.auth_time,
            amr: session.amr.clone(),
            acr: session.acr.clone(),
        })
        .await
}

fn login_metric(result: &'static str) {
    metrics::counter!("idp_logins_total", "result" => result).increment(1);
}

/// `GET /login`.
#[instrument(skip_all)]
pub(crate) async fn get(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<Query>,
) -> Result<HttpResponse, IdpError> {
    let challenge = challenge(query.login_challenge.as_deref(), "login_challenge")?;
    let request = state.flow.get_login_request(&challenge).await?;
    let now = state.clock.unix();
    if !refuses_every_session(&request.prompt, request.max_age)
        && let Some((session, _user)) = current_session(&state, &req).await?
        && !must_reauthenticate(&request.prompt, request.max_age, session.auth_time, now)
    {
        let to = accept(&state, &challenge, &session).await?;
        login_metric("reused");
        return Ok(see_other(&to).finish());
    }
    if request.prompt.iter().any(|p| p == "none") {
        let to = state
            .flow
            .reject_login(RejectRequest {
                challenge,
                error: "login_required".to_owned(),
                error_description: "The user is not signed in.".to_owned(),
            })
            .await?;
        return Ok(see_other(&to).finish());
    }
    // upstream sign-in: kc_idp_hint names a configured provider.
    if let Some(redirect) =
        super::upstream_start::hinted(&state, &req, &request, query.kc_idp_hint.as_deref()).await?
    {
        return Ok(redirect);
    }
    form(
        &state,
        &req,
        StatusCode::OK,
        &request,
        &request.login_hint,
        None,
    )
}

/// `POST /login`.
#[instrument(skip_all)]
pub(crate) async fn post(
    state: web::Data<AppState>,
    req: HttpRequest,
    form_data: web::Form<Form>,
) -> Result<HttpResponse, IdpError> {
    let posted = form_data.into_inner();
    let challenge_value = posted.login_challenge.as_deref().unwrap_or_default();
    let Some(pending_until) = state.csrf.verify_until(
        state.cookies.csrf(&req).as_deref(),
        Purpose::Login,
        challenge_value,
        posted.csrf.as_deref(),
    ) else {
        return Err(csrf_rejected("login"));
    };
    let challenge = challenge(posted.login_challenge.as_deref(), "login_challenge")?;
    if posted.action.as_deref() == Some("cancel") {
        let to = state
            .flow
            .reject_login(RejectRequest {
                challenge,
                error: "access_denied".to_owned(),
                error_description: "The user cancelled the sign-in.".to_owned(),
            })
            .await?;
        login_metric("cancelled");
        return Ok(see_other(&to).finish());
    }
    // No password work for a request past the expiry authz gave when the form was served.
    // One answered meanwhile is caught by AcceptLogin; asking authz here as well would cost
    // every sign-in a round trip.
    if state.clock.unix() >= pending_until {
        return Err(crate::login_flow::expired_request());
    }
    let login = posted.username.trim();
    let (session, cookies) = match password_sign_in(&state, &req, login, posted.password).await? {
        PasswordSignIn::Throttled(retry_after) => {
            let request = state.flow.get_login_request(&challenge).await?;
            let mut response = form(
                &state,
                &req,
                StatusCode::TOO_MANY_REQUESTS,
                &request,
                login,
                Some(THROTTLED),
            )?;
            set_retry_after(&mut response, retry_after);
            return Ok(response);
        }
        PasswordSignIn::Failed => {
            let request = state.flow.get_login_request(&challenge).await?;
            return form(&state, &req, StatusCode::OK, &request, login, Some(FAILED));
        }
        PasswordSignIn::SignedIn { session, cookies } => (session, cookies),
    };
    // The browser keeps its new session (and device cookie) even when authz cannot take
    // the answer now.
    let mut response = match accept(&state, &challenge, &session).await {
        Ok(to) => see_other(&to).finish(),
        Err(e) => e.error_response(),
    };
    for cookie in cookies {
        response
            .headers_mut()
            .append(actix_web::http::header::SET_COOKIE, cookie);
    }
    Ok(response)
}

/// What a password sign-in attempt came to ([`password_sign_in`]).
pub(crate) enum PasswordSignIn {
    /// Refused by the throttle without a password check; try again after this long.
    Throttled(std::time::Duration),
    /// Unknown user, disabled user or wrong password (one answer for all).
    Failed,
    /// Signed in: the new session and the cookies to set (session, device cookie).
    SignedIn {
        /// The new idp session.
        session: Session,
        /// `Set-Cookie` values for the response.
        cookies: Vec<HeaderValue>,
    },
}

/// A refused sign-in for the audit trail: about the account the name resolved to, if any
/// (the typed name itself is never recorded: it may be a mistyped password).
fn refused(action: Action, user_id: Option<&str>, reason: &'static str) -> AuditEvent {
    let event = AuditEvent::new(Actor::Anonymous, action).failed(reason);
    match user_id {
        Some(id) => event.target(TargetKind::User, id),
        None => event,
    }
}

/// `Retry-After` in whole seconds (at least 1), for a throttled answer.
pub(crate) fn set_retry_after(response: &mut HttpResponse, retry_after: std::time::Duration) {
    let retry = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    response.headers_mut().insert(
        actix_web::http::header::RETRY_AFTER,
        HeaderValue::from(retry.max(1)),
    );
}

/// Checks a username (or email) and password the way the login form does, for every page
/// that signs a user in (the login form, the device verification page): the login
/// throttle first (see the module docs), then argon2id; on success a new session (replacing
/// the browser's previous one) and a fresh device cookie. Counted in `idp_logins_total`.
#[instrument(skip_all)]
pub(crate) async fn password_sign_in(
    state: &AppState,
    req: &HttpRequest,
    login: &str,
    password: String,
) -> Result<PasswordSignIn, IdpError> {
    let acceptable =
        !login.is_empty() && login.len() <= MAX_LOGIN && password.len() <= MAX_PASSWORD;
    // The account the name or email resolves to: every spelling shares one counter. Read
    // once, for the counter here and the password check below.
    let found = if acceptable {
        state.users.find_login(login).await?
    } else {
        None
    };
    let resolved = found.as_ref().map(|f| f.id().to_owned());
    let user_id = resolved.clone();
    let attempt = Attempt {
        account: Account::of(user_id, login),
        address: req.peer_addr().map(|a| a.ip()),
        device: state.cookies.device(req),
    };
    let soft = match state.throttle.admit(&attempt).await? {
        Verdict::Proceed { soft } => soft,
        Verdict::Refused { retry_after, .. } => {
            login_metric("throttled");
            super::audit(
                state,
                req,
                refused(Action::LoginLocked, resolved.as_deref(), "throttled"),
            )
            .await?;
            return Ok(PasswordSignIn::Throttled(retry_after));
        }
    };
    let user = if acceptable {
        state.users.check_login(found, password).await?
    } else {
        None
    };
    let Some(user) = user else {
        state.throttle.failure(&attempt).await?;
        login_metric("failure");
        let reason = if resolved.is_some() {
            "invalid_credentials"
        } else {
            "unknown_user"
        };
        super::audit(
            state,
            req,
            refused(Action::LoginFailed, resolved.as_deref(), reason),
        )
        .await?;
        return Ok(PasswordSignIn::Failed);
    };
    let device = state.throttle.success(&attempt, &user.id, soft).await?;
    // The browser's session, if live: renewed when it is this user's, ended otherwise (so
    // its user need not be read: a disabled user's session ends either way).
    let previous = browser_session(state, req).await?;
    let (session, secret) = state
        .sessions
        .sign_in(
            previous.as_ref(),
            NewSession {
                user_id: user.id.clone(),
                amr: vec!["pwd".to_owned()],
                acr: PASSWORD_ACR.to_owned(),
            },
        )
        .await?;
    login_metric("success");
    tracing::info!(user = %user.id, session = %session.id, "signed in");
    super::audit(
        state,
        req,
        AuditEvent::new(Actor::User(Ident::new(&user.id)), Action::LoginSucceeded)
            .target(TargetKind::User, &user.id),
    )
    .await?;
    let mut cookies = vec![state.cookies.set_session(secret.expose())];
    cookies.extend(device.map(|token| {
        state
            .cookies
            .set_device(token.expose(), state.throttle.device_lifetime().as_secs())
    }));
    Ok(PasswordSignIn::SignedIn { session, cookies })
}

#[cfg(test)]
mod tests {
    use super::must_reauthenticate;

    #[test]
    fn prompt_login_and_max_age() {
        let none: Vec<String> = Vec::new();
        let login = vec!["login".to_owned()];
        let now = 1_000_000;
        assert!(!must_reauthenticate(&none, None, now - 86_400, now));
        assert!(must_reauthenticate(&login, None, now, now));
        assert!(
            must_reauthenticate(&none, Some(0), now, now),
            "max_age=0 is prompt=login"
        );
        assert!(!must_reauthenticate(&none, Some(60), now - 60, now));
        assert!(must_reauthenticate(&none, Some(60), now - 61, now));
        assert!(!must_reauthenticate(
            &["consent".to_owned()],
            Some(3600),
            now - 10,
            now
        ));
    }
}
