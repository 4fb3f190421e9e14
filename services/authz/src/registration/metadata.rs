//! Client metadata of a registration request (RFC 7591 §2) parsed into a [`Client`]: every
//! supported field is checked, and a problem is `invalid_redirect_uri` or
//! `invalid_client_metadata` (RFC 7591 §3.2.2). Fields this server does not support are
//! ignored and not echoed (RFC 7591 §2: "the authorization server MUST ignore any client
//! metadata sent by the client that it does not understand").

use domain::{GrantType, ScopeSet, TokenEndpointAuthMethod};
use serde_json::{Map, Value};

use crate::clients::{Client, TlsClientAuthSubject, logout_uri_problem};

/// Most redirect URIs (and post-logout redirect URIs) one client may register.
const MAX_URIS: usize = 20;
/// Longest accepted URI or name.
const MAX_LEN: usize = 2048;

/// Why metadata is refused (RFC 7591 §3.2.2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// `invalid_redirect_uri`.
    #[error("{0}")]
    RedirectUri(String),
    /// `invalid_client_metadata`.
    #[error("{0}")]
    Metadata(String),
}

/// What a registration may ask for.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The most scope the client may get (the initial access token's, or
    /// `registration.open_scope`), and its scope when it asks for none.
    pub scope: ScopeSet,
    /// Open registration (no initial access token): native public clients with loopback
    /// redirect URIs only.
    pub open: bool,
}

fn meta(message: impl Into<String>) -> MetadataError {
    MetadataError::Metadata(message.into())
}

/// The request body as a JSON object; anything else is `invalid_client_metadata`.
pub fn parse_object(body: &[u8]) -> Result<Map<String, Value>, MetadataError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(meta("the client metadata must be a JSON object")),
        Err(e) => Err(meta(format!("the client metadata is not valid JSON: {e}"))),
    }
}

fn string<'a>(obj: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, MetadataError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.len() <= MAX_LEN => Ok(Some(s)),
        Some(Value::String(_)) => Err(meta(format!("{key} is longer than {MAX_LEN} bytes"))),
        Some(_) => Err(meta(format!("{key} must be a string"))),
    }
}

fn strings(obj: &Map<String, Value>, key: &str) -> Result<Option<Vec<String>>, MetadataError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) if s.len() <= MAX_LEN => Ok(s.clone()),
                _ => Err(meta(format!(
                    "{key} must be an array of strings of at most {MAX_LEN} bytes"
                ))),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(meta(format!("{key} must be an array of strings"))),
    }
}

fn boolean(obj: &Map<String, Value>, key: &str) -> Result<Option<bool>, MetadataError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(meta(format!("{key} must be true or false"))),
    }
}

/// Whether `url` is an `http` URL on a loopback host (RFC 8252 §7.3, §8.3).
fn is_loopback_http(url: &url::Url) -> bool {
    url.scheme() == "http"
        && match url.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        }
}

/// Why `uri` cannot be a redirect URI: absolute, no fragment (RFC 6749 §3.1.2), `https`
/// or `http` on a loopback host (RFC 8252 §7.3, OAuth 2.1 §2.3.1); with `loopback_only`
/// (open registration) only the latter.
fn redirect_uri_problem(uri: &str, loopback_only: bool) -> Option<&'static str> {
    let Ok(url) = url::Url::parse(uri) else {
        return Some("is not an absolute URI");
    };
    if url.fragment().is_some() || uri.contains('#') {
        return Some("must not contain a fragment");
    }
    if url.host().is_none() {
        return Some("must have a host");
    }
    if loopback_only {
        return (!is_loopback_http(&url)).then_some(
            "is not a loopback URI (http://127.0.0.1, http://[::1] or http://localhost); \
             open registration accepts only those: present an initial access token",
        );
    }
    match url.scheme() {
        "https" => None,
        "http" if is_loopback_http(&url) => None,
        _ => Some("must use https (http only on a loopback host)"),
    }
}

fn uris(
    obj: &Map<String, Value>,
    key: &str,
    loopback_only: bool,
    error: fn(String) -> MetadataError,
) -> Result<Option<Vec<String>>, MetadataError> {
    let Some(list) = strings(obj, key)? else {
        return Ok(None);
    };
    if list.len() > MAX_URIS {
        return Err(error(format!("{key} lists more than {MAX_URIS} URIs")));
    }
    for uri in &list {
        if let Some(problem) = redirect_uri_problem(uri, loopback_only) {
            return Err(error(format!("{key}: {uri:?} {problem}")));
        }
    }
    Ok(Some(list))
}

/// Applies the metadata of a registration (RFC 7591 §3.1) or a full update (RFC 7592
/// §2.2) to `client`, which holds the defaults ([`Client::new`] for a registration, so an
/// update resets what it omits, RFC 7592 §2.2). Checks, with the RFC 7591 §3.2.2 codes:
/// - `redirect_uris`: absolute, no fragment, https or loopback http; required with the
///   `authorization_code` grant (`invalid_redirect_uri`);
/// - `token_endpoint_auth_method` among the supported ones (default
///   `client_secret_basic`, RFC 7591 §2);
/// - `grant_types` (default `authorization_code`) and `response_types` (default `code`)
///   consistent as RFC 7591 §2.1 requires; `refresh_token` only with a grant that issues
///   one; no `client_credentials` for a public client; token exchange only through an
///   operator (it needs a policy);
/// - `scope` within the [`Policy`];
/// - `post_logout_redirect_uris`, `backchannel_logout_uri`, `frontchannel_logout_uri`
///   (OpenID Connect Back-/Front-Channel Logout 1.0 §2), and the `*_session_required`
///   flags;
/// - `require_pushed_authorization_requests` (RFC 9126 §6);
/// - with an open [`Policy`]: a public client (`none`), loopback redirect URIs only, and
///   only the `authorization_code` and `refresh_token` grants.
pub fn apply(
    obj: &Map<String, Value>,
    client: &mut Client,
    policy: &Policy,
) -> Result<(), MetadataError> {
    if let Some(name) = string(obj, "client_name")? {
        if name.trim().is_empty() || name.len() > 200 {
            return Err(meta("client_name must have 1 to 200 characters"));
        }
        client.name = name.to_owned();
    }
    if let Some(m) = string(obj, "token_endpoint_auth_method")? {
        client.auth_method = m.parse::<TokenEndpointAuthMethod>().map_err(|_| {
            meta(format!(
                "token_endpoint_auth_method {m:?} is not supported (supported: {})",
                TokenEndpointAuthMethod::ALL
                    .iter()
                    .map(|m| m.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
    } else {
        client.auth_method = TokenEndpointAuthMethod::ClientSecretBasic;
    }
    keys(obj, client)?;
    let grant_names = strings(obj, "grant_types")?
        .unwrap_or_else(|| vec![GrantType::AuthorizationCode.as_str().to_owned()]);
    let mut grants = Vec::with_capacity(grant_names.len());
    for g in &grant_names {
        let grant: GrantType = g
            .parse()
            .map_err(|_| meta(format!("grant type {g:?} is not supported")))?;
        if grant == GrantType::TokenExchange {
            return Err(meta(
                "the token exchange grant needs a policy only an operator can set; it cannot be registered",
            ));
        }
        if !grants.contains(&grant) {
            grants.push(grant);
        }
    }
    if grants.is_empty() {
        return Err(meta("grant_types must not be empty"));
    }
    let response_types = strings(obj, "response_types")?.unwrap_or_else(|| vec!["code".to_owned()]);
    if let Some(other) = response_types.iter().find(|r| r.as_str() != "code") {
        return Err(meta(format!(
            "response type {other:?} is not supported; use code"
        )));
    }
    let code_grant = grants.contains(&GrantType::AuthorizationCode);
    if code_grant == response_types.is_empty() {
        return Err(meta(
            "grant_types and response_types are inconsistent: the authorization_code grant \
             goes with the code response type and only with it (RFC 7591 §2.1)",
        ));
    }
    if grants.contains(&GrantType::RefreshToken)
        && !grants.contains(&GrantType::AuthorizationCode)
        && !grants.contains(&GrantType::DeviceCode)
    {
        return Err(meta(
            "the refresh_token grant needs a grant that issues refresh tokens \
             (authorization_code or device_code)",
        ));
    }
    if client.auth_method == TokenEndpointAuthMethod::None
        && grants.contains(&GrantType::ClientCredentials)
    {
        return Err(meta(
            "a public client (token_endpoint_auth_method none) cannot use client_credentials",
        ));
    }
    client.grant_types = grants;
    client.redirect_uris = uris(
        obj,
        "redirect_uris",
        policy.open,
        MetadataError::RedirectUri,
    )?
    .unwrap_or_default();
    if code_grant && client.redirect_uris.is_empty() {
        return Err(MetadataError::RedirectUri(
            "redirect_uris is required with the authorization_code grant".into(),
        ));
    }
    client.post_logout_redirect_uris = uris(
        obj,
        "post_logout_redirect_uris",
        policy.open,
        MetadataError::Metadata,
    )?
    .unwrap_or_default();
    client.scopes = match string(obj, "scope")? {
        None => policy.scope.clone(),
        Some(raw) => {
            let asked = ScopeSet::parse(raw).map_err(|e| meta(format!("scope: {e}")))?;
            if !asked.is_subset(&policy.scope) {
                return Err(meta(format!(
                    "scope not allowed for this registration: {}",
                    asked.difference(&policy.scope)
                )));
            }
            asked
        }
    };
    // logout: OpenID Connect Back-Channel Logout 1.0 §2.2, Front-Channel Logout 1.0 §2.
    client.backchannel_logout_uri = string(obj, "backchannel_logout_uri")?.map(str::to_owned);
    client.frontchannel_logout_uri = string(obj, "frontchannel_logout_uri")?.map(str::to_owned);
    for (name, uri) in [
        ("backchannel_logout_uri", &client.backchannel_logout_uri),
        ("frontchannel_logout_uri", &client.frontchannel_logout_uri),
    ] {
        if let Some(uri) = uri
            && let Some(problem) = logout_uri_problem(uri)
        {
            return Err(meta(format!("{name} {uri:?} {problem}")));
        }
    }
    client.backchannel_logout_session_required =
        boolean(obj, "backchannel_logout_session_required")?.unwrap_or(false);
    client.frontchannel_logout_session_required =
        boolean(obj, "frontchannel_logout_session_required")?.unwrap_or(false);
    // PAR (RFC 9126 §6)
    client.require_pushed_authorization_requests =
        boolean(obj, "require_pushed_authorization_requests")?.unwrap_or(false);
    if policy.open {
        if client.auth_method != TokenEndpointAuthMethod::None {
            return Err(meta(
                "open registration registers public native clients only \
                 (token_endpoint_auth_method none); present an initial access token",
            ));
        }
        if client
            .grant_types
            .iter()
            .any(|g| !matches!(g, GrantType::AuthorizationCode | GrantType::RefreshToken))
        {
            return Err(meta(
                "open registration allows the authorization_code and refresh_token grants only",
            ));
        }
    }
    Ok(())
}

/// The client's keys and key-bound authentication settings (RFC 7591 §2 `jwks` xor
/// `jwks_uri`, `token_endpoint_auth_signing_alg`; RFC 8705 §2.1.2 the one
/// `tls_client_auth_*` subject value), checked as every registry write checks them
/// ([`Client::auth_problem`]): `private_key_jwt` needs keys, `jwks_uri` must be https.
fn keys(obj: &Map<String, Value>, client: &mut Client) -> Result<(), MetadataError> {
    client.jwks = match obj.get("jwks") {
        None | Some(Value::Null) => None,
        Some(v @ Value::Object(_)) => Some(v.clone()),
        Some(_) => return Err(meta("jwks must be a JWKS document ({\"keys\":[...]})")),
    };
    client.jwks_uri = string(obj, "jwks_uri")?.map(str::to_owned);
    client.token_endpoint_auth_signing_alg =
        string(obj, "token_endpoint_auth_signing_alg")?.map(str::to_owned);
    let mut subjects = Vec::new();
    for (name, make) in [
        (
            "tls_client_auth_subject_dn",
            TlsClientAuthSubject::SubjectDn as fn(String) -> TlsClientAuthSubject,
        ),
        ("tls_client_auth_san_dns", TlsClientAuthSubject::SanDns),
        ("tls_client_auth_san_uri", TlsClientAuthSubject::SanUri),
        ("tls_client_auth_san_ip", TlsClientAuthSubject::SanIp),
        ("tls_client_auth_san_email", TlsClientAuthSubject::SanEmail),
    ] {
        if let Some(v) = string(obj, name)? {
            subjects.push(make(v.to_owned()));
        }
    }
    if subjects.len() > 1 {
        return Err(meta(
            "give exactly one tls_client_auth_* subject value (RFC 8705 §2.1.2)",
        ));
    }
    client.tls_client_auth = subjects.pop();
    if let Some(problem) = client.auth_problem() {
        return Err(meta(problem));
    }
    Ok(())
}

/// The registered metadata of a client as RFC 7591 §3.2.1 returns it (without
/// credentials, which the caller adds).
pub fn view(client: &Client) -> Value {
    let code = client.grant_types.contains(&GrantType::AuthorizationCode);
    let mut v = serde_json::json!({
        "client_id": client.id.as_str(),
        "client_id_issued_at": client.created_at,
        "client_name": client.name,
        "token_endpoint_auth_method": client.auth_method.as_str(),
        "grant_types": client.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        "response_types": if code { vec!["code"] } else { Vec::new() },
        "redirect_uris": client.redirect_uris,
        "post_logout_redirect_uris": client.post_logout_redirect_uris,
        "scope": client.scopes.to_string(),
        "backchannel_logout_session_required": client.backchannel_logout_session_required,
        "frontchannel_logout_session_required": client.frontchannel_logout_session_required,
        "require_pushed_authorization_requests": client.require_pushed_authorization_requests,
    });
    if let Some(u) = &client.backchannel_logout_uri {
        v["backchannel_logout_uri"] = u.clone().into();
    }
    if let Some(u) = &client.frontchannel_logout_uri {
        v["frontchannel_logout_uri"] = u.clone().into();
    }
    if let Some(jwks) = &client.jwks {
        v["jwks"] = jwks.clone();
    }
    if let Some(u) = &client.jwks_uri {
        v["jwks_uri"] = u.clone().into();
    }
    if let Some(a) = &client.token_endpoint_auth_signing_alg {
        v["token_endpoint_auth_signing_alg"] = a.clone().into();
    }
    if let Some(t) = &client.tls_client_auth {
        v[t.metadata_name()] = t.value().into();
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::ClientId;

    fn policy() -> Policy {
        Policy {
            scope: ScopeSet::parse("openid profile").unwrap(),
            open: false,
        }
    }

    fn run(json: &str, policy: &Policy) -> Result<Client, MetadataError> {
        let obj = parse_object(json.as_bytes())?;
        let mut c = Client::new(ClientId::parse("x").unwrap(), "x".into());
        apply(&obj, &mut c, policy)?;
        Ok(c)
    }

    #[test]
    fn defaults_and_consistency() {
        let c = run(r#"{"redirect_uris":["https://app.example/cb"]}"#, &policy()).unwrap();
        assert_eq!(c.grant_types, vec![GrantType::AuthorizationCode]);
        assert_eq!(c.auth_method, TokenEndpointAuthMethod::ClientSecretBasic);
        assert_eq!(c.scopes.to_string(), "openid profile");
        let code = |j: &str| run(j, &policy()).unwrap_err();
        assert!(matches!(code("[]"), MetadataError::Metadata(_)));
        assert!(matches!(code("{"), MetadataError::Metadata(_)));
        assert!(matches!(
            code(r#"{"redirect_uris":["https://a.example/cb#x"]}"#),
            MetadataError::RedirectUri(_)
        ));
        assert!(matches!(
            code(r#"{"redirect_uris":["http://a.example/cb"]}"#),
            MetadataError::RedirectUri(_)
        ));
        assert!(matches!(code(r#"{}"#), MetadataError::RedirectUri(_)));
        assert!(matches!(
            code(r#"{"grant_types":["client_credentials"]}"#),
            MetadataError::Metadata(_)
        ));
        let cc = run(
            r#"{"grant_types":["client_credentials"],"response_types":[]}"#,
            &policy(),
        )
        .unwrap();
        assert_eq!(cc.grant_types, vec![GrantType::ClientCredentials]);
        assert!(matches!(
            code(r#"{"redirect_uris":["https://a.example/cb"],"scope":"admin"}"#),
            MetadataError::Metadata(_)
        ));
        assert!(run(r#"{"redirect_uris":["http://127.0.0.1:9/cb"]}"#, &policy()).is_ok());
    }

    #[test]
    fn key_metadata() {
        let code = |j: &str| run(j, &policy()).unwrap_err();
        let keys = r#"{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;
        assert!(matches!(
            code(
                r#"{"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"private_key_jwt"}"#
            ),
            MetadataError::Metadata(_)
        ));
        assert!(matches!(
            code(&format!(
                r#"{{"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"private_key_jwt","jwks":{keys},"jwks_uri":"https://a.example/jwks"}}"#
            )),
            MetadataError::Metadata(_)
        ));
        let c = run(
            &format!(r#"{{"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"private_key_jwt","jwks":{keys}}}"#),
            &policy(),
        )
        .unwrap();
        assert_eq!(c.auth_method, TokenEndpointAuthMethod::PrivateKeyJwt);
        assert!(view(&c)["jwks"]["keys"].is_array());
    }

    #[test]
    fn open_registration_is_for_native_loopback_clients() {
        let open = Policy {
            open: true,
            ..policy()
        };
        let ok = run(
            r#"{"redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"none"}"#,
            &open,
        );
        assert!(ok.is_ok(), "{ok:?}");
        assert!(matches!(
            run(
                r#"{"redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"none"}"#,
                &open
            ),
            Err(MetadataError::RedirectUri(_))
        ));
        assert!(matches!(
            run(r#"{"redirect_uris":["http://127.0.0.1/cb"]}"#, &open),
            Err(MetadataError::Metadata(_))
        ));
    }
}
