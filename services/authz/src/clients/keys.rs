//! clientauth: a client's public keys, from its registered `jwks` or fetched from its
//! `jwks_uri` (RFC 7591 §2), for verifying what it signs: client assertions
//! (`private_key_jwt`, RFC 7523 §2.2, OpenID Connect Core §9), request objects (RFC 9101)
//! and self-signed mTLS certificates (RFC 8705 §2.2).
//!
//! Parsed key sets are cached per document, bounded in count (`client_auth.
//! jwks_cache_entries`), size (`jwks_max_bytes`) and age (`jwks_cache_ttl`); an unknown
//! `kid` makes a `jwks_uri` be fetched again at most once per `jwks_refetch_interval`
//! (the client may have rotated its keys; OpenID Connect Core §10.1.1). Keys are parsed
//! once per document, never per request.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use issuer::{Algorithm, Clock, PublicKey};
use serde_json::{Map, Value};
use tracing::instrument;

use super::model::Client;
use crate::config::ClientAuthConfig;

/// Why a client's signature could not be verified. The messages are safe to show to the
/// client (they name no key material).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not a compact JWS with JSON header and payload objects.
    #[error("malformed JWT")]
    Malformed,
    /// `alg` is missing, `none`, not allowed for this client, or unsupported.
    #[error("signature algorithm not allowed")]
    AlgorithmNotAllowed,
    /// A `crit` header (RFC 7515 §4.1.11) this verifier does not understand.
    #[error("unsupported critical header")]
    UnsupportedCritical,
    /// The client has neither `jwks` nor `jwks_uri`.
    #[error("the client has no registered keys")]
    NoKeys,
    /// No key of the client matches `kid` and `alg` (after refetching its `jwks_uri`
    /// when allowed).
    #[error("no key of the client matches the kid and alg")]
    UnknownKey,
    /// The signature does not verify with the client's key.
    #[error("invalid signature")]
    BadSignature,
    /// The `jwks_uri` could not be fetched or is not a usable JWKS document.
    #[error("the client's jwks_uri could not be fetched: {0}")]
    Fetch(String),
}

/// One public key of a client, parsed for one algorithm.
pub struct ClientKey {
    /// Its `kid`, if it has one.
    pub kid: Option<String>,
    /// The algorithm it verifies (its `alg`, or each one its key type allows when it has
    /// none: RS256 and PS256 for RSA, ES256 for P-256, EdDSA for Ed25519).
    pub alg: Algorithm,
    /// The public JWK as published.
    pub jwk: Map<String, Value>,
    key: PublicKey,
}

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl ClientKey {
    /// Whether `signature` over `input` verifies with this key.
    pub fn verifies(&self, input: &[u8], signature: &[u8]) -> bool {
        self.key.verify(input, signature)
    }
}

/// A client's parsed JWKS: the signing keys authz can use (`use` absent or `sig`).
#[derive(Debug, Default)]
pub struct KeySet {
    /// The keys, in document order.
    pub keys: Vec<ClientKey>,
}

impl KeySet {
    /// Parses a JWKS document (RFC 7517 §5); keys of unsupported types, with `use` other
    /// than `sig`, or an unsupported `alg` are skipped. Not a JWKS document: an error.
    pub fn parse(doc: &Value) -> Result<Self, &'static str> {
        let keys = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or("not a JWKS document (no keys array)")?;
        let mut out = Vec::new();
        for key in keys {
            let Some(jwk) = key.as_object() else { continue };
            if jwk
                .get("use")
                .and_then(Value::as_str)
                .is_some_and(|u| u != "sig")
            {
                continue;
            }
            let kid = jwk.get("kid").and_then(Value::as_str).map(str::to_owned);
            for alg in algorithms_of(jwk) {
                if let Ok(key) = PublicKey::from_jwk(alg, jwk) {
                    out.push(ClientKey {
                        kid: kid.clone(),
                        alg,
                        jwk: jwk.clone(),
                        key,
                    });
                }
            }
        }
        Ok(Self { keys: out })
    }

    /// The keys for `alg` whose `kid` is `kid` (any key of `alg` when `kid` is `None`).
    pub fn matching<'a>(
        &'a self,
        kid: Option<&'a str>,
        alg: Algorithm,
    ) -> impl Iterator<Item = &'a ClientKey> + 'a {
        self.keys
            .iter()
            .filter(move |k| k.alg == alg && kid.is_none_or(|kid| k.kid.as_deref() == Some(kid)))
    }
}

/// The algorithms a JWK is used with: its `alg` when it names one authz supports (none
/// otherwise), else those its key type allows.
fn algorithms_of(jwk: &Map<String, Value>) -> Vec<Algorithm> {
    if let Some(alg) = jwk.get("alg").and_then(Value::as_str) {
        return alg.parse().ok().into_iter().collect();
    }
    let kty = jwk.get("kty").and_then(Value::as_str).unwrap_or_default();
    let crv = jwk.get("crv").and_then(Value::as_str).unwrap_or_default();
    match (kty, crv) {
        ("RSA", _) => vec![Algorithm::RS256, Algorithm::PS256],
        ("EC", "P-256") => vec![Algorithm::ES256],
        ("OKP", "Ed25519") => vec![Algorithm::EdDSA],
        _ => Vec::new(),
    }
}

/// A compact JWS split and decoded, signature not yet checked.
#[derive(Debug, Clone)]
pub struct UnverifiedJws<'a> {
    /// The protected header.
    pub header: Map<String, Value>,
    /// The payload (claims) object.
    pub claims: Map<String, Value>,
    /// `header.payload`, the signing input.
    pub signing_input: &'a str,
    /// The decoded signature.
    pub signature: Vec<u8>,
}

impl<'a> UnverifiedJws<'a> {
    /// Splits and decodes a compact JWS whose header and payload are JSON objects; a
    /// `crit` header is refused (RFC 7515 §4.1.11: none is understood here).
    pub fn parse(token: &'a str) -> Result<Self, KeyError> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(KeyError::Malformed);
        };
        let header = decode_object(h)?;
        if header.contains_key("crit") {
            return Err(KeyError::UnsupportedCritical);
        }
        let claims = decode_object(p)?;
        let signature = URL_SAFE_NO_PAD.decode(s).map_err(|_| KeyError::Malformed)?;
        Ok(Self {
            header,
            claims,
            signing_input: &token[..h.len() + 1 + p.len()],
            signature,
        })
    }

    /// The header's `alg`, as written.
    pub fn alg(&self) -> Option<&str> {
        self.header.get("alg").and_then(Value::as_str)
    }

    /// The header's `kid`.
    pub fn kid(&self) -> Option<&str> {
        self.header.get("kid").and_then(Value::as_str)
    }
}

fn decode_object(part: &str) -> Result<Map<String, Value>, KeyError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| KeyError::Malformed)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(KeyError::Malformed),
    }
}

/// A JWS whose signature verified with one of the client's keys.
#[derive(Debug, Clone)]
pub struct VerifiedJws {
    /// The protected header.
    pub header: Map<String, Value>,
    /// The payload (claims) object; checking its claims is the caller's job.
    pub claims: Map<String, Value>,
}

/// A cached key set and when it was fetched (or parsed, for an inline `jwks`), Unix
/// seconds of the service clock.
struct Cached {
    keys: Arc<KeySet>,
    fetched_at: i64,
}

/// The client key resolver: each client's verification keys, from its inline `jwks` or
/// its `jwks_uri`, parsed once and cached (see the module documentation for the bounds).
pub struct ClientKeys {
    http: Result<reqwest::Client, String>,
    clock: Arc<dyn Clock>,
    ttl: i64,
    refetch_interval: i64,
    max_bytes: usize,
    max_entries: usize,
    cache: RwLock<HashMap<String, Cached>>,
}

impl std::fmt::Debug for ClientKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientKeys").finish_non_exhaustive()
    }
}

impl ClientKeys {
    /// A resolver with the `client_auth` settings. `jwks_uri` fetches follow no redirects
    /// and trust the system's root certificates.
    pub fn new(config: &ClientAuthConfig, clock: Arc<dyn Clock>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(config.jwks_fetch_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("authz")
            .build()
            .map_err(|e| e.to_string());
        Self {
            http,
            clock,
            ttl: seconds(config.jwks_cache_ttl),
            refetch_interval: seconds(config.jwks_refetch_interval),
            max_bytes: config.jwks_max_bytes,
            max_entries: config.jwks_cache_entries,
            cache: RwLock::new(HashMap::new()),
        }
    }

    /// The client's key set: its inline `jwks` (parsed once per distinct document), or
    /// its `jwks_uri` document (fetched when not cached or older than `jwks_cache_ttl`;
    /// with `refresh`, fetched again unless that happened within `jwks_refetch_interval`).
    #[instrument(skip_all, fields(client_id = %client.id))]
    pub async fn key_set(&self, client: &Client, refresh: bool) -> Result<Arc<KeySet>, KeyError> {
        if let Some(jwks) = &client.jwks {
            let text = jwks.to_string();
            let cache_key = format!("inline:{}", super::model::hex(&super::model::digest(&text)));
            if let Some(keys) = self.cached(&cache_key, None) {
                return Ok(keys);
            }
            let keys = Arc::new(KeySet::parse(jwks).map_err(|_| KeyError::NoKeys)?);
            self.store(cache_key, Arc::clone(&keys));
            return Ok(keys);
        }
        let Some(uri) = &client.jwks_uri else {
            return Err(KeyError::NoKeys);
        };
        let cache_key = format!("uri:{uri}");
        let max_age = if refresh {
            self.refetch_interval
        } else {
            self.ttl
        };
        if let Some(keys) = self.cached(&cache_key, Some(max_age)) {
            return Ok(keys);
        }
        match self.fetch(uri).await {
            Ok(keys) => {
                let keys = Arc::new(keys);
                self.store(cache_key, Arc::clone(&keys));
                Ok(keys)
            }
            Err(e) => {
                tracing::warn!(jwks_uri = %uri, error = %e, "client jwks_uri fetch failed");
                metrics::counter!("client_jwks_fetch_failures_total").increment(1);
                Err(e)
            }
        }
    }

    /// The key set of `client` holding a key for `alg` and `kid` (see
    /// [`KeySet::matching`]), fetching its `jwks_uri` again (within the refetch bound) when none matches: what a
    /// verifier of anything the client signs needs (request objects, RFC 9101 §6.1).
    pub async fn keys_for(
        &self,
        client: &Client,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Arc<KeySet>, KeyError> {
        let set = self.key_set(client, false).await?;
        if set.matching(kid, alg).next().is_some() {
            return Ok(set);
        }
        if client.jwks_uri.is_some() {
            let fresh = self.key_set(client, true).await?;
            if fresh.matching(kid, alg).next().is_some() {
                return Ok(fresh);
            }
        }
        Err(KeyError::UnknownKey)
    }

    /// Verifies a compact JWS signed by `client` with one of `algorithms` (an allowlist:
    /// `none` and HMAC are never accepted here, RFC 8725 §3.1, §3.2; a key is only used
    /// with its own algorithm, so no RSA-public-key-as-HMAC-secret confusion). The `kid`
    /// header is optional: without it every key of the algorithm is tried. Returns the
    /// decoded header and claims; their meaning is the caller's to check.
    #[instrument(skip_all, fields(client_id = %client.id))]
    pub async fn verify(
        &self,
        client: &Client,
        token: &str,
        algorithms: &[Algorithm],
    ) -> Result<VerifiedJws, KeyError> {
        let jws = UnverifiedJws::parse(token)?;
        let alg: Algorithm = jws
            .alg()
            .and_then(|a| a.parse().ok())
            .filter(|a| algorithms.contains(a))
            .ok_or(KeyError::AlgorithmNotAllowed)?;
        let kid = jws.kid();
        let set = self.keys_for(client, kid, alg).await?;
        let ok = set
            .matching(kid, alg)
            .any(|k| k.verifies(jws.signing_input.as_bytes(), &jws.signature));
        if !ok {
            return Err(KeyError::BadSignature);
        }
        Ok(VerifiedJws {
            header: jws.header,
            claims: jws.claims,
        })
    }

    fn cached(&self, key: &str, max_age: Option<i64>) -> Option<Arc<KeySet>> {
        let cache = self.cache.read().ok()?;
        let entry = cache.get(key)?;
        if max_age.is_some_and(|m| self.clock.now() - entry.fetched_at >= m) {
            return None;
        }
        Some(Arc::clone(&entry.keys))
    }

    fn store(&self, key: String, keys: Arc<KeySet>) {
        let Ok(mut cache) = self.cache.write() else {
            return;
        };
        if cache.len() >= self.max_entries && !cache.contains_key(&key) {
            let (ttl, now) = (self.ttl, self.clock.now());
            cache.retain(|k, v| k.starts_with("inline:") || now - v.fetched_at < ttl);
            if cache.len() >= self.max_entries {
                cache.clear();
            }
        }
        cache.insert(
            key,
            Cached {
                keys,
                fetched_at: self.clock.now(),
            },
        );
    }

    /// GETs a JWKS document, reading at most `jwks_max_bytes`.
    async fn fetch(&self, uri: &str) -> Result<KeySet, KeyError> {
        let http = self.http.as_ref().map_err(|e| KeyError::Fetch(e.clone()))?;
        let mut res = http
            .get(uri)
            .header(
                reqwest::header::ACCEPT,
                "application/jwk-set+json, application/json",
            )
            .send()
            .await
            .map_err(|e| KeyError::Fetch(without_url(&e)))?;
        if !res.status().is_success() {
            return Err(KeyError::Fetch(format!("HTTP {}", res.status().as_u16())));
        }
        let mut body = Vec::new();
        while let Some(chunk) = res
            .chunk()
            .await
            .map_err(|e| KeyError::Fetch(without_url(&e)))?
        {
            if body.len() + chunk.len() > self.max_bytes {
                return Err(KeyError::Fetch(format!(
                    "document larger than {} bytes",
                    self.max_bytes
                )));
            }
            body.extend_from_slice(&chunk);
        }
        let doc: Value = serde_json::from_slice(&body)
            .map_err(|_| KeyError::Fetch("not a JSON document".into()))?;
        KeySet::parse(&doc).map_err(|e| KeyError::Fetch(e.to_owned()))
    }
}

fn seconds(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2)
}

/// A reqwest error's text without its URL (which the caller logs separately).
fn without_url(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else if e.is_redirect() {
        "redirects are not followed".into()
    } else {
        "request failed".into()
    }
}
