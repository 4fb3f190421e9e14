//! The `client_credentials` grant (RFC 6749 §4.4).

use domain::{ErrorCode, TokenEndpointAuthMethod};

use super::{audiences, requested_scope};
use crate::AppState;
use crate::clients::Client;
use crate::http::oauth::{Form, OAuthFailure};

/// RFC 6749 §4.4: the client acts on its own behalf (`sub` = `client_id`); only
/// confidential clients may.
pub(super) async fn grant(
    state: &AppState,
    client: &Client,
    form: &Form,
) -> Result<serde_json::Value, OAuthFailure> {
    if client.auth_method == TokenEndpointAuthMethod::None {
        return Err(OAuthFailure::bad(
            ErrorCode::UnauthorizedClient,
            "public clients cannot use client_credentials",
        ));
    }
    let scope = requested_scope(client, form)?;
    let aud = audiences(state, client, form)?;
    let issued = state
        .tokens
        .issue(client, client.id.as_str(), scope, aud)
        .await?;
    let mut body = serde_json::json!({
        "access_token": issued.access_token,
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
    });
    if !issued.scope.is_empty() {
        body["scope"] = issued.scope.to_string().into();
    }
    Ok(body)
}
