//! The token exchange grant (RFC 8693 §2): `grant_type=urn:ietf:params:oauth:grant-type:
//! token-exchange`.
//!
//! Supported token types (§3): subject and actor tokens are access tokens this server
//! issued, typed `urn:ietf:params:oauth:token-type:access_token` (either format) or
//! `urn:ietf:params:oauth:token-type:jwt` (JWT access tokens); the issued token is an
//! access token (`requested_token_type` absent or `…:access_token`), in the client's
//! format. Refresh, ID and SAML tokens are neither accepted nor issued: `invalid_request`.

use domain::{ErrorCode, ScopeSet, TokenEndpointAuthMethod};

use crate::AppState;
use crate::clients::Client;
use crate::http::oauth::{Form, OAuthFailure};
use crate::tokens::{ACCESS_TOKEN_TYPE, ExchangeRequest, JWT_TOKEN_TYPE};

/// RFC 8693 §2.1 request → §2.2.1 response (`access_token`, `issued_token_type`,
/// `token_type: Bearer`, `expires_in`, `scope`; never a refresh token). Parameters are
/// checked here (§2.2.2: malformed or unsupported → `invalid_request`, a `resource` that is
/// not an absolute URI → `invalid_target`); tokens and policy by the token service.
pub(super) async fn grant(
    state: &AppState,
    client: &Client,
    form: &Form,
) -> Result<serde_json::Value, OAuthFailure> {
    // RFC 8693 §2.1 leaves client authentication to RFC 6749 §2.3; a public client's id
    // proves nothing, so it cannot be the actor of a delegation.
    if client.auth_method == TokenEndpointAuthMethod::None {
        return Err(OAuthFailure::bad(
            ErrorCode::UnauthorizedClient,
            "public clients cannot use token exchange",
        ));
    }
    let subject_token = form.required("subject_token")?;
    let subject_type = form.required("subject_token_type")?;
    check_type("subject_token_type", subject_type, subject_token)?;
    let actor_token = form.one("actor_token")?;
    match (actor_token, form.one("actor_token_type")?) {
        (Some(token), Some(kind)) => check_type("actor_token_type", kind, token)?,
        (Some(_), None) => {
            return Err(OAuthFailure::invalid_request(
                "actor_token_type is required with actor_token",
            ));
        }
        (None, Some(_)) => {
            return Err(OAuthFailure::invalid_request(
                "actor_token_type must not be sent without actor_token",
            ));
        }
        (None, None) => {}
    }
    if let Some(kind) = form.one("requested_token_type")?
        && kind != ACCESS_TOKEN_TYPE
    {
        return Err(OAuthFailure::invalid_request(format!(
            "requested_token_type {kind:?} is not supported: only {ACCESS_TOKEN_TYPE}"
        )));
    }
    let mut targets: Vec<String> = Vec::new();
    for r in form.all("resource") {
        // RFC 8693 §2.1: `resource` is an absolute URI without a fragment (RFC 8707 §2).
        if !url::Url::parse(r).is_ok_and(|u| u.fragment().is_none()) {
            return Err(OAuthFailure::bad(
                ErrorCode::InvalidTarget,
                "resource must be an absolute URI without a fragment",
            ));
        }
        targets.push(r.to_owned());
    }
    targets.extend(form.all("audience").into_iter().map(str::to_owned));
    targets.dedup();
    let scope = form
        .one("scope")?
        .map(ScopeSet::parse)
        .transpose()
        .map_err(|e| OAuthFailure::bad(ErrorCode::InvalidScope, e.to_string()))?;
    let issued = state
        .tokens
        .exchange(
            client,
            ExchangeRequest {
                subject_token,
                actor_token,
                targets,
                scope,
            },
        )
        .await?;
    let mut body = serde_json::json!({
        "access_token": issued.access_token,
        "issued_token_type": ACCESS_TOKEN_TYPE,
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
    });
    if !issued.scope.is_empty() {
        body["scope"] = issued.scope.to_string().into();
    }
    Ok(body)
}

/// A subject or actor token type this server accepts (RFC 8693 §3): an access token, or a
/// JWT when the token is one.
fn check_type(param: &str, kind: &str, token: &str) -> Result<(), OAuthFailure> {
    let jwt_shaped = token.bytes().filter(|b| *b == b'.').count() == 2;
    if kind == ACCESS_TOKEN_TYPE || (kind == JWT_TOKEN_TYPE && jwt_shaped) {
        return Ok(());
    }
    Err(OAuthFailure::invalid_request(format!(
        "{param} {kind:?} is not supported: only access tokens of this server \
         ({ACCESS_TOKEN_TYPE}, or {JWT_TOKEN_TYPE} for JWT access tokens)"
    )))
}
