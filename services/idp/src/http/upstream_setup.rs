//! `GET/POST /upstream/setup?pending=…`: the first-login step after a new upstream identity
//! signed in (Keycloak's "first broker login").
//!
//! - When an account with the upstream's verified email exists, the user must prove it
//!   with its password (through the login throttle, like the login form) before the
//!   identity is linked to it: an email alone never links accounts, and an unverified one
//!   is never even compared.
//! - Otherwise the user chooses a username (the upstream's proposal prefilled) and a new
//!   account is created with the verified email, without a password.
//!
//! Both end in one transaction (pending row gone, user created, identity linked) and then
//! sign the user in and answer authz's login request. Cancel returns to the login form.
//! The pending id is bound to the browser's CSRF cookie; every POST needs the CSRF token.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use proto::authz::v1::RejectRequest;
use serde::Deserialize;
use tracing::instrument;

use super::login::{FAILED, PasswordSignIn, THROTTLED, set_retry_after};
use super::pages::{self, UpstreamSetupPage};
use super::upstream_callback::{accept_with, federated_sign_in};
use super::{csrf_rejected, see_other};
use crate::csrf::Purpose;
use crate::upstream::UpstreamProfile;
use crate::upstream::repo::{Completion, PendingRow};
use crate::users::{Profile, User};
use crate::{AppState, IdpError};

#[derive(Debug, Deserialize)]
pub(crate) struct Query {
    #[serde(default)]
    pending: String,
}

#[derive(Deserialize)]
pub(crate) struct Form {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    pending: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    action: String,
}

/// The account to prove, when the upstream's verified email is taken.
async fn existing(state: &AppState, profile: &UpstreamProfile) -> Result<Option<User>, IdpError> {
    match &profile.email {
        Some(email) => state.users.by_email(email).await,
        None => Ok(None),
    }
}

/// A username proposal: the upstream's, reduced to what usernames allow.
fn proposal(profile: &UpstreamProfile) -> String {
    let raw = profile
        .username
        .clone()
        .or_else(|| {
            profile
                .email
                .as_ref()
                .and_then(|e| e.split('@').next().map(str::to_owned))
        })
        .unwrap_or_default();
    raw.to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || ".-_@+".contains(*c))
        .take(64)
        .collect()
}

struct View<'a> {
    pending: &'a str,
    row: &'a PendingRow,
    profile: &'a UpstreamProfile,
    existing: Option<&'a User>,
}

fn render(
    state: &AppState,
    req: &HttpRequest,
    status: StatusCode,
    view: &View<'_>,
    username: &str,
    error: Option<&str>,
) -> Result<HttpResponse, IdpError> {
    let (cookie, set) = state.cookies.ensure_csrf(req)?;
    let csrf = state
        .csrf
        .token(&cookie, Purpose::UpstreamSetup, view.pending);
    let provider = state
        .upstreams
        .provider(&view.row.provider)
        .map_or(view.row.provider.as_str(), |p| {
            p.config.display_name.as_str()
        });
    let body = pages::render(&UpstreamSetupPage {
        title: if view.existing.is_some() {
            "Link your account"
        } else {
            "Finish signing up"
        },
        base: &state.base,
        mode: if view.existing.is_some() {
            "link"
        } else {
            "create"
        },
        provider,
        pending: view.pending,
        csrf: &csrf,
        username,
        email: view.profile.email.as_deref().unwrap_or_default(),
        error,
    })?;
    Ok(pages::with_csrf_cookie(status, set, body))
}

/// `GET /upstream/setup`.
#[instrument(skip_all)]
pub(crate) async fn get(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<Query>,
) -> Result<HttpResponse, IdpError> {
    let browser = state.cookies.csrf(&req);
    let (row, profile) = state
        .upstreams
        .pending(&query.pending, browser.as_deref())
        .await?;
    let existing = existing(&state, &profile).await?;
    let view = View {
        pending: &query.pending,
        row: &row,
        profile: &profile,
        existing: existing.as_ref(),
    };
    render(
        &state,
        &req,
        StatusCode::OK,
        &view,
        &proposal(&profile),
        None,
    )
}

/// `POST /upstream/setup`.
#[instrument(skip_all)]
pub(crate) async fn post(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<Form>,
) -> Result<HttpResponse, IdpError> {
    let form = form.into_inner();
    let browser = state.cookies.csrf(&req);
    if !state.csrf.verify(
        browser.as_deref(),
        Purpose::UpstreamSetup,
        &form.pending,
        form.csrf.as_deref(),
    ) {
        return Err(csrf_rejected("upstream-setup"));
    }
    let (row, profile) = state
        .upstreams
        .pending(&form.pending, browser.as_deref())
        .await?;
    let existing = existing(&state, &profile).await?;
    let view = View {
        pending: &form.pending,
        row: &row,
        profile: &profile,
        existing: existing.as_ref(),
    };
    let gone =
        || IdpError::Gone("This sign-in attempt has expired or was already completed.".to_owned());
    match (form.action.as_str(), existing.as_ref()) {
        ("cancel", _) => {
            let to = state
                .flow
                .reject_login(RejectRequest {
                    challenge: row.login_challenge.clone(),
                    error: "access_denied".to_owned(),
                    error_description: "The user cancelled the sign-in.".to_owned(),
                })
                .await?;
            Ok(see_other(&to).finish())
        }
        ("link", Some(user)) => {
            // Proving the account is a password sign-in, with its throttle and session.
            let outcome =
                super::login::password_sign_in(&state, &req, &user.username, form.password).await?;
            let (session, cookies) = match outcome {
                PasswordSignIn::Throttled(retry_after) => {
                    let mut response = render(
                        &state,
                        &req,
                        StatusCode::TOO_MANY_REQUESTS,
                        &view,
                        "",
                        Some(THROTTLED),
                    )?;
                    set_retry_after(&mut response, retry_after);
                    return Ok(response);
                }
                PasswordSignIn::Failed => {
                    return render(&state, &req, StatusCode::OK, &view, "", Some(FAILED));
                }
                PasswordSignIn::SignedIn { session, cookies } => (session, cookies),
            };
            match state
                .upstreams
                .complete(&row, Completion::Link(&user.id), profile.email.clone())
                .await
            {
                Ok(true) => {}
                Ok(false) => return Err(gone()),
                Err(IdpError::Conflict(_)) => {
                    return Err(IdpError::Conflict(
                        "This provider account is already linked to another account.".to_owned(),
                    ));
                }
                Err(e) => return Err(e),
            }
            tracing::info!(user = %user.id, provider = %row.provider, "upstream identity linked at first login");
            let mut cookies = cookies.into_iter();
            let Some(session_cookie) = cookies.next() else {
                return Err(IdpError::Task("no session cookie".into()));
            };
            let mut response =
                accept_with(&state, &row.login_challenge, &session, session_cookie).await;
            for cookie in cookies {
                response
                    .headers_mut()
                    .append(actix_web::http::header::SET_COOKIE, cookie);
            }
            Ok(response)
        }
        ("create", None) => {
            let wanted = form.username.trim();
            let new = state.users.federated_row(
                wanted,
                Profile {
                    email: profile.email.clone(),
                    email_verified: profile.email.is_some(),
                    name: profile.name.clone(),
                    ..Profile::default()
                },
            );
            let new = match new {
                Ok(new) => new,
                Err(IdpError::Invalid(message)) => {
                    return render(&state, &req, StatusCode::OK, &view, wanted, Some(&message));
                }
                Err(e) => return Err(e),
            };
            match state
                .upstreams
                .complete(&row, Completion::NewUser(&new), profile.email.clone())
                .await
            {
                Ok(true) => {}
                Ok(false) => return Err(gone()),
                Err(IdpError::Conflict(_)) => {
                    return render(
                        &state,
                        &req,
                        StatusCode::OK,
                        &view,
                        wanted,
                        Some("That username is taken. Choose another one."),
                    );
                }
                Err(e) => return Err(e),
            }
            tracing::info!(user = %new.id, provider = %row.provider, "account created at first upstream login");
            let (session, cookie) = federated_sign_in(&state, &req, &new.id).await?;
            Ok(accept_with(&state, &row.login_challenge, &session, cookie).await)
        }
        _ => Err(IdpError::Invalid("Unknown action.".to_owned())),
    }
}
