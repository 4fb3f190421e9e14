//! The rs API: one route table, one file per endpoint.
//!
//! Every route under `/api/v1` but the public `/status` needs a valid access token (the
//! `guard` crate): `/me` any,
//! `GET /items` the scope `items:read` ([`guard::Scoped`]), `POST /items` the scope
//! `items:write` (the [`guard::Guard::protect`] middleware, so the body is parsed only for
//! an authorised caller). With `exchange.enabled`: `GET /delegate` any token (it calls
//! `/downstream` with an exchanged token, RFC 8693), `GET /downstream` a token for the
//! exchange audience (its own guard).

mod delegate;
mod downstream;
mod items;
mod me;
mod status;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::{App, web};

use crate::{AppState, RsError};

/// Largest JSON body accepted.
const JSON_LIMIT: usize = 16 * 1024;

/// The application served on the public listener.
pub(crate) fn app(
    state: AppState,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let mut api = web::scope("/api/v1")
        .route("/status", web::get().to(status::get))
        .route("/me", web::get().to(me::get))
        .route("/items", web::get().to(items::list::get))
        .route(
            "/items",
            web::post()
                .to(items::create::post)
                .wrap(state.guard.protect(&[items::WRITE])),
        );
    if let Some(delegation) = &state.delegation {
        api = api
            .service(
                web::resource("/delegate")
                    .app_data(web::Data::from(delegation.exchanger.clone()))
                    .route(web::get().to(delegate::get)),
            )
            .service(
                // The resource's guard is found before the application's: only tokens for
                // the exchange audience get in.
                web::resource("/downstream")
                    .app_data(delegation.guard.clone())
                    .route(web::get().to(downstream::get)),
            );
    }
    runtime::base_app()
        .app_data(state.guard.clone())
        .app_data(web::Data::from(state.items.clone()))
        .app_data(json_config())
        .service(api)
}

/// JSON bodies: 413 when too large, 415 when not JSON, 422 when not a valid request.
fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(JSON_LIMIT)
        .error_handler(|err, _req| {
            use actix_web::error::JsonPayloadError as E;
            let error = match &err {
                E::Deserialize(e) if e.is_data() || e.is_eof() || e.is_syntax() => {
                    RsError::InvalidItem(e.to_string())
                }
                E::Overflow { .. } | E::OverflowKnownLength { .. } => {
                    RsError::Body(StatusCode::PAYLOAD_TOO_LARGE, err.to_string())
                }
                E::ContentType => RsError::Body(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "the body must be application/json".to_owned(),
                ),
                _ => RsError::Body(StatusCode::BAD_REQUEST, err.to_string()),
            };
            error.into()
        })
}
