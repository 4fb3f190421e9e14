//! The device authorization endpoint (RFC 8628 §3.1-§3.2).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use domain::{ErrorCode, GrantType};

use super::oauth::{OAuthFailure, authenticated_form};
use super::token::requested_scope;
use crate::AppState;

/// `POST /device_authorization`. The client authenticates as at the token endpoint
/// (RFC 8628 §3.1: confidential clients with their secret, public clients with
/// `client_id`), must be allowed the grant type
/// `urn:ietf:params:oauth:grant-type:device_code` (`unauthorized_client` otherwise) and may
/// ask for `scope`, each of which it must be allowed (`invalid_scope`; without `scope`,
/// every scope it may have). The answer (§3.2) carries `device_code`, `user_code`
/// (`XXXX-XXXX`), `verification_uri` (idp's `/device`), `verification_uri_complete` (the
/// same with the user code, for QR codes), `expires_in` and `interval`; never cached.
pub(crate) async fn post(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, OAuthFailure> {
    let (form, client) = authenticated_form(&req, &body, &state).await?;
    if !client.grant_types.contains(&GrantType::DeviceCode) {
        return Err(OAuthFailure::bad(
            ErrorCode::UnauthorizedClient,
            format!("this client may not use {}", GrantType::DeviceCode),
        ));
    }
    let scope = requested_scope(&client, &form)?;
    let started = state.devices.start(&client, &scope).await?;
    let user_code = started.user_code.display();
    let verification_uri = state.devices.verification_uri();
    let complete = domain::with_query(verification_uri, &[("user_code", user_code.as_str())]);
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(serde_json::json!({
            "device_code": started.device_code,
            "user_code": user_code,
            "verification_uri": verification_uri,
            "verification_uri_complete": complete,
            "expires_in": started.expires_in,
            "interval": started.interval,
        })))
}
