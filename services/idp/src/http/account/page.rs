//! `GET /account`: the account page of the signed-in user (a `303` to `/account/login`
//! without a live session). The applications come from authz (`LoginFlow.ListConsents`);
//! when authz cannot answer, the rest of the page is still shown and the section says so.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use tracing::instrument;

use super::{Form, to_login, token};
use crate::http::current_session;
use crate::http::pages::{self, describe_scope};
use crate::sessions::Session;
use crate::users::User;
use crate::{AppState, IdpError};

#[derive(Debug, Deserialize)]
pub(crate) struct Query {
    done: Option<String>,
}

/// One session as listed.
pub(crate) struct SessionView {
    pub(crate) current: bool,
    pub(crate) signed_in: String,
    pub(crate) last_seen: String,
    pub(crate) methods: String,
}

/// One application as listed.
pub(crate) struct AppView {
    pub(crate) client_id: String,
    pub(crate) name: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) since: String,
}

/// The account page.
#[derive(Template)]
#[template(path = "account.html")]
pub(crate) struct AccountPage<'a> {
    pub(crate) title: &'a str,
    pub(crate) base: &'a str,
    pub(crate) user: &'a User,
    pub(crate) notice: Option<&'a str>,
    pub(crate) error: Option<&'a str>,
    pub(crate) csrf_profile: String,
    pub(crate) csrf_username: String,
    pub(crate) csrf_password: String,
    pub(crate) csrf_sessions: String,
    pub(crate) csrf_apps: String,
    pub(crate) csrf_delete: String,
    pub(crate) csrf_email: String,
    pub(crate) csrf_avatar: String,
    /// Whether the email change form is shown.
    pub(crate) email_change: bool,
    /// The stored avatar, as a same-origin path.
    pub(crate) avatar: Option<String>,
    pub(crate) sessions: Vec<SessionView>,
    /// `None` when authz could not be asked.
    pub(crate) apps: Option<Vec<AppView>>,
}

/// Unix seconds as `2026-12-06 15:04:05 UTC`.
fn when(unix: i64) -> String {
    let t =
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(unix).unwrap_or(0));
    humantime::format_rfc3339_seconds(t)
        .to_string()
        .replacen('T', " ", 1)
        .replace('Z', " UTC")
}

/// What a successful post's redirect shows.
fn notice(done: &str) -> Option<&'static str> {
    Some(match done {
        "profile" => "Your profile is saved.",
        "username" => "Your username is changed.",
        "password" => "Your password is changed; your other sessions have ended.",
        "sessions" => "Your other sessions have ended.",
        "app" => "The application's access is withdrawn.",
        "signed-in" => "You are signed in.",
        "email-sent" => "We sent a link to the new address. Your email changes once you open it.",
        "avatar" => "Your picture is saved.",
        "avatar-removed" => "Your picture is removed.",
        _ => return None,
    })
}

/// The page for `user` in `session`, with fresh form tokens.
pub(crate) async fn render(
    state: &AppState,
    req: &HttpRequest,
    session: &Session,
    user: &User,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
) -> Result<HttpResponse, IdpError> {
    let (cookie, set) = state.cookies.ensure_csrf(req)?;
    let sessions = state
        .account
        .sessions(&user.id)
        .await?
        .into_iter()
        .map(|s| SessionView {
            current: s.id == session.id,
            signed_in: when(s.auth_time),
            last_seen: when(s.last_seen_at),
            methods: s.amr,
        })
        .collect();
    let apps = match state.account.apps(&user.id).await {
        Ok(list) => Some(
            list.into_iter()
                .map(|c| {
                    let client = c.client.unwrap_or_default();
                    AppView {
                        name: if client.name.is_empty() {
                            client.client_id.clone()
                        } else {
                            client.name
                        },
                        client_id: client.client_id,
                        scopes: c.scopes.iter().map(|s| describe_scope(s)).collect(),
                        since: when(c.updated_at),
                    }
                })
                .collect(),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "the applications could not be listed");
            None
        }
    };
    let body = pages::render(&AccountPage {
        title: "Your account",
        base: &state.base,
        user,
        notice,
        error,
        csrf_profile: token(state, &cookie, Form::Profile, session),
        csrf_username: token(state, &cookie, Form::Username, session),
        csrf_password: token(state, &cookie, Form::Password, session),
        csrf_sessions: token(state, &cookie, Form::Sessions, session),
        csrf_apps: token(state, &cookie, Form::Apps, session),
        csrf_delete: token(state, &cookie, Form::Delete, session),
        csrf_email: token(state, &cookie, Form::Email, session),
        csrf_avatar: token(state, &cookie, Form::Avatar, session),
        email_change: state.account.email_change_enabled(),
        avatar: state
            .account
            .local_avatar(user.profile.picture.as_deref(), &state.base),
        sessions,
        apps,
    })?;
    Ok(pages::with_csrf_cookie(status, set, body))
}

/// `GET /account`.
#[instrument(skip_all)]
pub(crate) async fn get(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<Query>,
) -> Result<HttpResponse, IdpError> {
    let Some((session, user)) = current_session(&state, &req).await? else {
        return Ok(to_login(&state));
    };
    let notice = query.done.as_deref().and_then(notice);
    render(&state, &req, &session, &user, StatusCode::OK, notice, None).await
}
