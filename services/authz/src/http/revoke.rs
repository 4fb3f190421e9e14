//! Token revocation, RFC 7009.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use domain::ErrorCode;

use super::oauth::{Form, OAuthFailure, credentials};
use crate::AppState;
use crate::clients::Credentials;

/// `POST /revoke` (RFC 7009 §2.1): the authenticated client revokes one of its own tokens.
/// Unknown tokens and other clients' tokens are answered 200 too (§2.2) and left alone.
pub(crate) async fn post(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, OAuthFailure> {
    let form = Form::parse(&req, &body)?;
    let credentials = credentials(&req, &form)?.ok_or_else(|| {
        OAuthFailure::bad(ErrorCode::InvalidClient, "client authentication required")
    })?;
    let basic = matches!(credentials, Credentials::Basic { .. });
    let client = state
        .clients
        .authenticate(&credentials)
        .await
        .map_err(|e| OAuthFailure::from_client_auth(e, basic))?;
    let token = form.required("token")?;
    form.one("token_type_hint")?;
    state.tokens.revoke(&client, token).await?;
    metrics::counter!("revocations_total").increment(1);
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}
