//! `GET/POST /signup/verify?token=…`: activating a sign-up by its emailed link (when
//! `signup.enabled`).
//!
//! GET shows what the link activates and a button (link scanners that fetch URLs in mail
//! must not use it up); an unknown, altered, expired or used link gets one answer (400).
//! POST checks the CSRF token first (403), then, in one transaction, deletes the link and
//! creates the account with `email_verified = true` (OpenID Connect Core 1.0 §5.1: the
//! address was verified by following the link). A username or address taken since the
//! sign-up answers 409 and nothing is created.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use tracing::instrument;

use super::csrf_rejected;
use super::pages::{self, SignupVerifyPage};
use super::self_service::{dead_link, enabled, notice};
use super::signup::Pending;
use crate::crypto::random_b64;
use crate::csrf::Purpose;
use crate::links::repo::{self, SignupUse};
use crate::links::{PURPOSE_SIGNUP, token_hash};
use crate::users::repo::Row;
use crate::{AppState, IdpError};

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
}

fn again(state: &AppState) -> Result<HttpResponse, IdpError> {
    dead_link(state, "signup", "Sign up again")
}

/// `GET /signup/verify?token=…`.
#[instrument(skip_all)]
pub(crate) async fn get(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<Query>,
) -> Result<HttpResponse, IdpError> {
    enabled(state.signup.enabled)?;
    let token = query.token.as_deref().unwrap_or_default().trim();
    let Some(link) = state.links.peek(PURPOSE_SIGNUP, token).await? else {
        return again(&state);
    };
    let Some(pending) = link
        .payload
        .as_deref()
        .and_then(|p| serde_json::from_str::<Pending>(p).ok())
    else {
        return again(&state);
    };
    let (cookie, set) = state.cookies.ensure_csrf(&req)?;
    let csrf = state.csrf.token(&cookie, Purpose::SignupVerify, "");
    let body = pages::render(&SignupVerifyPage {
        title: "Activate your account",
        base: &state.base,
        csrf: &csrf,
        token,
        username: &pending.username,
        email: &link.email,
    })?;
    Ok(pages::with_csrf_cookie(StatusCode::OK, set, body))
}

/// `POST /signup/verify`.
#[instrument(skip_all)]
pub(crate) async fn post(
    state: web::Data<AppState>,
    req: HttpRequest,
    form_data: web::Form<Form>,
) -> Result<HttpResponse, IdpError> {
    enabled(state.signup.enabled)?;
    let posted = form_data.into_inner();
    if !state.csrf.verify(
        state.cookies.csrf(&req).as_deref(),
        Purpose::SignupVerify,
        "",
        posted.csrf.as_deref(),
    ) {
        return Err(csrf_rejected("signup_verify"));
    }
    let Some(hash) = token_hash(&posted.token) else {
        return again(&state);
    };
    let now = state.links.now();
    let id = random_b64(16)?;
    let make = |link: &repo::LinkRow| -> Option<Row> {
        let pending: Pending = serde_json::from_str(link.payload.as_deref()?).ok()?;
        Some(Row {
            id: id.clone(),
            username: pending.username,
            email: Some(link.email.clone()),
            email_verified: true,
            name: pending.name,
            given_name: None,
            family_name: None,
            picture: None,
            locale: None,
            password_hash: pending.password_hash,
            disabled: false,
            created_at: now,
            updated_at: now,
        })
    };
    match repo::use_signup_link(state.links.db(), &hash, now, &make).await? {
        SignupUse::NoLink => again(&state),
        SignupUse::Taken => {
            metrics::counter!("idp_signups_total", "result" => "taken_meanwhile").increment(1);
            let href = format!("{}signup", state.base);
            notice(
                StatusCode::CONFLICT,
                "Username or address taken",
                "Someone registered this username or email address since you signed up. Sign up again with another username.",
                Some((&href, "Sign up again")),
            )
        }
        SignupUse::Created(row) => {
            metrics::counter!("idp_signups_total", "result" => "verified").increment(1);
            tracing::info!(user = %row.id, "account created by a verified sign-up");
            notice(
                StatusCode::OK,
                "Your account is ready",
                "Your email address is verified and your account is active. Go back to the application and sign in.",
                None,
            )
        }
    }
}
