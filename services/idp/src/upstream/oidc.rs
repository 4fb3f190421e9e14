//! The generic OpenID Connect upstream: discovery (OpenID Connect Discovery 1.0 §4), the
//! token request (RFC 6749 §4.1.3 with the PKCE verifier, RFC 7636 §4.5), ID token
//! validation (OpenID Connect Core 1.0 §3.1.3.7) against the upstream's JWKS, the UserInfo
//! request (§5.3) and the RFC 9207 `iss` check.
//!
//! Discovery and the JWKS are fetched once and kept for [`CACHE_FOR`]; an ID token signed
//! with a `kid` the cached JWKS lacks refetches it (at most once per [`REFETCH_AFTER`]), so
//! upstream key rotation needs no restart.

use std::time::{Duration, Instant};

use issuer::Algorithm;
use issuer::jws::{Expect, Verifiers, VerifyError};
use serde::Deserialize;
use serde_json::{Map, Value};
use tokio::sync::Mutex;
use url::Url;

use super::{LEEWAY, Provider, UpstreamProfile, UpstreamTokens, failed, read_limited, transport};
use crate::IdpError;

/// How long discovery and the JWKS are kept.
const CACHE_FOR: Duration = Duration::from_secs(3600);
/// Least time between two JWKS fetches caused by an unknown `kid`.
const REFETCH_AFTER: Duration = Duration::from_secs(10);
/// Signature algorithms accepted on upstream ID tokens (never `none` or HMAC).
const ALGORITHMS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::PS256,
    Algorithm::ES256,
    Algorithm::EdDSA,
];

/// The discovery members used (OpenID Connect Discovery 1.0 §3; RFC 9207 §3).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Discovery {
    pub(crate) issuer: String,
    pub(crate) authorization_endpoint: String,
    pub(crate) token_endpoint: String,
    pub(crate) jwks_uri: String,
    #[serde(default)]
    pub(crate) userinfo_endpoint: Option<String>,
    #[serde(default)]
    pub(crate) token_endpoint_auth_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) authorization_response_iss_parameter_supported: bool,
}

struct Keys {
    verifiers: Verifiers,
    fetched: Instant,
}

/// The cached documents of one OpenID provider.
pub(crate) struct Oidc {
    issuer: Url,
    /// `backchannel_url`: where the issuer's endpoints are reached from here.
    backchannel: Option<Url>,
    discovery: Mutex<Option<(Discovery, Instant)>>,
    keys: Mutex<Option<Keys>>,
}

impl Oidc {
    pub(crate) fn new(issuer: Url, backchannel: Option<Url>) -> Self {
        Self {
            issuer,
            backchannel,
            discovery: Mutex::new(None),
            keys: Mutex::new(None),
        }
    }

    /// The issuer identifier as configured, without a trailing `/` added by URL parsing
    /// when the configured value had none at the root.
    fn issuer(&self) -> String {
        let s = self.issuer.as_str();
        if self.issuer.path() == "/" {
            s.trim_end_matches('/').to_owned()
        } else {
            s.to_owned()
        }
    }

    /// `url` (an endpoint the discovery document names) as idp calls it: below the
    /// back-channel URL when one is configured and `url` is below the issuer.
    fn reach(&self, url: &str) -> String {
        ::config::via_backchannel(
            &self.issuer(),
            self.backchannel.as_ref().map(Url::as_str),
            url,
        )
    }
}

/// The token endpoint's answer (RFC 6749 §5.1, OpenID Connect Core 1.0 §3.1.3.3).
#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    id_token: Option<String>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    expires_in: Option<i64>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

fn same_issuer(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// Adds the keys of `jwks`: those with an `alg` as published, RSA keys without one as
/// RS256 and EC P-256 keys without one as ES256 (Google, Microsoft omit `alg`).
fn verifiers(jwks: &Value) -> Verifiers {
    let mut set = Verifiers::new();
    set.extend_from_jwks(jwks);
    for key in jwks
        .get("keys")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(obj) = key.as_object() else { continue };
        if obj.contains_key("alg")
            || obj
                .get("use")
                .and_then(Value::as_str)
                .is_some_and(|u| u != "sig")
        {
            continue;
        }
        let alg = match (
            obj.get("kty").and_then(Value::as_str),
            obj.get("crv").and_then(Value::as_str),
        ) {
            (Some("RSA"), _) => Algorithm::RS256,
            (Some("EC"), Some("P-256")) => Algorithm::ES256,
            (Some("OKP"), Some("Ed25519")) => Algorithm::EdDSA,
            _ => continue,
        };
        let _ = set.insert(alg, obj);
    }
    set
}

impl Provider {
    fn oidc(&self) -> Result<&Oidc, IdpError> {
        self.oidc
            .as_ref()
            .ok_or_else(|| IdpError::Task("an OpenID provider without issuer".into()))
    }

    async fn get_json(&self, url: &str) -> Result<Value, IdpError> {
        let response = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(transport)?;
        if !response.status().is_success() {
            tracing::warn!(provider = %self.id, url, status = response.status().as_u16(), "upstream document not available");
            return Err(IdpError::Unavailable(
                "the upstream identity provider answered with an error".into(),
            ));
        }
        let bytes = read_limited(response).await?;
        serde_json::from_slice(&bytes)
            .map_err(|_| failed("The provider's answer could not be read."))
    }

    /// The discovery document (cached; see the module docs). Its `issuer` must equal the
    /// configured one (OpenID Connect Discovery 1.0 §4.3).
    pub(crate) async fn discovery(&self) -> Result<Discovery, IdpError> {
        let oidc = self.oidc()?;
        let mut cached = oidc.discovery.lock().await;
        if let Some((d, at)) = cached.as_ref()
            && at.elapsed() < CACHE_FOR
        {
            return Ok(d.clone());
        }
        let issuer = oidc.issuer();
        let url = oidc.reach(&format!("{issuer}/.well-known/openid-configuration"));
        let value = self.get_json(&url).await?;
        let discovery: Discovery = serde_json::from_value(value)
            .map_err(|_| failed("The provider's discovery document is incomplete."))?;
        if !same_issuer(&discovery.issuer, &issuer) {
            tracing::error!(provider = %self.id, expected = %issuer, got = %discovery.issuer, "discovery issuer mismatch");
            return Err(failed(
                "The provider's discovery document names another issuer.",
            ));
        }
        *cached = Some((discovery.clone(), Instant::now()));
        Ok(discovery)
    }

    /// Verifies `token`'s signature with the upstream's keys, refetching them once for an
    /// unknown `kid`.
    async fn verify_signature(
        &self,
        jwks_uri: &str,
        token: &str,
    ) -> Result<Map<String, Value>, IdpError> {
        let oidc = self.oidc()?;
        let expect = Expect {
            algorithms: ALGORITHMS,
            typ: None,
        };
        let mut keys = oidc.keys.lock().await;
        let stale = keys
            .as_ref()
            .is_none_or(|k| k.fetched.elapsed() >= CACHE_FOR);
        if stale {
            let jwks = self.get_json(jwks_uri).await?;
            *keys = Some(Keys {
                verifiers: verifiers(&jwks),
                fetched: Instant::now(),
            });
        }
        let first = match keys.as_ref() {
            Some(k) => issuer::jws::verify(token, &k.verifiers, &expect),
            None => Err(VerifyError::UnknownKid),
        };
        let verified = match first {
            Err(VerifyError::UnknownKid)
                if keys
                    .as_ref()
                    .is_some_and(|k| k.fetched.elapsed() >= REFETCH_AFTER) =>
            {
                let jwks = self.get_json(jwks_uri).await?;
                let verifiers = verifiers(&jwks);
                let again = issuer::jws::verify(token, &verifiers, &expect);
                *keys = Some(Keys {
                    verifiers,
                    fetched: Instant::now(),
                });
                again
            }
            other => other,
        };
        verified.map(|v| v.claims).map_err(|e| {
            tracing::warn!(provider = %self.id, error = %e, "upstream ID token refused");
            failed("The provider's ID token is not valid.")
        })
    }

    /// Redeems `code` and returns the verified, mapped profile with the tokens the
    /// upstream answered with (kept only with `store_tokens`).
    #[tracing::instrument(skip_all, fields(provider = %self.id))]
    pub(crate) async fn oidc_exchange(
        &self,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
        nonce: &str,
        iss: Option<&str>,
        now: i64,
    ) -> Result<(UpstreamProfile, UpstreamTokens), IdpError> {
        let discovery = self.discovery().await?;
        let oidc = self.oidc()?;
        let issuer = oidc.issuer();
        // RFC 9207 §2.4: when the provider says it sends `iss`, it must be there; when it is
        // there, it must be this provider's issuer (mix-up defence).
        match iss {
            Some(iss) if !same_issuer(iss, &issuer) => {
                return Err(failed("The answer came from another issuer than expected."));
            }
            None if discovery.authorization_response_iss_parameter_supported => {
                return Err(failed("The provider's answer lacks its issuer (iss)."));
            }
            _ => {}
        }
        let secret = self
            .config
            .client_secret
            .as_ref()
            .map(|s| s.expose().clone())
            .unwrap_or_default();
        let mut form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.to_owned()),
            ("redirect_uri", redirect_uri.to_owned()),
            ("code_verifier", verifier.to_owned()),
        ];
        // client_secret_basic unless the provider only takes client_secret_post
        // (OpenID Connect Core 1.0 §9; RFC 6749 §2.3.1).
        let post_only = discovery
            .token_endpoint_auth_methods_supported
            .as_ref()
            .is_some_and(|m| {
                !m.iter().any(|x| x == "client_secret_basic")
                    && m.iter().any(|x| x == "client_secret_post")
            });
        let mut request = self
            .http
            .post(oidc.reach(&discovery.token_endpoint))
            .header(reqwest::header::ACCEPT, "application/json");
        if post_only {
            form.push(("client_id", self.config.client_id.clone()));
            form.push(("client_secret", secret));
        } else {
            request = request.header(
                reqwest::header::AUTHORIZATION,
                domain::basic::encode(&self.config.client_id, &secret),
            );
        }
        let response = request.form(&form).send().await.map_err(transport)?;
        let status = response.status();
        let body = read_limited(response).await?;
        let token: TokenResponse = serde_json::from_slice(&body)
            .map_err(|_| failed("The provider's token answer could not be read."))?;
        if !status.is_success() || token.error.is_some() {
            tracing::warn!(provider = %self.id, status = status.as_u16(), error = token.error.as_deref().unwrap_or(""), "upstream token request refused");
            return Err(failed("The provider refused to complete the sign-in."));
        }
        let Some(id_token) = token.id_token.clone() else {
            return Err(failed("The provider sent no ID token."));
        };
        let claims = self
            .verify_signature(&oidc.reach(&discovery.jwks_uri), &id_token)
            .await?;
        check_id_token(&claims, &issuer, &self.config.client_id, nonce, now)?;
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty() && s.len() <= 255)
            .ok_or_else(|| failed("The provider's ID token has no subject."))?
            .to_owned();
        let mut all = claims;
        if let (Some(endpoint), Some(access_token)) =
            (&discovery.userinfo_endpoint, token.access_token.as_deref())
        {
            let info = self.userinfo(&oidc.reach(endpoint), access_token).await?;
            // OpenID Connect Core 1.0 §5.3.2: the UserInfo `sub` must be the ID token's.
            if info.get("sub").and_then(Value::as_str) != Some(subject.as_str()) {
                return Err(failed("The provider's user info is for another subject."));
            }
            for (k, v) in info {
                all.entry(k).or_insert(v);
            }
        }
        let tokens = UpstreamTokens {
            access_token: token.access_token,
            refresh_token: token.refresh_token,
            id_token: Some(id_token),
            expires_at: token.expires_in.map(|s| now.saturating_add(s)),
            scope: token.scope,
        };
        Ok((self.map_claims(subject, &all), tokens))
    }

    async fn userinfo(
        &self,
        endpoint: &str,
        access_token: &str,
    ) -> Result<Map<String, Value>, IdpError> {
        let response = self
            .http
            .get(endpoint)
            .bearer_auth(access_token)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(transport)?;
        if !response.status().is_success() {
            return Err(failed("The provider refused to share the user's profile."));
        }
        let body = read_limited(response).await?;
        match serde_json::from_slice(&body) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(failed("The provider's user info could not be read.")),
        }
    }

    /// The configured claim mapping applied to `claims`; the email only with
    /// `email_verified: true` (a string "true" counts, as some providers send it).
    fn map_claims(&self, subject: String, claims: &Map<String, Value>) -> UpstreamProfile {
        let text = |name: &str| {
            claims
                .get(name)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty() && s.len() <= 254)
                .map(str::to_owned)
        };
        let verified = matches!(claims.get("email_verified"), Some(Value::Bool(true)))
            || claims.get("email_verified").and_then(Value::as_str) == Some("true");
        UpstreamProfile {
            subject,
            username: text(&self.config.claims.username),
            email: text(&self.config.claims.email).filter(|_| verified),
            name: text(&self.config.claims.name),
        }
    }
}

/// OpenID Connect Core 1.0 §3.1.3.7 steps 2-3, 9-11: `iss`, `aud` (and `azp` with several
/// audiences), `exp`, `iat` and `nonce`.
pub(crate) fn check_id_token(
    claims: &Map<String, Value>,
    issuer: &str,
    client_id: &str,
    nonce: &str,
    now: i64,
) -> Result<(), IdpError> {
    let invalid = |why: &str| {
        tracing::warn!(why, "upstream ID token refused");
        failed("The provider's ID token is not valid.")
    };
    match claims.get("iss").and_then(Value::as_str) {
        Some(iss) if same_issuer(iss, issuer) => {}
        _ => return Err(invalid("iss")),
    }
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !audiences.contains(&client_id) {
        return Err(invalid("aud"));
    }
    if audiences.len() > 1 && claims.get("azp").and_then(Value::as_str) != Some(client_id) {
        return Err(invalid("azp"));
    }
    match claims.get("exp").and_then(Value::as_i64) {
        Some(exp) if exp + LEEWAY > now => {}
        _ => return Err(invalid("exp")),
    }
    match claims.get("iat").and_then(Value::as_i64) {
        Some(iat) if iat <= now + LEEWAY => {}
        _ => return Err(invalid("iat")),
    }
    let matches = claims
        .get("nonce")
        .and_then(Value::as_str)
        .is_some_and(|n| domain::constant_time_eq(n.as_bytes(), nonce.as_bytes()));
    if !matches {
        return Err(invalid("nonce"));
    }
    Ok(())
}
