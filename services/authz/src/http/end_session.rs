//! RP-Initiated Logout 1.0: the `end_session_endpoint`, GET and POST.
//!
//! Ends authz's browser session and idp's session behind it, revokes the grants bound to
//! that session unless they are for offline use, and sends the browser to a registered
//! `post_logout_redirect_uri` (with `state`) or shows that the End-User is signed out.
//! Unless the `id_token_hint` names the session this browser holds (by its session
//! cookie) the End-User is asked first (§2), so another site cannot sign anyone out by
//! linking here, not even with a leaked ID token of the victim.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::constant_time_eq;

use super::oauth::{Form, failure_status};
use super::pages::{self, SESSION_COOKIE, set_cookie};
use crate::AppState;
use crate::error::Failure;
use crate::flow::repo::SessionRow;

/// `GET /end_session`: parameters in the query (RP-Initiated Logout 1.0 §2).
pub(crate) async fn get(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let params = Form::from_urlencoded(req.query_string().as_bytes());
    handle(&req, &params, &state, false).await
}

/// `POST /end_session`: parameters in a form body (§2), also what the confirmation page
/// sends.
pub(crate) async fn post(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    match Form::parse(&req, &body) {
        Ok(params) => handle(&req, &params, &state, true).await,
        Err(_) => bad("The logout request must be sent as application/x-www-form-urlencoded."),
    }
}

fn bad(message: &str) -> HttpResponse {
    pages::error(
        StatusCode::BAD_REQUEST,
        "The logout request is invalid",
        message,
    )
}

/// The confirmation form's anti-forgery token: derived from the session cookie, which
/// other sites can neither read nor guess.
fn csrf_token(session_cookie: &str) -> String {
    let mut input = b"end_session\0".to_vec();
    input.extend_from_slice(session_cookie.as_bytes());
    URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, &input))
}

async fn handle(req: &HttpRequest, params: &Form, state: &AppState, posted: bool) -> HttpResponse {
    macro_rules! param {
        ($name:literal) => {
            match params.get($name) {
                Ok(v) => v,
                Err(e) => return bad(&e),
            }
        };
    }
    let hint = match param!("id_token_hint") {
        None => None,
        Some(raw) => match state.tokens.verified_id_token(raw) {
            Some(claims) => Some(claims),
            None => return bad("id_token_hint is not an ID token issued by this server."),
        },
    };
    let claim = |name: &str| -> Option<String> {
        hint.as_ref()
            .and_then(|c| c.get(name))
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    };
    let hint_audiences: Vec<String> = match hint.as_ref().and_then(|c| c.get("aud")) {
        Some(serde_json::Value::String(a)) => vec![a.clone()],
        Some(serde_json::Value::Array(list)) => list
            .iter()
            .filter_map(|a| a.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    let client_id = match (param!("client_id"), hint_audiences.as_slice()) {
        (Some(id), auds) if !auds.is_empty() && !auds.iter().any(|a| a == id) => {
            return bad("client_id is not the audience of id_token_hint.");
        }
        (Some(id), _) => Some(id.to_owned()),
        (None, [only]) => Some(only.clone()),
        (None, _) => None,
    };
    let redirect = match param!("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            let Some(client_id) = &client_id else {
                return bad("post_logout_redirect_uri needs client_id or id_token_hint.");
            };
            let client = match state.clients.find(client_id).await {
                Ok(Some(client)) => client,
                Ok(None) => return bad("The application (client_id) is not registered here."),
                Err(e) => return unavailable(e.into()),
            };
            if !client.post_logout_redirect_uris.iter().any(|r| r == uri) {
                return bad("The post_logout_redirect_uri is not registered for this application.");
            }
            Some(uri.to_owned())
        }
    };
    let logout_state = param!("state").map(str::to_owned);
    let confirm = param!("confirm");
    let presented_csrf = param!("csrf").unwrap_or_default().to_owned();

    let cookie = pages::cookie(req, SESSION_COOKIE);
    let session = match &cookie {
        Some(c) => match state.flow.session_by_cookie(c).await {
            Ok(s) => s,
            Err(e) => return unavailable(e.into()),
        },
        None => None,
    };
    let Some(cookie) = cookie.filter(|_| session.is_some()) else {
        // This browser holds no session of ours. A hint naming a live session elsewhere
        // proves nothing about who is at this browser (the hint may have leaked to any
        // relying party), so that session is never ended from here: the End-User is
        // asked (§2), and the answer, which no session cookie can vouch for, ends
        // nothing.
        return match claim("sid") {
            Some(sid) if !posted || confirm.is_none() => {
                match state.flow.session_by_sid(&sid).await {
                    Ok(Some(_)) => confirmation(state, "", &client_id, &redirect, &logout_state),
                    Ok(None) => finish(state, redirect.as_deref(), logout_state.as_deref(), true),
                    Err(e) => unavailable(e.into()),
                }
            }
            Some(_) => finish(state, redirect.as_deref(), logout_state.as_deref(), false),
            None => finish(state, redirect.as_deref(), logout_state.as_deref(), true),
        };
    };
    // The End-User is known to be the one logging out only when the hint names the
    // session this browser holds (its `sub`, and its `sid` when the hint has one).
    let known = session.as_ref().is_some_and(|current| {
        claim("sub").as_deref() == Some(current.subject.as_str())
            && claim("sid").is_none_or(|sid| sid == current.sid)
    });
    if !known {
        let expected = csrf_token(&cookie);
        let confirmed = posted && constant_time_eq(presented_csrf.as_bytes(), expected.as_bytes());
        match confirm {
            Some("yes") if confirmed => {}
            Some("no") if confirmed => {
                return finish(state, redirect.as_deref(), logout_state.as_deref(), false);
            }
            _ => return confirmation(state, &expected, &client_id, &redirect, &logout_state),
        }
    }
    let mut frontchannel = Vec::new();
    if let Some(session) = &session {
        match end(state, session).await {
            Ok(uris) => frontchannel = uris,
            Err(failure) => return unavailable(failure),
        }
    }
    if !frontchannel.is_empty() {
        return finish_frontchannel(
            state,
            &frontchannel,
            redirect.as_deref(),
            logout_state.as_deref(),
        );
    }
    finish(state, redirect.as_deref(), logout_state.as_deref(), true)
}

/// logout: [`finish`] for a session whose clients registered `frontchannel_logout_uri`s:
/// the cookie is deleted and a page loads them in iframes before it goes on to the
/// `post_logout_redirect_uri` (Front-Channel Logout 1.0 §4).
fn finish_frontchannel(
    state: &AppState,
    uris: &[String],
    redirect: Option<&str>,
    logout_state: Option<&str>,
) -> HttpResponse {
    let mut res = HttpResponse::Ok();
    res.append_header((
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", "/", 0, state.secure_cookies),
    ));
    let next = redirect.map(|uri| {
        let params: Vec<(&str, &str)> = logout_state.map(|s| ("state", s)).into_iter().collect();
        domain::with_query(uri, &params)
    });
    pages::frontchannel_logout(res, uris, next.as_deref())
}

/// The question of RP-Initiated Logout 1.0 §2 ("sign out?"), carrying the request's
/// parameters and the anti-forgery token `csrf` (empty when the browser has no session,
/// so no answer can be confirmed).
fn confirmation(
    state: &AppState,
    csrf: &str,
    client_id: &Option<String>,
    redirect: &Option<String>,
    logout_state: &Option<String>,
) -> HttpResponse {
    let mut hidden: Vec<(&str, &str)> = vec![("csrf", csrf)];
    if let Some(id) = client_id {
        hidden.push(("client_id", id));
    }
    if let Some(uri) = redirect {
        hidden.push(("post_logout_redirect_uri", uri));
    }
    if let Some(s) = logout_state {
        hidden.push(("state", s));
    }
    pages::logout_confirmation(&state.endpoint(super::END_SESSION_PATH), &hidden)
}

/// Ends idp's and authz's sessions, revokes the session-bound grants, queues the
/// back-channel logout tokens (Back-Channel Logout 1.0 §2.7; delivered in the background,
/// never awaited here) and returns the front-channel logout URIs to load (Front-Channel
/// Logout 1.0 §4).
async fn end(state: &AppState, session: &SessionRow) -> Result<Vec<String>, Failure> {
    state.flow.end_session(session).await?;
    let n = state.grants.revoke_session(&session.sid).await?;
    metrics::counter!("logouts_total").increment(1);
    let queued = state.logouts.session_ended(&session.sid).await;
    tracing::info!(revoked_grants = n, logout_tokens = queued, "session ended");
    // The session has ended: a failure to list the iframes costs only them.
    Ok(match state.logouts.frontchannel_uris(&session.sid).await {
        Ok(uris) => uris,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list the front-channel logout URIs");
            Vec::new()
        }
    })
}

/// The sign-out could not be completed: 503 (or 500, see [`failure_status`]) with a page.
fn unavailable(failure: Failure) -> HttpResponse {
    pages::error(
        failure_status(&failure),
        "Sign-out did not complete",
        "The sign-out could not be completed. Try again in a moment.",
    )
}

/// The end of a logout (RP-Initiated Logout 1.0 §3): the session cookie is deleted when
/// the End-User signed out, then the browser goes to the registered
/// `post_logout_redirect_uri` with `state`, or sees a page.
fn finish(
    state: &AppState,
    redirect: Option<&str>,
    logout_state: Option<&str>,
    signed_out: bool,
) -> HttpResponse {
    let mut res = match redirect {
        Some(_) => HttpResponse::SeeOther(),
        None => HttpResponse::Ok(),
    };
    res.insert_header((header::CACHE_CONTROL, "no-store"));
    if signed_out {
        res.append_header((
            header::SET_COOKIE,
            set_cookie(SESSION_COOKIE, "", "/", 0, state.secure_cookies),
        ));
    }
    match redirect {
        Some(uri) => {
            let params: Vec<(&str, &str)> =
                logout_state.map(|s| ("state", s)).into_iter().collect();
            res.insert_header((header::LOCATION, domain::with_query(uri, &params)))
                .finish()
        }
        None => pages::logged_out(res, signed_out),
    }
}
