//! Token introspection over the `authz.v1.Introspection` gRPC API (RFC 7662 semantics):
//!
//! - the resource server authenticates as a client with `authorization: Basic …` metadata
//!   (RFC 7662 §2.1, credentials encoded as RFC 6749 §2.3.1 says);
//! - each attempt has a deadline; transient failures are retried with exponential backoff;
//!   a server that stays unreachable, or refuses our credentials, makes the answer
//!   "unavailable" (503 at the edge), never "active";
//! - answers are cached by the token's SHA-256: active ones for at most `cache_ttl` and never
//!   beyond the token's `exp`, inactive ones for `negative_ttl`; the cache is bounded;
//! - concurrent requests with the same token share one call (request coalescing);
//! - every call goes through the runtime's observed channel: it carries the W3C trace
//!   context of the request being guarded and is counted in
//!   `grpc_client_requests_total{service,method,code}`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use proto::authz::v1::introspection_client::IntrospectionClient;
use proto::authz::v1::{IntrospectRequest, IntrospectResponse};
use runtime::GrpcChannel;
use serde_json::{Map, Value};
use tokio::sync::OnceCell;
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tracing::instrument;

use crate::config::IntrospectionConfig;
use crate::error::{GuardError, TokenProblem};
use crate::jwt::Expectations;
use crate::principal::{Identity, Principal, parse_scopes};

type Key = [u8; 32];

/// What the authorization server said about a token.
#[derive(Debug, Clone)]
pub(crate) enum Answer {
    /// `active: true`, with the token's metadata.
    Active(Arc<IntrospectResponse>),
    /// `active: false`: unknown, expired, revoked or foreign.
    Inactive,
    /// No answer could be had.
    Unavailable,
}

struct Entry {
    answer: Answer,
    expires: Instant,
}

/// The gRPC introspection client with its cache.
pub(crate) struct Introspector {
    client: IntrospectionClient<GrpcChannel>,
    authorization: Option<AsciiMetadataValue>,
    config: IntrospectionConfig,
    cache: Mutex<HashMap<Key, Entry>>,
    inflight: Mutex<HashMap<Key, Arc<OnceCell<Answer>>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn transient(code: tonic::Code) -> bool {
    matches!(
        code,
        tonic::Code::Unavailable
            | tonic::Code::DeadlineExceeded
            | tonic::Code::ResourceExhausted
            | tonic::Code::Aborted
            | tonic::Code::Unknown
            | tonic::Code::Cancelled
    )
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl Introspector {
    /// A client of `config.endpoint`; connects on first use (must run inside a Tokio
    /// runtime).
    pub(crate) fn new(config: &IntrospectionConfig) -> Result<Self, GuardError> {
        let invalid = |key: &str, message: String| {
            GuardError::Config(::config::ConfigError::new(key, message).within("introspection"))
        };
        let channel = config
            .tls
            .endpoint("endpoint", &config.endpoint)
            .map_err(|e| GuardError::Config(e.within("introspection")))?
            .connect_timeout(config.deadline)
            .tcp_nodelay(true)
            .connect_lazy();
        // With a client certificate and no client_id, the certificate alone authenticates.
        let authorization = match config.client_id.as_deref() {
            None if config.tls.presents_certificate(&config.endpoint) => None,
            id => {
                let secret = config
                    .client_secret
                    .as_ref()
                    .map(|s| s.expose().as_str())
                    .unwrap_or_default();
                let mut value: AsciiMetadataValue =
                    MetadataValue::try_from(domain::basic::encode(id.unwrap_or_default(), secret))
                        .map_err(|_| invalid("client_id", "not encodable as metadata".into()))?;
                value.set_sensitive(true);
                Some(value)
            }
        };
        Ok(Self {
            client: IntrospectionClient::new(runtime::grpc_channel(channel)),
            authorization,
            config: config.clone(),
            cache: Mutex::new(HashMap::new()),
            inflight: Mutex::new(HashMap::new()),
        })
    }

    /// The answer for `token`: from the cache, from a call already in flight for the same
    /// token, or from a new call.
    #[instrument(skip_all)]
    pub(crate) async fn introspect(&self, token: &str) -> Answer {
        let key = domain::secret::digest(token);
        if let Some(answer) = self.cached(&key) {
            metrics::counter!("guard_introspection_cache_total", "result" => "hit").increment(1);
            return answer;
        }
        let cell = Arc::clone(
            lock(&self.inflight)
                .entry(key)
                .or_insert_with(|| Arc::new(OnceCell::new())),
        );
        let called = AtomicBool::new(false);
        let answer = cell
            .get_or_init(|| async {
                called.store(true, Ordering::Relaxed);
                let answer = self.call(token).await;
                self.store(key, &answer);
                answer
            })
            .await
            .clone();
        {
            let mut inflight = lock(&self.inflight);
            if inflight.get(&key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
                inflight.remove(&key);
            }
        }
        let result = if called.load(Ordering::Relaxed) {
            "miss"
        } else {
            "coalesced"
        };
        metrics::counter!("guard_introspection_cache_total", "result" => result).increment(1);
        answer
    }

    fn cached(&self, key: &Key) -> Option<Answer> {
        let mut cache = lock(&self.cache);
        match cache.get(key) {
            Some(entry) if entry.expires > Instant::now() => Some(entry.answer.clone()),
            Some(_) => {
                cache.remove(key);
                None
            }
            None => None,
        }
    }

    fn store(&self, key: Key, answer: &Answer) {
        let ttl = match answer {
            Answer::Active(r) => {
                let left = u64::try_from(r.exp.saturating_sub(unix_now())).unwrap_or(0);
                if r.exp > 0 {
                    self.config.cache_ttl.min(Duration::from_secs(left))
                } else {
                    self.config.cache_ttl
                }
            }
            Answer::Inactive => self.config.negative_ttl,
            Answer::Unavailable => Duration::ZERO,
        };
        if ttl.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut cache = lock(&self.cache);
        let capacity = self.config.cache_capacity;
        if cache.len() >= capacity && !cache.contains_key(&key) {
            cache.retain(|_, e| e.expires > now);
            if cache.len() >= capacity {
                // Room for an eighth of the capacity at once (at least one answer), taken
                // from the answers closest to expiry: a full cache pays this scan once per
                // that many new answers, not on every one (a flood of distinct tokens).
                let evict = (capacity / 8).clamp(1, cache.len());
                let mut by_expiry: Vec<(Instant, Key)> =
                    cache.iter().map(|(k, e)| (e.expires, *k)).collect();
                by_expiry.select_nth_unstable_by_key(evict - 1, |(expires, _)| *expires);
                for (_, k) in &by_expiry[..evict] {
                    cache.remove(k);
                }
            }
        }
        cache.insert(
            key,
            Entry {
                answer: answer.clone(),
                expires: now + ttl,
            },
        );
    }

    #[instrument(skip_all)]
    async fn call(&self, token: &str) -> Answer {
        let mut pause = self.config.backoff;
        for attempt in 0..=self.config.retries {
            let mut request = tonic::Request::new(IntrospectRequest {
                token: token.to_owned(),
                token_type_hint: "access_token".to_owned(),
            });
            if let Some(authorization) = &self.authorization {
                request
                    .metadata_mut()
                    .insert("authorization", authorization.clone());
            }
            request.set_timeout(self.config.deadline);
            let mut client = self.client.clone();
            match tokio::time::timeout(self.config.deadline, client.introspect(request)).await {
                Ok(Ok(response)) => {
                    let response = response.into_inner();
                    let result = if response.active {
                        "active"
                    } else {
                        "inactive"
                    };
                    metrics::counter!("guard_introspections_total", "result" => result)
                        .increment(1);
                    return if response.active {
                        Answer::Active(Arc::new(response))
                    } else {
                        Answer::Inactive
                    };
                }
                Ok(Err(status)) if !transient(status.code()) => {
                    tracing::error!(
                        code = ?status.code(),
                        message = status.message(),
                        "the authorization server refused the introspection call"
                    );
                    break;
                }
                Ok(Err(status)) => tracing::warn!(
                    attempt,
                    code = ?status.code(),
                    "introspection failed"
                ),
                Err(_) => tracing::warn!(attempt, "introspection deadline exceeded"),
            }
            if attempt < self.config.retries {
                tokio::time::sleep(pause).await;
                pause = pause.saturating_mul(2);
            }
        }
        metrics::counter!("guard_introspections_total", "result" => "error").increment(1);
        Answer::Unavailable
    }
}

/// The principal of an active token, after the checks RFC 7662 §4 leaves to the resource
/// server: issuer, audience and (defensively) `exp`/`nbf`.
pub(crate) fn principal_from(
    response: &IntrospectResponse,
    expect: &Expectations,
    now: i64,
) -> Result<Principal, GuardError> {
    let invalid = GuardError::InvalidToken;
    if !response.iss.is_empty() && response.iss != expect.issuer {
        return Err(invalid(TokenProblem::Issuer));
    }
    if response.exp > 0 && now >= response.exp.saturating_add(expect.leeway) {
        return Err(invalid(TokenProblem::Expired));
    }
    if response.nbf > 0 && now.saturating_add(expect.leeway) < response.nbf {
        return Err(invalid(TokenProblem::NotYetValid));
    }
    if !response.aud.contains(&expect.audience) {
        return Err(invalid(TokenProblem::Audience));
    }
    let mut claims = Map::new();
    claims.insert("active".into(), Value::Bool(true));
    let texts = [
        ("scope", &response.scope),
        ("client_id", &response.client_id),
        ("sub", &response.sub),
        ("iss", &response.iss),
        ("token_type", &response.token_type),
        ("jti", &response.jti),
        ("username", &response.username),
    ];
    for (name, value) in texts {
        if !value.is_empty() {
            claims.insert(name.into(), Value::String(value.clone()));
        }
    }
    claims.insert("aud".into(), response.aud.clone().into());
    for (name, value) in [
        ("exp", response.exp),
        ("iat", response.iat),
        ("nbf", response.nbf),
    ] {
        if value > 0 {
            claims.insert(name.into(), value.into());
        }
    }
    Ok(Principal::new(Identity {
        sub: response.sub.clone(),
        client_id: response.client_id.clone(),
        scopes: parse_scopes(&response.scope),
        aud: response.aud.clone(),
        exp: response.exp,
        claims,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    #[test]
    fn credentials_are_form_encoded_then_base64() {
        let header = domain::basic::encode("my api", "s:e/c");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(header.strip_prefix("Basic ").unwrap())
            .unwrap();
        assert_eq!(String::from_utf8(decoded).unwrap(), "my+api:s%3Ae%2Fc");
    }

    #[test]
    fn introspection_answers_are_checked_like_tokens() {
        let expect = Expectations {
            issuer: "https://id.example.com".into(),
            audience: "https://api.example.com".into(),
            leeway: 0,
        };
        let good = IntrospectResponse {
            active: true,
            scope: "items:read".into(),
            client_id: "app".into(),
            sub: "app".into(),
            aud: vec!["https://api.example.com".into()],
            iss: "https://id.example.com".into(),
            exp: 2_000,
            iat: 1_000,
            ..IntrospectResponse::default()
        };
        let p = principal_from(&good, &expect, 1_500).unwrap();
        assert_eq!((p.sub.as_str(), p.client_id.as_str()), ("app", "app"));
        assert!(p.has_scope("items:read"));
        assert_eq!(p.claims["exp"], 2_000);
        assert_eq!(p.claims["aud"][0], "https://api.example.com");
        assert!(!p.claims.contains_key("nbf"));
        let problem = |r: IntrospectResponse, now| match principal_from(&r, &expect, now) {
            Err(GuardError::InvalidToken(p)) => Some(p),
            _ => None,
        };
        assert_eq!(problem(good.clone(), 2_000), Some(TokenProblem::Expired));
        assert_eq!(
            problem(
                IntrospectResponse {
                    aud: vec!["https://other.example.com".into()],
                    ..good.clone()
                },
                1_500
            ),
            Some(TokenProblem::Audience)
        );
        assert_eq!(
            problem(
                IntrospectResponse {
                    iss: "https://evil.example".into(),
                    ..good
                },
                1_500
            ),
            Some(TokenProblem::Issuer)
        );
    }
}
