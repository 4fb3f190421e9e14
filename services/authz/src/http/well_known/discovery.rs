//! OpenID Connect Discovery 1.0 §4 (`/.well-known/openid-configuration`) and RFC 8414 §3
//! (`/.well-known/oauth-authorization-server`): one metadata document, generated once at
//! start from what this server really offers; a field appears only when its feature works.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::AppState;
use crate::config::AuthzConfig;

/// The metadata document, serialised once.
pub(crate) fn document(config: &AuthzConfig) -> web::Bytes {
    let metadata = json!({
        // Exactly as configured (OIDC Discovery §3, RFC 8414 §2).
        "issuer": config.issuer,
        "jwks_uri": config.endpoint(super::jwks::PATH),
    });
    web::Bytes::from(serde_json::to_vec(&metadata).unwrap_or_default())
}

/// `GET` of either well-known location: the precomputed bytes, cacheable and readable from
/// any origin.
pub(crate) async fn get(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .body(state.discovery.clone())
}
