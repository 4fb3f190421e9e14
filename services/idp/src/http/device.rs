//! `GET/POST /device[?user_code=…]`: the device verification page of the Device
//! Authorization Grant (RFC 8628 §3.3).
//!
//! GET shows the code form, prefilled with `user_code` when the user came through
//! `verification_uri_complete` (§3.3.1); nothing is approved without the user's explicit
//! confirmation. Every POST checks its CSRF token first (403 and nothing else otherwise).
//!
//! - `action=submit`: the typed code (case, hyphens and spaces do not matter) is throttled
//!   like password attempts (§5.1; see `throttle`: per browser and per address, 429 with
//!   `Retry-After` while blocked), then read from authz (`GetDeviceRequest`). A wrong,
//!   expired or used code counts as a failure and shows the form again with one message.
//!   A valid one shows the sign-in form, or with a live session the confirmation: the
//!   client's name and the requested scopes in plain words.
//! - `action=login`: the password check of the login form (same throttle, same message for
//!   every failure), then the confirmation; the new session and device cookie are set.
//! - `action=allow` / `action=deny`: with a live session, `AcceptDevice` (every requested
//!   scope, for this user and session) or `RejectDevice`; the page says what happened and
//!   the device gets its tokens or `access_denied` on its next poll.
//!
//! The sign-in and confirmation forms' CSRF tokens are bound to the code they show.

use actix_web::http::StatusCode;
use actix_web::http::header::SET_COOKIE;
use actix_web::{HttpRequest, HttpResponse, web};
use audit::Action;
use domain::device::UserCode;
use proto::authz::v1::{AcceptDeviceRequest, DeviceRequest};
use serde::Deserialize;
use tracing::instrument;

use super::consent::consent_event;
use super::current_session;
use super::login::{FAILED, PasswordSignIn, THROTTLED, password_sign_in, set_retry_after};
use super::pages::{self, DevicePage, describe_scope};
use crate::csrf::Purpose;
use crate::sessions::Session;
use crate::throttle::{Attempt, Verdict};
use crate::users::User;
use crate::{AppState, IdpError};

/// Shown for every code that does not lead to a pending request.
pub(crate) const WRONG_CODE: &str = "That code is not valid. Check the code shown on your device and try again. Codes expire after a few minutes and work once.";
/// Shown while the throttle refuses codes.
pub(crate) const CODES_THROTTLED: &str =
    "Too many wrong codes. Please wait a moment before trying again.";
/// Longest typed code considered (longer input is a wrong code).
const MAX_TYPED: usize = 64;

#[derive(Debug, Deserialize)]
pub(crate) struct Query {
    user_code: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct Form {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    user_code: Option<String>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

/// What one rendering of the page shows.
#[derive(Default)]
struct Shown<'a> {
    step: &'static str,
    title: &'static str,
    user_code: &'a str,
    client_name: &'a str,
    scopes: Vec<String>,
    username: Option<&'a str>,
    login: &'a str,
    error: Option<&'a str>,
    message: &'a str,
}

/// What the sign-in and confirmation forms' CSRF tokens are bound to: the canonical code,
/// or what was typed when it is no well-formed code.
fn binding(typed: &str) -> String {
    UserCode::parse(typed).map_or_else(|| typed.to_owned(), |c| c.canonical().to_owned())
}

fn show(
    state: &AppState,
    req: &HttpRequest,
    status: StatusCode,
    shown: Shown<'_>,
) -> Result<HttpResponse, IdpError> {
    let (cookie, set) = state.cookies.ensure_csrf(req)?;
    let bound = if shown.step == "enter" {
        String::new()
    } else {
        binding(shown.user_code)
    };
    let csrf = state.csrf.token(&cookie, Purpose::Device, &bound);
    let body = pages::render(&DevicePage {
        title: shown.title,
        base: &state.base,
        step: shown.step,
        csrf: &csrf,
        user_code: shown.user_code,
        client_name: shown.client_name,
        scopes: shown.scopes,
        username: shown.username,
        login: shown.login,
        error: shown.error,
        message: shown.message,
    })?;
    Ok(pages::with_csrf_cookie(status, set, body))
}

/// The code form.
fn enter(
    state: &AppState,
    req: &HttpRequest,
    status: StatusCode,
    typed: &str,
    user: Option<&User>,
    error: Option<&str>,
) -> Result<HttpResponse, IdpError> {
    show(
        state,
        req,
        status,
        Shown {
            step: "enter",
            title: "Connect a device",
            user_code: typed,
            username: user.map(|u| u.username.as_str()),
            error,
            ..Shown::default()
        },
    )
}

/// The sign-in form for the pending `request`.
fn sign_in_form(
    state: &AppState,
    req: &HttpRequest,
    status: StatusCode,
    request: &DeviceRequest,
    login: &str,
    error: Option<&str>,
) -> Result<HttpResponse, IdpError> {
    show(
        state,
        req,
        status,
        Shown {
            step: "signin",
            title: "Sign in",
            user_code: &request.user_code,
            client_name: pages::client_name(request.client.as_ref()),
            login,
            error,
            ..Shown::default()
        },
    )
}

/// The confirmation of the pending `request` for `user`.
fn confirm(
    state: &AppState,
    req: &HttpRequest,
    request: &DeviceRequest,
    user: &User,
) -> Result<HttpResponse, IdpError> {
    show(
        state,
        req,
        StatusCode::OK,
        Shown {
            step: "confirm",
            title: "Connect this device?",
            user_code: &request.user_code,
            client_name: pages::client_name(request.client.as_ref()),
            scopes: request
                .requested_scopes
                .iter()
                .map(|s| describe_scope(s))
                .collect(),
            username: Some(&user.username),
            ..Shown::default()
        },
    )
}

/// The final page.
fn done(
    state: &AppState,
    req: &HttpRequest,
    title: &'static str,
    message: &str,
) -> Result<HttpResponse, IdpError> {
    show(
        state,
        req,
        StatusCode::OK,
        Shown {
            step: "done",
            title,
            message,
            ..Shown::default()
        },
    )
}

fn metric(result: &'static str) {
    metrics::counter!("idp_device_verifications_total", "result" => result).increment(1);
}

/// The pending request of the typed code, with a device-flow message when it is gone.
async fn pending(state: &AppState, typed: &str) -> Result<DeviceRequest, IdpError> {
    state
        .flow
        .get_device_request(typed)
        .await
        .map_err(|e| match e {
            IdpError::Gone(_) => IdpError::Gone(
                "This device code has expired or was already used. Start again on your device."
                    .to_owned(),
            ),
            other => other,
        })
}

/// `GET /device`.
#[instrument(skip_all)]
pub(crate) async fn get(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<Query>,
) -> Result<HttpResponse, IdpError> {
    let typed = query.user_code.as_deref().unwrap_or_default().trim();
    let typed = if typed.len() > MAX_TYPED { "" } else { typed };
    let user = current_session(&state, &req).await?.map(|(_, u)| u);
    enter(&state, &req, StatusCode::OK, typed, user.as_ref(), None)
}

/// `POST /device`.
#[instrument(skip_all)]
pub(crate) async fn post(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<Form>,
) -> Result<HttpResponse, IdpError> {
    let form = form.into_inner();
    let action = form.action.as_deref().unwrap_or("submit");
    let typed = form.user_code.as_deref().unwrap_or_default().trim();
    let bound = if action == "submit" {
        String::new()
    } else {
        binding(typed)
    };
    if !state.csrf.verify(
        state.cookies.csrf(&req).as_deref(),
        Purpose::Device,
        &bound,
        form.csrf.as_deref(),
    ) {
        return Err(super::csrf_rejected("device"));
    }
    let session = current_session(&state, &req).await?;
    match action {
        "submit" => submit(&state, &req, typed, session).await,
        "login" => {
            let request = pending(&state, typed).await?;
            let login = form.username.trim();
            match password_sign_in(&state, &req, login, form.password).await? {
                PasswordSignIn::Throttled(retry_after) => {
                    let mut response = sign_in_form(
                        &state,
                        &req,
                        StatusCode::TOO_MANY_REQUESTS,
                        &request,
                        login,
                        Some(THROTTLED),
                    )?;
                    set_retry_after(&mut response, retry_after);
                    Ok(response)
                }
                PasswordSignIn::Failed => {
                    sign_in_form(&state, &req, StatusCode::OK, &request, login, Some(FAILED))
                }
                PasswordSignIn::SignedIn { session, cookies } => {
                    let user =
                        state.users.by_id(&session.user_id).await?.ok_or_else(|| {
                            IdpError::Task("the user just signed in is gone".into())
                        })?;
                    let mut response = confirm(&state, &req, &request, &user)?;
                    for cookie in cookies {
                        response.headers_mut().append(SET_COOKIE, cookie);
                    }
                    Ok(response)
                }
            }
        }
        "allow" | "deny" => {
            let request = pending(&state, typed).await?;
            let Some((session, user)) = session else {
                return sign_in_form(&state, &req, StatusCode::OK, &request, "", None);
            };
            answer(&state, &req, &request, action == "allow", &session, &user).await
        }
        _ => Err(IdpError::Invalid("Choose Allow or Deny.".to_owned())),
    }
}

/// `action=submit`: a typed code, throttled.
async fn submit(
    state: &AppState,
    req: &HttpRequest,
    typed: &str,
    session: Option<(Session, User)>,
) -> Result<HttpResponse, IdpError> {
    let user = session.as_ref().map(|(_, u)| u);
    let attempt = Attempt::user_code(req.peer_addr().map(|a| a.ip()), state.cookies.device(req));
    if let Verdict::Refused { retry_after, .. } = state.throttle.admit(&attempt).await? {
        metric("throttled");
        let shown = if typed.len() > MAX_TYPED { "" } else { typed };
        let mut response = enter(
            state,
            req,
            StatusCode::TOO_MANY_REQUESTS,
            shown,
            user,
            Some(CODES_THROTTLED),
        )?;
        set_retry_after(&mut response, retry_after);
        return Ok(response);
    }
    let found = if typed.len() > MAX_TYPED || UserCode::parse(typed).is_none() {
        None
    } else {
        match state.flow.get_device_request(typed).await {
            Ok(request) => Some(request),
            Err(IdpError::Gone(_)) => None,
            Err(e) => return Err(e),
        }
    };
    let Some(request) = found else {
        state.throttle.failure(&attempt).await?;
        metric("wrong_code");
        let shown = if typed.len() > MAX_TYPED { "" } else { typed };
        return enter(
            state,
            req,
            StatusCode::BAD_REQUEST,
            shown,
            user,
            Some(WRONG_CODE),
        );
    };
    match user {
        Some(user) => confirm(state, req, &request, user),
        None => sign_in_form(state, req, StatusCode::OK, &request, "", None),
    }
}

/// `action=allow` / `action=deny` by the signed-in user.
async fn answer(
    state: &AppState,
    req: &HttpRequest,
    request: &DeviceRequest,
    allow: bool,
    session: &Session,
    user: &User,
) -> Result<HttpResponse, IdpError> {
    let client = pages::client_name(request.client.as_ref()).to_owned();
    let client_id = request.client.as_ref().map(|c| c.client_id.clone());
    if allow {
        state
            .flow
            .accept_device(AcceptDeviceRequest {
                user_code: request.user_code.clone(),
                subject: user.id.clone(),
                session_id: session.id.clone(),
                auth_time: session.auth_time,
                amr: session.amr.clone(),
                acr: session.acr.clone(),
            })
            .await?;
        metric("approved");
        tracing::info!(user = %user.id, "device approved");
        super::audit(
            state,
            req,
            consent_event(user, client_id.as_deref(), Action::ConsentGiven).note("device"),
        )
        .await?;
        done(
            state,
            req,
            "Device connected",
            &format!(
                "{client} is now signed in as {}. You can close this window and return to your device.",
                user.username
            ),
        )
    } else {
        state.flow.reject_device(&request.user_code).await?;
        metric("denied");
        tracing::info!(user = %user.id, "device denied");
        super::audit(
            state,
            req,
            consent_event(user, client_id.as_deref(), Action::ConsentDenied).note("device"),
        )
        .await?;
        done(
            state,
            req,
            "Device not connected",
            &format!("You denied access to {client}. You can close this window."),
        )
    }
}
