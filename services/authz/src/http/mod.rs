//! The public OAuth 2.1 / OpenID Connect HTTP API: one route table, one file per endpoint.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{App, Error, web};

use crate::AppState;

mod introspect;
mod oauth;
mod revoke;
mod token;
mod well_known;

/// The token endpoint.
pub(crate) const TOKEN_PATH: &str = "/token";
/// The introspection endpoint.
pub(crate) const INTROSPECT_PATH: &str = "/introspect";
/// The revocation endpoint.
pub(crate) const REVOKE_PATH: &str = "/revoke";

/// Largest accepted form body on the OAuth endpoints.
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
            web::resource(TOKEN_PATH)
                .route(web::post().to(token::post))
                .default_service(web::to(oauth::post_only)),
        )
        .service(
            web::resource(INTROSPECT_PATH)
                .route(web::post().to(introspect::post))
                .default_service(web::to(oauth::post_only)),
        )
        .service(
            web::resource(REVOKE_PATH)
                .route(web::post().to(revoke::post))
                .default_service(web::to(oauth::post_only)),
        )
}
