//! The `authorization_code` grant (RFC 6749 §4.1.3, RFC 7636 §4.5, OpenID Connect Core
//! §3.1.3).

use super::{audiences, user_response};
use crate::AppState;
use crate::clients::Client;
use crate::http::oauth::{Form, OAuthFailure};

/// RFC 6749 §4.1.3: `code`, `redirect_uri` (required: every authorization request here
/// carries one) and the PKCE `code_verifier` (RFC 7636 §4.5, required for every client)
/// → access token, ID token when `openid` was granted, refresh token when the client may
/// refresh. Everything wrong with the code itself is `invalid_grant`.
pub(super) async fn grant(
    state: &AppState,
    client: &Client,
    form: &Form,
) -> Result<serde_json::Value, OAuthFailure> {
    let code = form.required("code")?;
    let redirect_uri = form.required("redirect_uri")?;
    let verifier = form.required("code_verifier")?;
    let aud = audiences(state, client, form)?;
    let response = state
        .grants
        .redeem_code(client, code, redirect_uri, verifier, &aud)
        .await?;
    Ok(user_response(response))
}
