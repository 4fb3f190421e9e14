//! `GET/POST /signup`: self-registration (when `signup.enabled`), verified by email.
//!
//! As with Keycloak's "Verify email" required action, an account that signed up cannot be
//! used before its address is verified; here the account does not even exist until then:
//! the sign-up is held as a pending single-use link (username, argon2id hash of the
//! password, name; only the token's hash is stored) and the user is created, with
//! `email_verified = true`, when the link is followed (`signup_verify`). A pending sign-up
//! reserves its username until its link expires.
//!
//! POST checks the CSRF token first (403), then the username (400 when invalid, 409 when
//! taken: usernames are public, as in Keycloak), the email address (400), the rate limits
//! per client address and per email (429 with `Retry-After`) and the password (400: both
//! must match and meet `passwords.min_length`). An address that already belongs to an
//! account gets a "someone tried to sign up with your address" message instead of a link,
//! and the page answers exactly as for a new address, so the form never tells whether an
//! address is registered.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use tracing::instrument;

use super::csrf_rejected;
use super::login::set_retry_after;
use super::pages::{self, SignupPage};
use super::self_service::{RATE_LIMITED, back_to_login, carried_challenge, enabled, peer};
use crate::csrf::Purpose;
use crate::links::{PURPOSE_SIGNUP, Rate, repo};
use crate::mail::templates;
use crate::users::{normalize_email, normalize_username};
use crate::{AppState, IdpError};

/// Longest password considered (the login form's limit).
const MAX_PASSWORD: usize = 1024;
/// Longest display name kept.
const MAX_NAME: usize = 200;

/// What a pending sign-up's link holds (its `payload`, JSON). `username` comes first so a
/// pending username can be found by prefix ([`pending_prefix`]).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Pending {
    pub(crate) username: String,
    pub(crate) password_hash: String,
    pub(crate) name: Option<String>,
}

/// The start of the payload of a pending sign-up of `username`.
pub(crate) fn pending_prefix(username: &str) -> String {
    let quoted = serde_json::to_string(username).unwrap_or_default();
    format!("{{\"username\":{quoted},")
}

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
    username: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

/// What the page shows besides the form.
struct Shown<'a> {
    username: &'a str,
    email: &'a str,
    name: &'a str,
    error: Option<&'a str>,
    sent_to: Option<&'a str>,
}

fn page(
    state: &AppState,
    req: &HttpRequest,
    status: StatusCode,
    challenge: &str,
    shown: &Shown<'_>,
) -> Result<HttpResponse, IdpError> {
    let (cookie, set) = state.cookies.ensure_csrf(req)?;
    let csrf = state.csrf.token(&cookie, Purpose::Signup, "");
    let back = back_to_login(state, challenge);
    let body = pages::render(&SignupPage {
        title: if shown.sent_to.is_some() {
            "Check your email"
        } else {
            "Create an account"
        },
        base: &state.base,
        csrf: &csrf,
        challenge,
        username: shown.username,
        email: shown.email,
        name: shown.name,
        min_length: state.users.passwords().min_length(),
        error: shown.error,
        sent_to: shown.sent_to,
        back: back.as_deref(),
    })?;
    Ok(pages::with_csrf_cookie(status, set, body))
}

/// `GET /signup`.
pub(crate) async fn get(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<Query>,
) -> Result<HttpResponse, IdpError> {
    enabled(state.signup.enabled)?;
    let challenge = carried_challenge(query.login_challenge.as_deref());
    let shown = Shown {
        username: "",
        email: "",
        name: "",
        error: None,
        sent_to: None,
    };
    page(&state, &req, StatusCode::OK, &challenge, &shown)
}

/// `POST /signup`.
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
        Purpose::Signup,
        "",
        posted.csrf.as_deref(),
    ) {
        return Err(csrf_rejected("signup"));
    }
    let challenge = carried_challenge(posted.login_challenge.as_deref());
    let name = posted.name.trim();
    let refuse = |status: StatusCode, error: &str| {
        let shown = Shown {
            username: posted.username.trim(),
            email: posted.email.trim(),
            name,
            error: Some(error),
            sent_to: None,
        };
        page(&state, &req, status, &challenge, &shown)
    };
    let username = match normalize_username(&posted.username) {
        Ok(u) => u,
        Err(_) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "A username is 1 to 64 characters: letters a-z, digits and . _ - @ +",
            );
        }
    };
    let Ok(email) = normalize_email(&posted.email) else {
        return refuse(StatusCode::BAD_REQUEST, "Type a valid email address.");
    };
    if name.chars().count() > MAX_NAME {
        return refuse(StatusCode::BAD_REQUEST, "The name is too long.");
    }
    if let Rate::Limited(retry) = state
        .links
        .rate(PURPOSE_SIGNUP, peer(&req), &email, &state.signup)
        .await?
    {
        let mut response = refuse(StatusCode::TOO_MANY_REQUESTS, RATE_LIMITED)?;
        set_retry_after(&mut response, retry);
        return Ok(response);
    }
    let now = state.links.now();
    let taken = repo::username_taken(state.links.db(), &username).await?
        || repo::signup_pending(state.links.db(), &pending_prefix(&username), now).await?
        // account page: a username its former owner changed away from stays theirs a while.
        || crate::account::repo::username_held(state.links.db(), &username, None, now).await?;
    if taken {
        return refuse(
            StatusCode::CONFLICT,
            "This username is taken. Choose another one.",
        );
    }
    if posted.password != posted.confirm {
        return refuse(StatusCode::BAD_REQUEST, "The two passwords differ.");
    }
    if posted.password.len() > MAX_PASSWORD {
        return refuse(StatusCode::BAD_REQUEST, "The password is too long.");
    }
    // Hashed for every valid request, so the answer takes as long for a registered address.
    let password_hash = match state.users.passwords().hash(posted.password.clone()).await {
        Ok(hash) => hash,
        Err(IdpError::Invalid(problem)) => return refuse(StatusCode::BAD_REQUEST, &problem),
        Err(e) => return Err(e),
    };
    match state.users.resolve_login(&email).await? {
        Some(existing_id) => {
            if let Some(existing) = state.users.by_id(&existing_id).await? {
                let reset = state
                    .password_reset
                    .enabled
                    .then(|| format!("{}forgot", state.public_base));
                state.mailer.send_later(templates::signup_address_in_use(
                    &email,
                    &existing.username,
                    reset.as_deref(),
                )?);
            }
            metrics::counter!("idp_signups_total", "result" => "address_in_use").increment(1);
        }
        None => {
            let payload = serde_json::to_string(&Pending {
                username: username.clone(),
                password_hash,
                name: (!name.is_empty()).then(|| name.to_owned()),
            })
            .map_err(|e| IdpError::Task(format!("sign-up payload: {e}")))?;
            let token = state
                .links
                .issue(
                    PURPOSE_SIGNUP,
                    None,
                    &email,
                    Some(payload),
                    state.signup.link_lifetime,
                )
                .await?;
            let link = format!("{}signup/verify?token={token}", state.public_base);
            state.mailer.send_later(templates::signup_verification(
                &email,
                &username,
                &link,
                state.signup.link_lifetime,
            )?);
            metrics::counter!("idp_signups_total", "result" => "pending").increment(1);
        }
    }
    let shown = Shown {
        username: &username,
        email: &email,
        name,
        error: None,
        sent_to: Some(&email),
    };
    page(&state, &req, StatusCode::OK, &challenge, &shown)
}
