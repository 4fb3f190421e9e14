//! The `client_credentials` grant (RFC 6749 §4.4).

use domain::{ErrorCode, ScopeSet, TokenEndpointAuthMethod};

use super::{audiences, requested_scope};
use crate::AppState;
use crate::clients::Client;
use crate::http::oauth::{Form, OAuthFailure};

/// The scope that marks an OpenID Connect authentication (Core §3.1.2.1).
const OPENID: &str = "openid";

/// RFC 6749 §4.4: the client acts on its own behalf (`sub` = `client_id`); only
/// confidential clients may. Such a token never carries `openid`: that scope is granted
/// only through an OpenID Connect authentication request (Core §3.1.2.1), and it is what
/// `/userinfo` (Core §5.3) requires, so a client's own token cannot read the claims of a
/// user whose subject happens to equal its `client_id`. Asked for, it is `invalid_scope`;
/// left out of the default scope when none is asked for.
pub(super) async fn grant(
    state: &AppState,
    client: &Client,
    form: &Form,
) -> Result<Answer, OAuthFailure> {
    if client.auth_method == TokenEndpointAuthMethod::None {
        return Err(OAuthFailure::bad(
            ErrorCode::UnauthorizedClient,
            "public clients cannot use client_credentials",
        ));
    }
    let asked = form.one("scope")?.is_some();
    let mut scope = requested_scope(client, form)?;
    if scope.contains(OPENID) {
        if asked {
            return Err(OAuthFailure::bad(
                ErrorCode::InvalidScope,
                "openid is granted only through an OpenID Connect authentication request",
            ));
        }
        scope = scope.difference(&ScopeSet::parse(OPENID).unwrap_or_default());
    }
    let aud = audiences(state, client, form)?;
    let issued = state
        .tokens
        .issue(client, client.id.as_str(), scope, aud)
        .await?;
    Ok(Answer {
        scope: (!issued.scope.is_empty()).then(|| issued.scope.to_string()),
        access_token: issued.access_token,
        token_type: "Bearer",
        expires_in: issued.expires_in,
    })
}

/// The token response (RFC 6749 §5.1): no refresh token (§4.4.3), `scope` when any was
/// granted.
#[derive(Debug, serde::Serialize)]
pub(super) struct Answer {
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
}
