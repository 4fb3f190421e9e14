//! The public HTTP pages of idp: one route table, one file per page.
//!
//! - `GET/POST /login?login_challenge=…`: the login form, or an immediate `AcceptLogin`
//!   when the browser's session is good enough for the request;
//! - `GET/POST /consent?consent_challenge=…`: the consent form;
//! - `GET/POST /logout`: confirmation, then the idp session ends;
//! - `GET/POST /device[?user_code=…]`: the device verification page (RFC 8628 §3.3);
//! - `/account…`: the signed-in user's account page (see `account`).
//! - `GET/POST /forgot`, `/reset?token=…`: password reset by email (when enabled);
//! - `GET/POST /signup`, `/signup/verify?token=…`: self-registration (when enabled).

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{App, Error, HttpRequest, web};

use crate::sessions::Session;
use crate::users::User;
use crate::{AppState, IdpError};

// account page
mod account;
mod consent;
// device grant (RFC 8628)
pub(crate) mod cookies;
mod device;
mod error;
mod login;
mod logout;
pub(crate) mod pages;
// email, sign-up and password reset (issue 21)
mod forgot;
mod reset;
mod self_service;
mod signup;
mod signup_verify;
// upstream sign-in
mod account_providers;
mod upstream_callback;
mod upstream_setup;
mod upstream_start;

pub(crate) use error::error_page;

/// Largest accepted form body.
const FORM_LIMIT: usize = 16 * 1024;

/// The application served on the public listener.
pub(crate) fn app(
    state: AppState,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = Error,
        InitError = (),
    >,
> {
    let form = web::FormConfig::default()
        .limit(FORM_LIMIT)
        .error_handler(|e, _| {
            actix_web::error::InternalError::from_response(
                e,
                error_page(
                    actix_web::http::StatusCode::BAD_REQUEST,
                    "Bad request",
                    "The form could not be read.",
                ),
            )
            .into()
        });
    runtime::base_app()
        .app_data(web::Data::new(state))
        .app_data(form)
        .app_data(web::QueryConfig::default().error_handler(|e, _| {
            actix_web::error::InternalError::from_response(
                e,
                error_page(
                    actix_web::http::StatusCode::BAD_REQUEST,
                    "Bad request",
                    "The address is malformed.",
                ),
            )
            .into()
        }))
        .service(
            web::resource("/login")
                .route(web::get().to(login::get))
                .route(web::post().to(login::post)),
        )
        .service(
            web::resource("/consent")
                .route(web::get().to(consent::get))
                .route(web::post().to(consent::post)),
        )
        .service(
            web::resource("/device")
                .route(web::get().to(device::get))
                .route(web::post().to(device::post)),
        )
        .service(
            web::resource("/logout")
                .route(web::get().to(logout::get))
                .route(web::post().to(logout::post)),
        )
        // account page
        .service(web::resource("/account").route(web::get().to(account::page::get)))
        .service(
            web::resource("/account/login")
                .route(web::get().to(account::login::get))
                .route(web::post().to(account::login::post)),
        )
        .service(web::resource("/account/profile").route(web::post().to(account::profile::post)))
        .service(web::resource("/account/username").route(web::post().to(account::username::post)))
        .service(web::resource("/account/password").route(web::post().to(account::password::post)))
        .service(web::resource("/account/sessions").route(web::post().to(account::sessions::post)))
        .service(web::resource("/account/apps/revoke").route(web::post().to(account::apps::post)))
        .service(web::resource("/account/delete").route(web::post().to(account::delete::post)))
        .service(web::resource("/account/email").route(web::post().to(account::email::post)))
        .service(
            web::resource("/account/email/verify")
                .route(web::get().to(account::email_verify::get))
                .route(web::post().to(account::email_verify::post)),
        )
        .service(web::resource("/account/avatar").route(web::post().to(account::avatar::post)))
        .service(
            web::resource("/account/avatar/delete").route(web::post().to(account::avatar::delete)),
        )
        .service(web::resource("/avatars/{user_id}").route(web::get().to(account::avatars::get)))
        // email, sign-up and password reset (issue 21)
        .service(
            web::resource("/forgot")
                .route(web::get().to(forgot::get))
                .route(web::post().to(forgot::post)),
        )
        .service(
            web::resource("/reset")
                .route(web::get().to(reset::get))
                .route(web::post().to(reset::post)),
        )
        .service(
            web::resource("/signup")
                .route(web::get().to(signup::get))
                .route(web::post().to(signup::post)),
        )
        .service(
            web::resource("/signup/verify")
                .route(web::get().to(signup_verify::get))
                .route(web::post().to(signup_verify::post)),
        )
        // upstream sign-in
        .service(web::resource("/upstream/start").route(web::post().to(upstream_start::post)))
        .service(
            web::resource("/upstream/{provider}/callback")
                .route(web::get().to(upstream_callback::get)),
        )
        .service(
            web::resource("/upstream/setup")
                .route(web::get().to(upstream_setup::get))
                .route(web::post().to(upstream_setup::post)),
        )
        .service(
            web::resource("/account/providers")
                .route(web::get().to(account_providers::get))
                .route(web::post().to(account_providers::post)),
        )
}

/// Records a security event of the pages in the audit trail (issue 18) at the state's
/// clock, from the browser's address, and logs it.
pub(crate) async fn audit(
    state: &AppState,
    req: &HttpRequest,
    event: audit::AuditEvent,
) -> Result<(), IdpError> {
    let event = event
        .at(audit::unix_ms(state.clock.now()))
        .from(req.peer_addr().map(|a| a.ip()));
    Ok(audit::record(&state.db, &event).await?)
}

/// The browser's live session, named by its session cookie, without reading its user
/// (see [`current_session`] for that).
pub(crate) async fn browser_session(
    state: &AppState,
    req: &HttpRequest,
) -> Result<Option<Session>, IdpError> {
    match state.cookies.session(req) {
        Some(secret) => state.sessions.by_secret(&secret).await,
        None => Ok(None),
    }
}

/// The browser's live session and its user. A session whose user is gone or disabled is
/// ended here and counts as none.
pub(crate) async fn current_session(
    state: &AppState,
    req: &HttpRequest,
) -> Result<Option<(Session, User)>, IdpError> {
    let Some(session) = browser_session(state, req).await? else {
        return Ok(None);
    };
    match state.users.by_id(&session.user_id).await? {
        Some(user) if !user.disabled => Ok(Some((session, user))),
        _ => {
            state.sessions.end(&session.id).await?;
            Ok(None)
        }
    }
}

/// A challenge from the query or a form: present and of a sane size.
pub(crate) fn challenge(value: Option<&str>, name: &str) -> Result<String, IdpError> {
    match value.map(str::trim) {
        Some(c) if !c.is_empty() && c.len() <= 512 => Ok(c.to_owned()),
        _ => Err(IdpError::Invalid(format!(
            "This page needs a {name}; open it from the application you are signing in to."
        ))),
    }
}

/// `303 See Other` to `location`, never cached.
pub(crate) fn see_other(location: &str) -> actix_web::HttpResponseBuilder {
    let mut builder = actix_web::HttpResponse::SeeOther();
    builder
        .insert_header((actix_web::http::header::LOCATION, location))
        .insert_header(("Cache-Control", "no-store"));
    builder
}

/// Counts a refused form post.
pub(crate) fn csrf_rejected(form: &'static str) -> IdpError {
    metrics::counter!("idp_csrf_rejected_total", "form" => form).increment(1);
    IdpError::Forbidden(
        "This form has expired or did not come from this site. Go back, reload the page and try again."
            .to_owned(),
    )
}
