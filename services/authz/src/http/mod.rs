//! The public OAuth 2.1 / OpenID Connect HTTP API: one route table, one file per endpoint.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::from_fn;
use actix_web::{App, Error, HttpResponse, web};

use crate::AppState;

mod well_known;

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
    App::new()
        .app_data(web::Data::new(state))
        .wrap(from_fn(runtime::observe_requests))
        .route(
            "/.well-known/openid-configuration",
            web::get().to(well_known::discovery::get),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            web::get().to(well_known::discovery::get),
        )
        .route(well_known::jwks::PATH, web::get().to(well_known::jwks::get))
        .default_service(web::to(not_found))
}

/// Unknown paths: a JSON 404 rather than an empty body.
async fn not_found() -> HttpResponse {
    HttpResponse::NotFound().json(serde_json::json!({ "error": "not_found" }))
}
