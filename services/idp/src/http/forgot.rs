//! `GET/POST /forgot`: "forgot password?" (OWASP Forgot Password cheat sheet), when
//! `password_reset.enabled`.
//!
//! POST checks the CSRF token first (403 otherwise), then the rate limits per client
//! address and per typed username or email (429 with `Retry-After`, counted whether or not
//! an account matches). For an enabled account with an email address it stores a new
//! single-use reset link (only its hash; earlier links of the account stop working) and
//! mails it in the background. The answer is the same page in every case, so it never
//! tells whether an account exists.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use tracing::instrument;

use super::csrf_rejected;
use super::login::set_retry_after;
use super::pages::{self, ForgotPage};
use super::self_service::{RATE_LIMITED, back_to_login, carried_challenge, enabled, peer};
use crate::csrf::Purpose;
use crate::links::{PURPOSE_RESET, Rate};
use crate::mail::templates;
use crate::{AppState, IdpError};

/// Longest login name considered.
const MAX_LOGIN: usize = 254;

#[derive(Debug, Deserialize)]
pub(crate) struct Query {
    login_challenge: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct Form {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    login_challenge: Option<String>,
    #[serde(default)]
    login: String,
}

fn page(
    state: &AppState,
    req: &HttpRequest,
    status: StatusCode,
    challenge: &str,
    error: Option<&str>,
    sent: bool,
) -> Result<HttpResponse, IdpError> {
    let (cookie, set) = state.cookies.ensure_csrf(req)?;
    let csrf = state.csrf.token(&cookie, Purpose::Forgot, "");
    let back = back_to_login(state, challenge);
    let body = pages::render(&ForgotPage {
        title: if sent {
            "Check your email"
        } else {
            "Forgot password"
        },
        base: &state.base,
        csrf: &csrf,
        challenge,
        error,
        sent,
        back: back.as_deref(),
    })?;
    Ok(pages::with_csrf_cookie(status, set, body))
}

/// `GET /forgot`.
pub(crate) async fn get(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<Query>,
) -> Result<HttpResponse, IdpError> {
    enabled(state.password_reset.enabled)?;
    let challenge = carried_challenge(query.login_challenge.as_deref());
    page(&state, &req, StatusCode::OK, &challenge, None, false)
}

/// `POST /forgot`.
#[instrument(skip_all)]
pub(crate) async fn post(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<Form>,
) -> Result<HttpResponse, IdpError> {
    enabled(state.password_reset.enabled)?;
    let form = form.into_inner();
    if !state.csrf.verify(
        state.cookies.csrf(&req).as_deref(),
        Purpose::Forgot,
        "",
        form.csrf.as_deref(),
    ) {
        return Err(csrf_rejected("forgot"));
    }
    let challenge = carried_challenge(form.login_challenge.as_deref());
    let login = form.login.trim().to_lowercase();
    if login.is_empty() || login.len() > MAX_LOGIN {
        return page(
            &state,
            &req,
            StatusCode::BAD_REQUEST,
            &challenge,
            Some("Type your username or email address."),
            false,
        );
    }
    if let Rate::Limited(retry) = state
        .links
        .rate(PURPOSE_RESET, peer(&req), &login, &state.password_reset)
        .await?
    {
        let mut response = page(
            &state,
            &req,
            StatusCode::TOO_MANY_REQUESTS,
            &challenge,
            Some(RATE_LIMITED),
            false,
        )?;
        set_retry_after(&mut response, retry);
        return Ok(response);
    }
    let user_id = state.users.resolve_login(&login).await?;
    let user = match user_id {
        Some(id) => state.users.by_id(&id).await?,
        None => None,
    };
    match user {
        Some(user) if !user.disabled && user.profile.email.is_some() => {
            let to = user.profile.email.clone().unwrap_or_default();
            let token = state
                .links
                .issue(
                    PURPOSE_RESET,
                    Some(&user.id),
                    &to,
                    None,
                    state.password_reset.link_lifetime,
                )
                .await?;
            let link = format!("{}reset?token={token}", state.public_base);
            state.mailer.send_later(templates::password_reset(
                &to,
                &user.username,
                &link,
                state.password_reset.link_lifetime,
            )?);
            metrics::counter!("idp_password_reset_requests_total", "result" => "sent").increment(1);
        }
        _ => {
            metrics::counter!("idp_password_reset_requests_total", "result" => "no_account")
                .increment(1);
        }
    }
    page(&state, &req, StatusCode::OK, &challenge, None, true)
}
