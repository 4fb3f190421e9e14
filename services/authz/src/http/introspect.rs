//! Token introspection, RFC 7662, for clients allowed to introspect.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use domain::ErrorCode;

use super::oauth::{OAuthFailure, authenticated_form};
use crate::AppState;

/// `POST /introspect` (RFC 7662 §2.1): `token` (and an optional `token_type_hint`, which
/// is not needed to find the token) → §2.2 response, for access tokens and refresh tokens
/// alike (see [`crate::grants::Grants::introspect_many`]). The caller must authenticate as a
/// client with the introspection permission: 401 otherwise, 403 when authenticated but not
/// allowed. Counted in `introspections_total{transport="http", result}`, `result` being
/// `active`, `inactive` or `refused` (401 and 403).
pub(crate) async fn post(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, OAuthFailure> {
    let result = introspect(&req, &body, &state).await;
    if let Err(failure) = &result
        && matches!(
            failure.status,
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
        )
    {
        metrics::counter!("introspections_total", "transport" => "http", "result" => "refused")
            .increment(1);
    }
    result
}

async fn introspect(
    req: &HttpRequest,
    body: &web::Bytes,
    state: &web::Data<AppState>,
) -> Result<HttpResponse, OAuthFailure> {
    let (form, caller) = authenticated_form(req, body, state).await?;
    // Introspection is for confidential clients (RFC 7662 §2.1): a public client's id alone
    // proves nothing.
    if caller.auth_method == domain::TokenEndpointAuthMethod::None {
        return Err(OAuthFailure::invalid_client(false));
    }
    if !caller.can_introspect {
        let mut f = OAuthFailure::bad(
            ErrorCode::UnauthorizedClient,
            "this client may not introspect tokens",
        );
        f.status = StatusCode::FORBIDDEN;
        return Err(f);
    }
    let token = form.required("token")?;
    form.one("token_type_hint")?;
    let result = state.grants.introspect(token).await?;
    metrics::counter!(
        "introspections_total",
        "transport" => "http",
        "result" => if result.active { "active" } else { "inactive" }
    )
    .increment(1);
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(result))
}
