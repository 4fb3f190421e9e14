//! JAR: JWT-Secured Authorization Requests (RFC 9101). A `request` parameter is a request
//! object: a JWS signed by the client with a key of its `jwks`/`jwks_uri`
//! ([`crate::clients::ClientKeys`], asymmetric algorithms only, never `none`), whose
//! claims are the authorization request's parameters.

use serde_json::Value;

use crate::AppState;
use crate::clients::Client;

/// The signing algorithms accepted for request objects
/// (`request_object_signing_alg_values_supported`).
pub(crate) const ALGORITHMS: &[issuer::Algorithm] = &[
    issuer::Algorithm::RS256,
    issuer::Algorithm::PS256,
    issuer::Algorithm::ES256,
    issuer::Algorithm::EdDSA,
];

/// Claims of the JWT itself, not authorization request parameters.
const JWT_CLAIMS: &[&str] = &["iss", "aud", "exp", "nbf", "iat", "jti"];

/// How far clocks may disagree for `exp` and `nbf`.
const SKEW: i64 = 60;

/// Verifies `request` as `client`'s request object and returns its parameters (RFC 9101
/// §6.3: the authorization server uses only these, not the ones outside it):
/// - signed by the client (RFC 9101 §6.1) with an allowed algorithm;
/// - `iss` is the client's id and `aud` names this issuer (RFC 9101 §4, §10.2);
/// - `client_id`, when present, is the client's (RFC 9101 §5: it must match the
///   outer one);
/// - unexpired (`exp`, `nbf` with a minute of skew);
/// - no nested `request` or `request_uri` (RFC 9101 §4).
///
/// Every failure is a description for `invalid_request_object` (RFC 9101 §6.2).
pub(crate) async fn verify(
    state: &AppState,
    client: &Client,
    request: &str,
    now: i64,
) -> Result<Vec<(String, String)>, String> {
    let claims = state
        .clients
        .keys()
        .verify(client, request, ALGORITHMS)
        .await
        .map_err(|e| format!("the request object is not validly signed by the client: {e}"))?
        .claims;
    let id = client.id.as_str();
    if claims.get("iss").and_then(Value::as_str) != Some(id) {
        return Err("the request object's iss must be the client_id".into());
    }
    let issuer = state.issuer.as_str();
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == issuer,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(issuer)),
        _ => false,
    };
    if !aud_ok {
        return Err("the request object's aud must be this issuer".into());
    }
    match claims.get("client_id") {
        None => {}
        Some(Value::String(c)) if c == id => {}
        Some(_) => return Err("the request object's client_id is not the client's".into()),
    }
    if let Some(exp) = claims.get("exp")
        && exp.as_i64().is_none_or(|e| e + SKEW <= now)
    {
        return Err("the request object has expired".into());
    }
    if let Some(nbf) = claims.get("nbf")
        && nbf.as_i64().is_none_or(|n| n - SKEW > now)
    {
        return Err("the request object is not valid yet".into());
    }
    let mut params = vec![("client_id".to_owned(), id.to_owned())];
    for (name, value) in &claims {
        if JWT_CLAIMS.contains(&name.as_str()) || name == "client_id" {
            continue;
        }
        if name == "request" || name == "request_uri" {
            return Err(format!("a request object must not contain {name}"));
        }
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Null => continue,
            other => other.to_string(),
        };
        params.push((name.clone(), text));
    }
    Ok(params)
}
