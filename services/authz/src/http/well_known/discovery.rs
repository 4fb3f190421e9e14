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
    // clientauth: every method a client may be registered for (RFC 8414 §2, OpenID Connect
    // Discovery §3); introspection is for confidential clients only.
    let mut auth_methods = crate::http::oauth::SUPPORTED_AUTH_METHODS.to_vec();
    // mTLS (RFC 8705 §2) only where a proxy forwards client certificates or authz's own
    // listener requests them.
    if config.client_auth.mtls() {
        auth_methods.extend(["tls_client_auth", "self_signed_tls_client_auth"]);
    }
    let client_auth: Vec<&str> = auth_methods
        .iter()
        .copied()
        .filter(|m| *m != "none")
        .collect();
    let auth_algs = crate::http::oauth::ASSERTION_ALGORITHMS;
    let algorithms: Vec<&str> = config.keys.algorithms.iter().map(|a| a.as_str()).collect();
    let mut metadata = json!({
        // Exactly as configured (OIDC Discovery §3, RFC 8414 §2).
        "issuer": config.issuer,
        "authorization_endpoint": config.endpoint(crate::http::AUTHORIZE_PATH),
        "token_endpoint": config.endpoint(crate::http::TOKEN_PATH),
        "userinfo_endpoint": config.endpoint(crate::http::USERINFO_PATH),
        "jwks_uri": config.endpoint(super::jwks::PATH),
        // RP-Initiated Logout 1.0 §2.1.
        "end_session_endpoint": config.endpoint(crate::http::END_SESSION_PATH),
        // logout: Back-Channel Logout 1.0 §2.1 (logout tokens always carry `sid`) and
        // Front-Channel Logout 1.0 §3 (`iss` and `sid` always added to the iframe URL).
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "frontchannel_logout_supported": true,
        "frontchannel_logout_session_supported": true,
        "scopes_supported": crate::grants::claims::SCOPES,
        "response_types_supported": ["code"],
        // OAuth 2.0 Multiple Response Type Encoding Practices §2.1, Form Post Response Mode.
        "response_modes_supported": domain::ResponseMode::ALL.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
        "grant_types_supported": domain::GrantType::ALL.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algorithms,
        "claims_supported": crate::grants::claims::SUPPORTED,
        "claims_parameter_supported": false,
        "request_parameter_supported": true,
        "request_uri_parameter_supported": false,
        // Defined by Initiating User Registration via OpenID Connect 1.0; select_account is
        // recognised but answered with account_selection_required, so it is not listed.
        "prompt_values_supported": domain::Prompt::SUPPORTED,
        // RFC 8414 §2 (RFC 7636 methods): S256 only, required from every client.
        "code_challenge_methods_supported": ["S256"],
        // RFC 9207 §3: every authorization response carries `iss`.
        "authorization_response_iss_parameter_supported": true,
        "token_endpoint_auth_methods_supported": auth_methods,
        // clientauth: client assertions (RFC 7523, OpenID Connect Core §9).
        "token_endpoint_auth_signing_alg_values_supported": auth_algs,
        "introspection_endpoint_auth_signing_alg_values_supported": auth_algs,
        "revocation_endpoint_auth_signing_alg_values_supported": auth_algs,
        // RFC 7662 (introspection) and RFC 7009 (revocation), per RFC 8414 §2.
        "introspection_endpoint": config.endpoint(crate::http::INTROSPECT_PATH),
        "introspection_endpoint_auth_methods_supported": client_auth,
        "revocation_endpoint": config.endpoint(crate::http::REVOKE_PATH),
        "revocation_endpoint_auth_methods_supported": auth_methods,
        // RFC 8628 §4: the device authorization endpoint.
        "device_authorization_endpoint": config.endpoint(crate::http::DEVICE_AUTHORIZATION_PATH),
        // PAR: RFC 9126 §5.
        "pushed_authorization_request_endpoint": config.endpoint(crate::http::PAR_PATH),
        "require_pushed_authorization_requests": config.par.require,
        // JAR: RFC 9101 §10.1 (request objects by value and through PAR).
        "request_object_signing_alg_values_supported": crate::http::jar::ALGORITHMS.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
        // dcr: RFC 7591 §3 registration endpoint (RFC 8414 §2 `registration_endpoint`).
        "registration_endpoint": config.endpoint(crate::http::REGISTER_PATH),
        // Signing algorithms of RFC 9068 access tokens.
        "access_token_signing_alg_values_supported": algorithms,
    });
    // RFC 8705 §5: where certificates are requested on another host than the issuer's,
    // the endpoints a client authenticates at (or presents a token to) under that host.
    if let (Some(map), Some(token)) = (
        metadata.as_object_mut(),
        config.client_auth.mtls_endpoint(crate::http::TOKEN_PATH),
    ) {
        let alias = |path| config.client_auth.mtls_endpoint(path);
        map.insert(
            "mtls_endpoint_aliases".to_owned(),
            json!({
                "token_endpoint": token,
                "introspection_endpoint": alias(crate::http::INTROSPECT_PATH),
                "revocation_endpoint": alias(crate::http::REVOKE_PATH),
                "pushed_authorization_request_endpoint": alias(crate::http::PAR_PATH),
                "device_authorization_endpoint": alias(crate::http::DEVICE_AUTHORIZATION_PATH),
                "userinfo_endpoint": alias(crate::http::USERINFO_PATH),
            }),
        );
    }
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
