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
    let client_auth = ["client_secret_basic", "client_secret_post"];
    let metadata = json!({
        // Exactly as configured (OIDC Discovery §3, RFC 8414 §2).
        "issuer": config.issuer,
        "jwks_uri": config.endpoint(super::jwks::PATH),
        "token_endpoint": config.endpoint(crate::http::TOKEN_PATH),
        "token_endpoint_auth_methods_supported": client_auth,
        "grant_types_supported": ["client_credentials"],
        // RFC 7662 (introspection) and RFC 7009 (revocation), per RFC 8414 §2.
        "introspection_endpoint": config.endpoint(crate::http::INTROSPECT_PATH),
        "introspection_endpoint_auth_methods_supported": client_auth,
        "revocation_endpoint": config.endpoint(crate::http::REVOKE_PATH),
        "revocation_endpoint_auth_methods_supported": client_auth,
        // Signing algorithms of RFC 9068 access tokens.
        "access_token_signing_alg_values_supported": config.keys.algorithms.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
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
