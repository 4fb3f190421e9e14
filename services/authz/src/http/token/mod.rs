//! The token endpoint (RFC 6749 §3.2): client authentication, then one file per grant
//! (`client_credentials` §4.4, `authorization_code` §4.1.3, `refresh_token` §6, token
//! exchange RFC 8693, the device code of RFC 8628 §3.4), RFC 8707
//! resource indicators and RFC 9068 access tokens. Every response is `no-store`.

mod authorization_code;
mod client_credentials;
// device grant (RFC 8628)
mod device_code;
mod refresh_token;
mod token_exchange;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use domain::{ErrorCode, GrantType, ScopeSet};

use super::cors;
use super::oauth::{Form, OAuthFailure, authenticated_form};
use crate::AppState;
use crate::clients::Client;

/// `POST /token`. Counts `tokens_issued_total{grant_type}` and, for every error
/// response, `token_errors_total{error}` (the RFC 6749 §5.2 code). A browser request of an
/// origin the client allows gets the CORS headers on its answer, errors included
/// ([`cors`]).
pub(crate) async fn post(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    let mut origin = None;
    let result = issue(&req, &body, &state, &mut origin).await;
    let mut res = match result {
        Ok(res) => res,
        Err(failure) => {
            metrics::counter!("token_errors_total", "error" => failure.error.code.as_str())
                .increment(1);
            failure.error_response()
        }
    };
    if let Some(origin) = origin {
        cors::allow(&mut res, &origin);
    }
    res
}

async fn issue(
    req: &HttpRequest,
    body: &web::Bytes,
    state: &web::Data<AppState>,
    origin: &mut Option<String>,
) -> Result<HttpResponse, OAuthFailure> {
    let (form, client) = authenticated_form(req, body, state).await?;
    *origin = cors::check(req, &client).map_err(OAuthFailure::invalid_request)?;
    let grant = form.required("grant_type")?;
    let grant: GrantType = grant.parse().map_err(|_| {
        OAuthFailure::bad(
            ErrorCode::UnsupportedGrantType,
            format!("grant type {grant:?} is not supported"),
        )
    })?;
    if !client.grant_types.contains(&grant) {
        return Err(OAuthFailure::bad(
            ErrorCode::UnauthorizedClient,
            format!("this client may not use {grant}"),
        ));
    }
    let response = match grant {
        GrantType::ClientCredentials => {
            TokenBody::Credentials(client_credentials::grant(state, &client, &form).await?)
        }
        GrantType::AuthorizationCode => {
            TokenBody::Json(authorization_code::grant(state, &client, &form).await?)
        }
        GrantType::RefreshToken => {
            TokenBody::Json(refresh_token::grant(state, &client, &form).await?)
        }
        GrantType::TokenExchange => {
            TokenBody::Json(token_exchange::grant(state, &client, &form).await?)
        }
        GrantType::DeviceCode => TokenBody::Json(device_code::grant(state, &client, &form).await?),
    };
    metrics::counter!("tokens_issued_total", "grant_type" => grant.as_str()).increment(1);
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(response))
}

/// A successful token response's body (RFC 6749 §5.1).
#[derive(serde::Serialize)]
#[serde(untagged)]
enum TokenBody {
    /// `client_credentials`, the machine-to-machine hot path: serialized from its fields
    /// without building a JSON tree first.
    Credentials(client_credentials::Answer),
    /// The other grants' answers.
    Json(serde_json::Value),
}

/// The JSON of a user grant's token response (RFC 6749 §5.1, OpenID Connect Core
/// §3.1.3.3).
fn user_response(r: crate::grants::TokenResponse) -> serde_json::Value {
    let mut body = serde_json::json!({
        "access_token": r.access_token,
        "token_type": "Bearer",
        "expires_in": r.expires_in,
        "scope": r.scope.to_string(),
    });
    if let Some(t) = r.refresh_token {
        body["refresh_token"] = t.into();
    }
    if let Some(t) = r.id_token {
        body["id_token"] = t.into();
    }
    body
}

/// RFC 6749 §3.3: the requested scopes, which must all be allowed; without `scope`, all
/// the client may have.
pub(super) fn requested_scope(client: &Client, form: &Form) -> Result<ScopeSet, OAuthFailure> {
    let Some(raw) = form.one("scope")? else {
        return Ok(client.scopes.clone());
    };
    let asked = ScopeSet::parse(raw)
        .map_err(|e| OAuthFailure::bad(ErrorCode::InvalidScope, e.to_string()))?;
    if !asked.is_subset(&client.scopes) {
        return Err(OAuthFailure::bad(
            ErrorCode::InvalidScope,
            format!(
                "not allowed for this client: {}",
                asked.difference(&client.scopes)
            ),
        ));
    }
    Ok(asked)
}

/// RFC 8707 §2: each `resource` must be an absolute URI without fragment that the client
/// may target; none given means the client's default audience (or the issuer).
pub(super) fn audiences(
    state: &AppState,
    client: &Client,
    form: &Form,
) -> Result<Vec<String>, OAuthFailure> {
    let resources = form.all("resource");
    if resources.is_empty() {
        return Ok(vec![
            client
                .audiences
                .first()
                .cloned()
                .unwrap_or_else(|| state.issuer.clone()),
        ]);
    }
    let mut out = Vec::with_capacity(resources.len());
    for r in resources {
        let valid = url::Url::parse(r).is_ok_and(|u| u.fragment().is_none());
        if !valid {
            return Err(OAuthFailure::bad(
                ErrorCode::InvalidTarget,
                "resource must be an absolute URI without a fragment",
            ));
        }
        if !client.audiences.iter().any(|a| a == r) {
            return Err(OAuthFailure::bad(
                ErrorCode::InvalidTarget,
                format!("resource {r} is not allowed for this client"),
            ));
        }
        if !out.iter().any(|o| o == r) {
            out.push(r.to_owned());
        }
    }
    Ok(out)
}
