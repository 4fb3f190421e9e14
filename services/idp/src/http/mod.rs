//! The public HTTP pages of idp: one route table, one file per page.
//!
//! - `GET/POST /login?login_challenge=…`: the login form, or an immediate `AcceptLogin`
//!   when the browser's session is good enough for the request;
//! - `GET/POST /consent?consent_challenge=…`: the consent form;
//! - `GET/POST /logout`: confirmation, then the idp session ends;
//! - `GET/POST /device[?user_code=…]`: the device verification page (RFC 8628 §3.3).

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{App, Error, HttpRequest, web};

use crate::sessions::Session;
use crate::users::User;
use crate::{AppState, IdpError};

mod consent;
// device grant (RFC 8628)
pub(crate) mod cookies;
mod device;
mod error;
mod login;
mod logout;
pub(crate) mod pages;
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

/// The browser's live session and its user. A session whose user is gone or disabled is
/// ended here and counts as none.
pub(crate) async fn current_session(
    state: &AppState,
    req: &HttpRequest,
) -> Result<Option<(Session, User)>, IdpError> {
    let Some(secret) = state.cookies.session(req) else {
        return Ok(None);
    };
    let Some(session) = state.sessions.by_secret(&secret).await? else {
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
