//! The issuer's signing keys: found through discovery, cached for the JWKS response's
//! `Cache-Control: max-age` (within configured bounds), refreshed in the background, refetched
//! on an unknown `kid` at most once per `jwks.refetch_interval`, and kept when the issuer
//! cannot be reached (the last good set keeps verifying).
//!
//! Every fetch runs as a task on the runtime that built the guard, one at a time, so HTTP
//! connections live on one runtime whichever actix worker asked, and a request that gives up
//! never leaves a fetch half done.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use actix_web::http::header::{ACCEPT, CACHE_CONTROL};
use arc_swap::ArcSwapOption;
use issuer::KeyRing;
use issuer::jws::Verifiers;
use serde_json::Value;
use tokio::runtime::Handle;
use tracing::instrument;

use crate::config::{GuardConfig, JwksConfig};

/// Largest discovery or JWKS document read.
const DOCUMENT_LIMIT: usize = 512 * 1024;
/// First retry after a failed fetch; doubled after each further failure.
const FIRST_RETRY: Duration = Duration::from_millis(250);
/// Longest wait between attempts while no key was ever loaded.
const COLD_RETRY_CAP: Duration = Duration::from_secs(2);

/// One fetched JWKS, or a snapshot of an in-process key ring ([`LocalKeys`]).
pub(crate) struct KeySet {
    verifiers: Verifiers,
    /// In-process keys: their verifiers are used instead of `verifiers`.
    ring: Option<Arc<KeyRing>>,
    expires_at: Instant,
}

impl KeySet {
    /// The public keys to verify with.
    pub(crate) fn verifiers(&self) -> &Verifiers {
        self.ring
            .as_ref()
            .map_or(&self.verifiers, |ring| ring.verifiers())
    }
}

/// The issuer's own key ring, for a guard that runs inside the issuer (authz protecting its
/// admin API with the tokens it issues): no discovery, no HTTP, no key parsing per request.
/// Returns the current ring; a new `Arc` whenever the keys change (rotation).
pub type LocalKeys = Arc<dyn Fn() -> Arc<KeyRing> + Send + Sync>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    Schedule,
    UnknownKid,
}

impl Trigger {
    fn label(self) -> &'static str {
        match self {
            Self::Schedule => "schedule",
            Self::UnknownKid => "unknown_kid",
        }
    }
}

/// The JWKS cache of one guard.
pub(crate) struct Jwks {
    discovery_url: String,
    issuer: String,
    config: JwksConfig,
    http: reqwest::Client,
    handle: Handle,
    keys: ArcSwapOption<KeySet>,
    /// Held for the whole of a fetch: one fetch at a time. Holds the `jwks_uri` learnt
    /// from discovery (forgotten after a failed JWKS fetch, so discovery is read again).
    fetching: tokio::sync::Mutex<Option<String>>,
    /// When the last fetch started, for the unknown-`kid` rate limit.
    last_attempt: Mutex<Option<Instant>>,
    /// In-process keys instead of fetched ones.
    local: Option<LocalKeys>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Jwks {
    /// A cache for `config.issuer`; nothing is fetched until [`Jwks::spawn_refresher`] or
    /// the first token.
    pub(crate) fn new(config: &GuardConfig, handle: Handle) -> Result<Arc<Self>, String> {
        let mut http = reqwest::Client::builder()
            .timeout(config.jwks.timeout)
            .connect_timeout(config.jwks.timeout)
            .user_agent(concat!("guard/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &config.jwks.ca_file {
            let roots =
                crate::config::extra_roots(path).map_err(|e| e.within("jwks").to_string())?;
            for root in roots {
                http = http.add_root_certificate(root);
            }
        }
        let http = http.build().map_err(|e| e.to_string())?;
        Ok(Arc::new(Self {
            discovery_url: config.discovery_url(),
            issuer: config.issuer.clone(),
            config: config.jwks.clone(),
            http,
            handle,
            keys: ArcSwapOption::empty(),
            fetching: tokio::sync::Mutex::new(None),
            last_attempt: Mutex::new(None),
            local: None,
        }))
    }

    /// A cache over the issuer's own key ring: nothing is ever fetched.
    pub(crate) fn local(
        config: &GuardConfig,
        handle: Handle,
        keys: LocalKeys,
    ) -> Result<Arc<Self>, String> {
        let http = reqwest::Client::builder()
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Arc::new(Self {
            discovery_url: config.discovery_url(),
            issuer: config.issuer.clone(),
            config: config.jwks.clone(),
            http,
            handle,
            keys: ArcSwapOption::empty(),
            fetching: tokio::sync::Mutex::new(None),
            last_attempt: Mutex::new(None),
            local: Some(keys),
        }))
    }

    /// The keys in use, if any set was ever loaded (possibly past its TTL when the issuer
    /// is unreachable: the last good keys are kept). With in-process keys, the current
    /// ring (one pointer comparison; a new snapshot only when the ring changed).
    pub(crate) fn current(&self) -> Option<Arc<KeySet>> {
        if let Some(local) = &self.local {
            let ring = local();
            if let Some(keys) = self.keys.load_full()
                && keys.ring.as_ref().is_some_and(|r| Arc::ptr_eq(r, &ring))
            {
                return Some(keys);
            }
            let keys = Arc::new(KeySet {
                verifiers: Verifiers::new(),
                ring: Some(ring),
                expires_at: Instant::now(),
            });
            self.keys.store(Some(Arc::clone(&keys)));
            return Some(keys);
        }
        self.keys.load_full()
    }

    /// Whether a key set was loaded at least once (always, with in-process keys).
    pub(crate) fn loaded(&self) -> bool {
        self.local.is_some() || self.keys.load().is_some()
    }

    /// Keeps the keys fresh until the cache is dropped: loads them at once (retrying with
    /// backoff while the issuer is unreachable), then refreshes when the TTL runs out.
    pub(crate) fn spawn_refresher(self: &Arc<Self>) {
        if self.local.is_some() {
            return;
        }
        let weak = Arc::downgrade(self);
        self.handle.spawn(async move {
            let mut failures: u32 = 0;
            loop {
                let Some(jwks) = weak.upgrade() else { return };
                let now = Instant::now();
                let wait = match jwks.current() {
                    Some(keys) if keys.expires_at > now => keys.expires_at - now,
                    current => match jwks.refresh(Trigger::Schedule).await {
                        Ok(()) => {
                            failures = 0;
                            continue;
                        }
                        Err(()) => {
                            failures = failures.saturating_add(1);
                            let cap = if current.is_some() {
                                jwks.config.min_ttl
                            } else {
                                COLD_RETRY_CAP
                            };
                            FIRST_RETRY
                                .saturating_mul(1u32 << failures.min(16).saturating_sub(1))
                                .min(cap)
                        }
                    },
                };
                drop(jwks);
                tokio::time::sleep(wait).await;
            }
        });
    }

    /// A token named a `kid` that the current keys lack: refetches unless a fetch started
    /// within `jwks.refetch_interval` (waiting for one in progress), and returns the keys.
    pub(crate) async fn refetch_for_unknown_kid(self: &Arc<Self>) -> Option<Arc<KeySet>> {
        if self.local.is_some() {
            return self.current();
        }
        let recent =
            lock(&self.last_attempt).is_some_and(|at| at.elapsed() < self.config.refetch_interval);
        if recent && self.fetching.try_lock().is_ok() {
            return self.current();
        }
        let this = Arc::clone(self);
        // A spawned task: the fetch completes even if this request is abandoned.
        let _ = self
            .handle
            .spawn(async move { this.refresh(Trigger::UnknownKid).await })
            .await;
        self.current()
    }

    async fn refresh(&self, trigger: Trigger) -> Result<(), ()> {
        let mut jwks_uri = self.fetching.lock().await;
        if trigger == Trigger::UnknownKid
            && lock(&self.last_attempt)
                .is_some_and(|at| at.elapsed() < self.config.refetch_interval)
        {
            return Ok(());
        }
        *lock(&self.last_attempt) = Some(Instant::now());
        let outcome = self.fetch(&mut jwks_uri).await;
        let result = if outcome.is_ok() { "ok" } else { "error" };
        metrics::counter!(
            "guard_jwks_fetches_total",
            "trigger" => trigger.label(),
            "result" => result
        )
        .increment(1);
        match outcome {
            Ok((keys, count, ttl)) => {
                tracing::info!(
                    keys = count,
                    ttl_secs = ttl.as_secs(),
                    trigger = trigger.label(),
                    "signing keys fetched"
                );
                metrics::gauge!("guard_jwks_keys").set(count as f64);
                self.keys.store(Some(Arc::new(keys)));
                Ok(())
            }
            Err(error) => {
                *jwks_uri = None;
                tracing::warn!(
                    %error,
                    trigger = trigger.label(),
                    keeping_previous = self.loaded(),
                    "cannot fetch the issuer's signing keys"
                );
                Err(())
            }
        }
    }

    #[instrument(skip_all)]
    async fn fetch(
        &self,
        jwks_uri: &mut Option<String>,
    ) -> Result<(KeySet, usize, Duration), String> {
        let uri = match jwks_uri.as_ref() {
            Some(uri) => uri.clone(),
            None => {
                let uri = self.discover().await?;
                *jwks_uri = Some(uri.clone());
                uri
            }
        };
        let (document, cache_control) = self.get_json(&uri).await?;
        let mut verifiers = Verifiers::new();
        let count = verifiers.extend_from_jwks(&document);
        if count == 0 {
            return Err(format!("{uri}: no usable signing key"));
        }
        let ttl = ttl_from_cache_control(cache_control.as_deref(), &self.config);
        let keys = KeySet {
            verifiers,
            ring: None,
            expires_at: Instant::now() + ttl,
        };
        Ok((keys, count, ttl))
    }

    /// OpenID Connect Discovery 1.0 §4: the `jwks_uri`, from a document whose `issuer` is
    /// exactly the configured one (§4.3).
    async fn discover(&self) -> Result<String, String> {
        let (document, _) = self.get_json(&self.discovery_url).await?;
        if document.get("issuer").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return Err(format!(
                "{}: issuer differs from the configured issuer",
                self.discovery_url
            ));
        }
        let uri = document
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{}: no jwks_uri", self.discovery_url))?;
        let uri =
            config::via_backchannel(&self.issuer, self.config.backchannel_url.as_deref(), uri);
        let parsed = url::Url::parse(&uri).map_err(|e| format!("jwks_uri: {e}"))?;
        if !matches!(parsed.scheme(), "https" | "http") {
            return Err("jwks_uri: not an http(s) URL".to_owned());
        }
        Ok(uri)
    }

    async fn get_json(&self, url: &str) -> Result<(Value, Option<String>), String> {
        let mut response = self
            .http
            .get(url)
            .header(ACCEPT.as_str(), "application/json")
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("{url}: answered {}", response.status()));
        }
        let cache_control = response
            .headers()
            .get(CACHE_CONTROL.as_str())
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| format!("{url}: {e}"))? {
            if body.len() + chunk.len() > DOCUMENT_LIMIT {
                return Err(format!(
                    "{url}: document larger than {DOCUMENT_LIMIT} bytes"
                ));
            }
            body.extend_from_slice(&chunk);
        }
        let document =
            serde_json::from_slice(&body).map_err(|e| format!("{url}: not JSON: {e}"))?;
        Ok((document, cache_control))
    }
}

/// How long a JWKS response may be used (RFC 9111 §5.2.2): `max-age` within
/// `[min_ttl, max_ttl]`, `min_ttl` for `no-cache`/`no-store`, `default_ttl` without either.
pub(crate) fn ttl_from_cache_control(header: Option<&str>, config: &JwksConfig) -> Duration {
    let mut ttl = None;
    for directive in header.unwrap_or_default().split(',') {
        let directive = directive.trim();
        let (name, value) = directive
            .split_once('=')
            .map_or((directive, None), |(n, v)| {
                (n.trim(), Some(v.trim().trim_matches('"')))
            });
        if name.eq_ignore_ascii_case("no-cache") || name.eq_ignore_ascii_case("no-store") {
            return config.min_ttl;
        }
        if name.eq_ignore_ascii_case("max-age")
            && let Some(secs) = value.and_then(|v| v.parse::<u64>().ok())
        {
            ttl = Some(Duration::from_secs(secs));
        }
    }
    ttl.unwrap_or(config.default_ttl)
        .clamp(config.min_ttl, config.max_ttl)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control_sets_the_ttl_within_bounds() {
        let config = JwksConfig {
            default_ttl: Duration::from_secs(300),
            min_ttl: Duration::from_secs(10),
            max_ttl: Duration::from_secs(3600),
            ..JwksConfig::default()
        };
        let ttl = |h: Option<&str>| ttl_from_cache_control(h, &config).as_secs();
        assert_eq!(ttl(Some("public, max-age=600")), 600);
        assert_eq!(ttl(Some("max-age=\"120\"")), 120);
        assert_eq!(ttl(Some("MAX-AGE=1")), 10, "raised to min_ttl");
        assert_eq!(ttl(Some("max-age=86400")), 3600, "lowered to max_ttl");
        assert_eq!(ttl(Some("no-store")), 10);
        assert_eq!(ttl(Some("max-age=600, no-cache")), 10);
        assert_eq!(ttl(Some("max-age=soon")), 300);
        assert_eq!(ttl(Some("public")), 300);
        assert_eq!(ttl(None), 300);
    }
}
