//! `GET/POST /reset?token=…`: the new password form of a reset link (when
//! `password_reset.enabled`).
//!
//! GET shows the form for a live link; an unknown, altered, expired or used link gets one
//! answer (400, see `self_service::dead_link`). POST checks the CSRF token first (403),
//! then that both passwords match and meet the policy (400, the form again), hashes the
//! new password (argon2id, off the async runtime) and then, in one transaction, deletes the
//! link (so it works once, however many requests race), stores the hash, ends every idp
//! session of the account and drops its other reset links. authz is then asked to revoke
//! the account's grants and sessions (`RevokeSubject`; logged when authz cannot be
//! reached, the password change stands), and a "your password was changed" message goes to
//! the account's address.

use actix_web::http::StatusCode;
use actix_web::http::header::SET_COOKIE;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use tracing::instrument;

use super::csrf_rejected;
use super::pages::{self, ResetPage};
use super::self_service::{dead_link, enabled, notice};
use crate::csrf::Purpose;
use crate::links::{PURPOSE_RESET, repo, token_hash};
use crate::{AppState, IdpError};

/// Longest password considered (the login form's limit).
const MAX_PASSWORD: usize = 1024;

#[derive(Debug, Deserialize)]
pub(crate) struct Query {
    token: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct Form {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

fn again(state: &AppState) -> Result<HttpResponse, IdpError> {
    dead_link(state, "forgot", "Ask for a new link")
}

fn form(
    state: &AppState,
    req: &HttpRequest,
    status: StatusCode,
    token: &str,
    username: &str,
    error: Option<&str>,
) -> Result<HttpResponse, IdpError> {
    let (cookie, set) = state.cookies.ensure_csrf(req)?;
    let csrf = state.csrf.token(&cookie, Purpose::Reset, "");
    let body = pages::render(&ResetPage {
        title: "Choose a new password",
        base: &state.base,
        csrf: &csrf,
        token,
        username,
        min_length: state.users.passwords().min_length(),
        error,
    })?;
    Ok(pages::with_csrf_cookie(status, set, body))
}

/// The username of a live link's account, or `None` for a dead link.
async fn live_username(state: &AppState, token: &str) -> Result<Option<String>, IdpError> {
    let Some(link) = state.links.peek(PURPOSE_RESET, token).await? else {
        return Ok(None);
    };
    let Some(user_id) = link.user_id else {
        return Ok(None);
    };
    Ok(state
        .users
        .by_id(&user_id)
        .await?
        .filter(|u| !u.disabled)
        .map(|u| u.username))
}

/// `GET /reset?token=…`.
#[instrument(skip_all)]
pub(crate) async fn get(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<Query>,
) -> Result<HttpResponse, IdpError> {
    enabled(state.password_reset.enabled)?;
    let token = query.token.as_deref().unwrap_or_default().trim();
    match live_username(&state, token).await? {
        Some(username) => form(&state, &req, StatusCode::OK, token, &username, None),
        None => again(&state),
    }
}

/// `POST /reset`.
#[instrument(skip_all)]
pub(crate) async fn post(
    state: web::Data<AppState>,
    req: HttpRequest,
    form_data: web::Form<Form>,
) -> Result<HttpResponse, IdpError> {
    enabled(state.password_reset.enabled)?;
    let posted = form_data.into_inner();
    if !state.csrf.verify(
        state.cookies.csrf(&req).as_deref(),
        Purpose::Reset,
        "",
        posted.csrf.as_deref(),
    ) {
        return Err(csrf_rejected("reset"));
    }
    let token = posted.token.trim();
    let Some(username) = live_username(&state, token).await? else {
        return again(&state);
    };
    let problem = if posted.password != posted.confirm {
        Some("The two passwords differ.".to_owned())
    } else if posted.password.len() > MAX_PASSWORD {
        Some("The password is too long.".to_owned())
    } else {
        None
    };
    if let Some(problem) = problem {
        return form(
            &state,
            &req,
            StatusCode::BAD_REQUEST,
            token,
            &username,
            Some(&problem),
        );
    }
    let hash = match state.users.passwords().hash(posted.password).await {
        Ok(hash) => hash,
        Err(IdpError::Invalid(problem)) => {
            return form(
                &state,
                &req,
                StatusCode::BAD_REQUEST,
                token,
                &username,
                Some(&problem),
            );
        }
        Err(e) => return Err(e),
    };
    let Some(hash_key) = token_hash(token) else {
        return again(&state);
    };
    let now = state.links.now();
    let Some((row, ended)) = repo::use_reset_link(state.links.db(), &hash_key, now, &hash).await?
    else {
        return again(&state);
    };
    let user = row.user();
    metrics::counter!("idp_email_links_total", "result" => "reset").increment(1);
    tracing::info!(user = %user.id, sessions_ended = ended, "password reset by email link");
    if let Err(e) = state.flow.revoke_subject(&user.id).await {
        tracing::warn!(user = %user.id, error = %e, "password reset: authz could not revoke the account's grants");
    }
    state.mailer.notify_password_changed(&user, now, true)?;
    let mut response = notice(
        StatusCode::OK,
        "Password changed",
        "Your new password is saved and every session of your account was signed out. Go back to the application and sign in with it.",
        None,
    )?;
    response
        .headers_mut()
        .append(SET_COOKIE, state.cookies.clear_session());
    Ok(response)
}
