//! The JWK Set (RFC 7517 §5) at the `jwks_uri` of discovery.
//!
//! Served from the bytes the key ring serialised when keys last changed: no database, no
//! serialisation per request. `Cache-Control: max-age` is `keys.jwks_max_age`, which the
//! configuration keeps shorter than `keys.publish_ahead`, so a cache always learns a key
//! before it signs anything.

use actix_web::http::header;
use actix_web::{HttpResponse, web};

use crate::AppState;

/// Where the JWKS is served.
pub(crate) const PATH: &str = "/.well-known/jwks.json";

/// `GET /.well-known/jwks.json`.
pub(crate) async fn get(state: web::Data<AppState>) -> HttpResponse {
    let jwks = state.keys.ring().jwks();
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::CACHE_CONTROL, state.jwks_cache_control.clone()))
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .body(web::Bytes::from_owner(jwks))
}
