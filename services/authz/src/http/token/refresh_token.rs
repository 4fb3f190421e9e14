//! The `refresh_token` grant (RFC 6749 §6, OpenID Connect Core §12).

use domain::{ErrorCode, ScopeSet};

use super::{audiences, user_response};
use crate::AppState;
use crate::clients::Client;
use crate::http::oauth::{Form, OAuthFailure};

/// RFC 6749 §6: `refresh_token` and an optional narrower `scope` → new access token, new
/// (rotated) refresh token, and a new ID token when the scopes include `openid`.
pub(super) async fn grant(
    state: &AppState,
    client: &Client,
    form: &Form,
) -> Result<serde_json::Value, OAuthFailure> {
    let token = form.required("refresh_token")?;
    let scope = form
        .one("scope")?
        .map(ScopeSet::parse)
        .transpose()
        .map_err(|e| OAuthFailure::bad(ErrorCode::InvalidScope, e.to_string()))?;
    let aud = audiences(state, client, form)?;
    let response = state.grants.refresh(client, token, scope, &aud).await?;
    Ok(user_response(response))
}
