//! `GET /upstream/{provider}/callback`: where an upstream sends the browser back
//! (RFC 6749 §4.1.2). The flow is taken by its `state` (single use, bound to this browser's
//! CSRF cookie and to the provider), the code redeemed and the identity verified (see
//! `upstream`). Then:
//!
//! - a login flow of a linked identity signs the linked user in (`amr` `fed`, RFC 8176 §2)
//!   and answers authz's login request;
//! - a login flow of a new identity goes to the first-login setup step;
//! - a link flow links the identity to the signed-in user who started it.
//!
//! Failures (wrong `state`, an upstream error answer, a bad ID token, an unreachable
//! upstream) end on an error page and change nothing.

use actix_web::http::header::{HeaderValue, SET_COOKIE};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use proto::authz::v1::AcceptLoginRequest;
use tracing::instrument;

use super::current_session;
use super::login::PASSWORD_ACR;
use super::see_other;
use crate::sessions::{NewSession, Session};
use crate::upstream::{Callback, Finished};
use crate::{AppState, IdpError};

/// The `amr` of a sign-in through an upstream: "fed", federated authentication
/// (RFC 8176 §2).
pub(crate) const FEDERATED_AMR: &str = "fed";

/// Signs `user_id` in through an upstream: a new session (replacing the browser's previous
/// one) with `amr` `["fed"]`, and its cookie.
pub(crate) async fn federated_sign_in(
    state: &AppState,
    req: &HttpRequest,
    user_id: &str,
) -> Result<(Session, HeaderValue), IdpError> {
    let previous = current_session(state, req).await?.map(|(s, _)| s);
    let (session, secret) = state
        .sessions
        .sign_in(
            previous.as_ref(),
            NewSession {
                user_id: user_id.to_owned(),
                amr: vec![FEDERATED_AMR.to_owned()],
                acr: PASSWORD_ACR.to_owned(),
            },
        )
        .await?;
    metrics::counter!("idp_logins_total", "result" => "success").increment(1);
    tracing::info!(user = %user_id, session = %session.id, "signed in through an upstream");
    Ok((session, state.cookies.set_session(secret.expose())))
}

/// Answers authz's login request `challenge` with `session`, setting `cookie` whatever
/// authz answers (the browser keeps its new session).
pub(crate) async fn accept_with(
    state: &AppState,
    challenge: &str,
    session: &Session,
    cookie: HeaderValue,
) -> HttpResponse {
    let accepted = state
        .flow
        .accept_login(AcceptLoginRequest {
            login_challenge: challenge.to_owned(),
            subject: session.user_id.clone(),
            session_id: session.id.clone(),
            auth_time: session.auth_time,
            amr: session.amr.clone(),
            acr: session.acr.clone(),
        })
        .await;
    let mut response = match accepted {
        Ok(to) => see_other(&to).finish(),
        Err(e) => e.error_response(),
    };
    response.headers_mut().append(SET_COOKIE, cookie);
    response
}

/// `GET /upstream/{provider}/callback`.
#[instrument(skip_all)]
pub(crate) async fn get(
    state: web::Data<AppState>,
    req: HttpRequest,
    provider: web::Path<String>,
    query: web::Query<Callback>,
) -> Result<HttpResponse, IdpError> {
    let browser = state.cookies.csrf(&req);
    let finished = state
        .upstreams
        .finish(&provider, browser.as_deref(), query.into_inner())
        .await?;
    match finished {
        Finished::Login {
            provider,
            profile,
            challenge,
            tokens,
        } => {
            if let Some(identity) = state
                .upstreams
                .linked(&provider, &profile.subject, tokens.as_ref())
                .await?
            {
                let user = state.users.by_id(&identity.user_id).await?;
                if user.is_none_or(|u| u.disabled) {
                    return Err(IdpError::Forbidden(
                        "This account cannot sign in.".to_owned(),
                    ));
                }
                let (session, cookie) = federated_sign_in(&state, &req, &identity.user_id).await?;
                return Ok(accept_with(&state, &challenge, &session, cookie).await);
            }
            let browser = browser.unwrap_or_default();
            let pending = state
                .upstreams
                .park(&provider, &profile, &browser, &challenge, tokens)
                .await?;
            Ok(see_other(&format!("{}upstream/setup?pending={pending}", state.base)).finish())
        }
        Finished::Link {
            provider,
            profile,
            user_id,
            tokens,
        } => {
            let current = current_session(&state, &req).await?;
            if current.as_ref().is_none_or(|(s, _)| s.user_id != user_id) {
                return Err(IdpError::Forbidden(
                    "Sign in to the account you want to link first.".to_owned(),
                ));
            }
            let outcome = match state
                .upstreams
                .link(&provider, &profile, &user_id, tokens.as_ref())
                .await
            {
                Ok(()) => "linked",
                Err(IdpError::Conflict(_)) => {
                    // Tokens replace the stored ones only for this user's own identity.
                    let found = state
                        .upstreams
                        .linked(&provider, &profile.subject, None)
                        .await?;
                    match found {
                        Some(i) if i.user_id == user_id => {
                            state
                                .upstreams
                                .linked(&provider, &profile.subject, tokens.as_ref())
                                .await?;
                            "already"
                        }
                        _ => "taken",
                    }
                }
                Err(e) => return Err(e),
            };
            tracing::info!(user = %user_id, provider = %provider, outcome, "upstream link");
            Ok(see_other(&format!("{}account/providers?result={outcome}", state.base)).finish())
        }
    }
}
