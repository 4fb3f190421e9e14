//! The device-code grant (RFC 8628 §3.4-§3.5).

use super::{audiences, user_response};
use crate::AppState;
use crate::clients::Client;
use crate::http::oauth::{Form, OAuthFailure};

/// RFC 8628 §3.4: `grant_type=urn:ietf:params:oauth:grant-type:device_code` with
/// `device_code` (and the client's authentication, as for every grant) → the tokens once
/// the user approved; until then the §3.5 errors `authorization_pending`, `slow_down`,
/// `access_denied` and `expired_token`. A used device code is `invalid_grant`.
pub(super) async fn grant(
    state: &AppState,
    client: &Client,
    form: &Form,
) -> Result<serde_json::Value, OAuthFailure> {
    let device_code = form.required("device_code")?;
    let aud = audiences(state, client, form)?;
    let response = state
        .grants
        .redeem_device_code(client, device_code, &aud)
        .await?;
    Ok(user_response(response))
}
