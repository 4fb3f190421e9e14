//! Token revocation, RFC 7009.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};

use super::cors;
use super::oauth::{OAuthFailure, authenticated_form};
use crate::AppState;
use crate::tokens::{Revocation, TokenError};

/// `POST /revoke` (RFC 7009 §2.1): the authenticated client revokes one of its own tokens.
/// A refresh token revokes its whole grant, with the access tokens issued from it (§2.1).
/// Unknown, expired and malformed tokens are answered 200 (§2.2) and left alone.
///
/// A live token issued to another client is refused, as §2.1 requires ("the request is
/// refused and the client is informed of the error"), with the RFC 6749 §5.2 error
/// `unauthorized_client` (400): "the authenticated client is not authorized" to act on
/// this token. Keycloak answers this case with `unauthorized_client` too; the token stays
/// active.
/// A browser request of an origin the client allows gets the CORS headers ([`cors`]; RFC
/// 7009 §2.1: the endpoint SHOULD support CORS for user-agent-based applications).
pub(crate) async fn post(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    let mut origin = None;
    let mut res = revoke(&req, &body, &state, &mut origin)
        .await
        .unwrap_or_else(|failure| failure.error_response());
    if let Some(origin) = origin {
        cors::allow(&mut res, &origin);
    }
    res
}

async fn revoke(
    req: &HttpRequest,
    body: &web::Bytes,
    state: &web::Data<AppState>,
    origin: &mut Option<String>,
) -> Result<HttpResponse, OAuthFailure> {
    let (form, client) = authenticated_form(req, body, state).await?;
    *origin = cors::check(req, &client).map_err(OAuthFailure::invalid_request)?;
    let token = form.required("token")?;
    form.one("token_type_hint")?;
    let outcome = match state.grants.revoke_refresh_token(&client, token).await? {
        Revocation::Unknown => state.tokens.revoke(&client, token).await?,
        other => other,
    };
    if outcome == Revocation::OtherClient {
        return Err(TokenError::UnauthorizedClient(
            "the token was not issued to this client".into(),
        )
        .into());
    }
    metrics::counter!("revocations_total").increment(1);
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}
