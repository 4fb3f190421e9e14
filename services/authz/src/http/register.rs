//! dcr: the client registration endpoint (RFC 7591 §3): `POST /register` with a JSON body
//! of client metadata and an initial access token as Bearer token (RFC 7591 §3, RFC 6750
//! §2.1), or none when open registration is on.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};

use super::oauth::{OAuthFailure, bearer};
use crate::AppState;

/// `POST /register`: 201 with the registered metadata, the credentials (shown once) and
/// `registration_client_uri` (RFC 7591 §3.2.1, RFC 7592 §3); 400 `invalid_redirect_uri` /
/// `invalid_client_metadata` (RFC 7591 §3.2.2); 401 `invalid_token` without a usable
/// initial access token. Never cached.
pub(crate) async fn post(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    match register(&req, &body, &state).await {
        Ok(res) => res,
        Err(failure) => failure.error_response(),
    }
}

async fn register(
    req: &HttpRequest,
    body: &[u8],
    state: &AppState,
) -> Result<HttpResponse, OAuthFailure> {
    let token = bearer(req)?;
    require_json(req)?;
    let registration = state.registrations.register(token, body).await?;
    let uri = client_uri(state, registration.client.id.as_str());
    Ok(HttpResponse::build(StatusCode::CREATED)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(registration.to_json(&uri)))
}

/// RFC 7591 §3.1: the metadata is sent as `application/json`.
pub(super) fn require_json(req: &HttpRequest) -> Result<(), OAuthFailure> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let media = content_type.split(';').next().unwrap_or_default().trim();
    if media.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(OAuthFailure::invalid_request(
            "the client metadata must be sent as application/json",
        ))
    }
}

/// The client configuration endpoint of `client_id` (RFC 7592 §3, `registration_client_uri`).
pub(super) fn client_uri(state: &AppState, client_id: &str) -> String {
    let encoded: String = url::form_urlencoded::byte_serialize(client_id.as_bytes()).collect();
    state.endpoint(&format!("{}/{encoded}", super::REGISTER_PATH))
}
