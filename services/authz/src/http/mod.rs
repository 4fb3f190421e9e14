//! The public OAuth 2.1 / OpenID Connect HTTP API: one route table, one file per endpoint.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::ErrorHandlers;
use actix_web::{App, Error, web};

use crate::AppState;

mod authorize;
mod authorize_resume;
mod cors;
// device grant (RFC 8628)
mod device_authorization;
mod end_session;
mod introspect;
// JAR (RFC 9101)
pub(crate) mod jar;
mod oauth;
pub(crate) mod pages;
// PAR (RFC 9126)
mod par;
// dcr: Dynamic Client Registration (RFC 7591, RFC 7592)
mod register;
mod register_client;
mod revoke;
mod token;
mod userinfo;
mod well_known;

/// The authorization endpoint.
pub(crate) const AUTHORIZE_PATH: &str = "/authorize";
/// Where idp sends the browser back after a login or consent challenge.
pub(crate) const RESUME_PATH: &str = "/authorize/resume";
/// The UserInfo endpoint.
pub(crate) const USERINFO_PATH: &str = "/userinfo";
/// The RP-Initiated Logout endpoint (`end_session_endpoint`).
pub(crate) const END_SESSION_PATH: &str = "/end_session";

/// The token endpoint.
pub(crate) const TOKEN_PATH: &str = "/token";
/// The introspection endpoint.
pub(crate) const INTROSPECT_PATH: &str = "/introspect";
/// The revocation endpoint.
pub(crate) const REVOKE_PATH: &str = "/revoke";
/// The device authorization endpoint (RFC 8628 §3.1).
pub(crate) const DEVICE_AUTHORIZATION_PATH: &str = "/device_authorization";

/// PAR: the pushed authorization request endpoint (RFC 9126 §2).
pub(crate) const PAR_PATH: &str = "/par";

// dcr
/// The client registration endpoint (RFC 7591 §3); `/register/{client_id}` is each
/// client's configuration endpoint (RFC 7592 §2).
pub(crate) const REGISTER_PATH: &str = "/register";

/// Largest accepted form body on the OAuth endpoints; beyond it the OAuth endpoints
/// answer 413 with the RFC 6749 §5.2 JSON error ([`oauth::too_large`]).
const FORM_LIMIT: usize = 16 * 1024;

pub(crate) use well_known::discovery::document as discovery_document;

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
    runtime::base_app()
        .app_data(web::Data::new(state))
        .route(
            "/.well-known/openid-configuration",
            web::get().to(well_known::discovery::get),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            web::get().to(well_known::discovery::get),
        )
        .route(well_known::jwks::PATH, web::get().to(well_known::jwks::get))
        .app_data(web::PayloadConfig::new(FORM_LIMIT))
        .service(
            web::resource(AUTHORIZE_PATH)
                .route(web::get().to(authorize::get))
                .route(web::post().to(authorize::post)),
        )
        .route(RESUME_PATH, web::get().to(authorize_resume::get))
        .service(
            web::resource(USERINFO_PATH)
                .wrap(ErrorHandlers::new().handler(StatusCode::PAYLOAD_TOO_LARGE, oauth::too_large))
                .route(web::get().to(userinfo::handle))
                .route(web::post().to(userinfo::handle))
                .route(cors::options().to(cors::preflight_get_post)),
        )
        .service(
            web::resource(END_SESSION_PATH)
                .route(web::get().to(end_session::get))
                .route(web::post().to(end_session::post)),
        )
        .service(
            web::resource(TOKEN_PATH)
                .wrap(ErrorHandlers::new().handler(StatusCode::PAYLOAD_TOO_LARGE, oauth::too_large))
                .route(web::post().to(token::post))
                .route(cors::options().to(cors::preflight_post))
                .default_service(web::to(oauth::post_only)),
        )
        .service(
            web::resource(DEVICE_AUTHORIZATION_PATH)
                .wrap(ErrorHandlers::new().handler(StatusCode::PAYLOAD_TOO_LARGE, oauth::too_large))
                .route(web::post().to(device_authorization::post))
                .default_service(web::to(oauth::post_only)),
        )
        .service(
            web::resource(INTROSPECT_PATH)
                .wrap(ErrorHandlers::new().handler(StatusCode::PAYLOAD_TOO_LARGE, oauth::too_large))
                .route(web::post().to(introspect::post))
                .default_service(web::to(oauth::post_only)),
        )
        .service(
            web::resource(REVOKE_PATH)
                .wrap(ErrorHandlers::new().handler(StatusCode::PAYLOAD_TOO_LARGE, oauth::too_large))
                .route(web::post().to(revoke::post))
                .route(cors::options().to(cors::preflight_post))
                .default_service(web::to(oauth::post_only)),
        )
        // PAR (RFC 9126)
        .service(
            web::resource(PAR_PATH)
                .wrap(ErrorHandlers::new().handler(StatusCode::PAYLOAD_TOO_LARGE, oauth::too_large))
                .route(web::post().to(par::post))
                .default_service(web::to(oauth::post_only)),
        )
        // dcr: Dynamic Client Registration (RFC 7591, RFC 7592); bodies capped at
        // FORM_LIMIT like every OAuth endpoint.
        .service(
            web::resource(REGISTER_PATH)
                .wrap(ErrorHandlers::new().handler(StatusCode::PAYLOAD_TOO_LARGE, oauth::too_large))
                .route(web::post().to(register::post))
                .default_service(web::to(oauth::post_only)),
        )
        .service(
            web::resource(format!("{REGISTER_PATH}/{{client_id}}"))
                .wrap(ErrorHandlers::new().handler(StatusCode::PAYLOAD_TOO_LARGE, oauth::too_large))
                .route(web::get().to(register_client::get))
                .route(web::put().to(register_client::put))
                .route(web::delete().to(register_client::delete)),
        )
}
