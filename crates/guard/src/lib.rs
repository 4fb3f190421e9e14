//! Protecting an actix-web API with the platform's access tokens.
//!
//! A [`Guard`] is built once from a [`GuardConfig`] and registered as application data;
//! handlers then ask for a verified [`Principal`] (any valid token) or a [`Scoped`] principal
//! (a token granting the route's scopes), or a whole `web::scope` is wrapped in
//! [`Guard::protect`]. A handler only ever runs with a token that was verified.
//!
//! ```no_run
//! use actix_web::{App, HttpServer, web};
//! use guard::{Guard, GuardConfig, Principal, Scoped};
//!
//! guard::required_scopes!(ItemsRead = ["items:read"]);
//!
//! async fn me(who: Principal) -> String { who.sub.clone() }
//! async fn items(who: Scoped<ItemsRead>) -> String { format!("items of {}", who.client_id) }
//!
//! #[actix_web::main]
//! async fn main() -> std::io::Result<()> {
//!     let config = GuardConfig::jwt("https://id.example.com", "https://api.example.com");
//!     let guard = Guard::new(config).map_err(std::io::Error::other)?;
//!     HttpServer::new(move || {
//!         App::new()
//!             .app_data(guard.clone())
//!             .route("/me", web::get().to(me))
//!             .route("/items", web::get().to(items))
//!     })
//!     .bind(("127.0.0.1", 8082))?
//!     .run()
//!     .await
//! }
//! ```
//!
//! Modes ([`Mode`]):
//!
//! - `jwt`: RFC 9068 access tokens verified locally (RFC 9068 §4) against the JWKS found
//!   through the issuer's discovery document, cached as its `Cache-Control: max-age` says,
//!   refetched on an unknown `kid` at most once per `jwks.refetch_interval`, and kept when the
//!   issuer cannot be reached;
//! - `introspection`: every token asked about over gRPC `authz.v1.Introspection` (RFC 7662),
//!   with a bounded cache and one call in flight per token; unreachable means 503;
//! - `hybrid`: local verification, then introspection, so revocation takes effect within
//!   `introspection.cache_ttl`.
//!
//! Tokens are taken from the `Authorization: Bearer` header (RFC 6750 §2.1) or a form body
//! (§2.2), never from the query string; refusals are RFC 6750 §3 responses
//! ([`Guard::reject`]). Every decision is counted in `guard_requests_total{result, reason}`.

mod actix;
mod config;
mod error;
mod introspection;
mod jwks;
mod jwt;
mod principal;
mod token;

#[cfg(test)]
mod tests;

/// The README's code blocks as doctests of this crate, so `cargo test --doc` (run by
/// `make test`) compiles its Rust examples against this API: an example that stops compiling
/// fails the tests. Blocks that are not Rust carry a language (`sh`, `text`, …).
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;

use std::sync::Arc;

use ::config::Validate;
use tracing::instrument;

pub use crate::actix::{Protect, ProtectService, RequiredScopes, Scoped};
pub use crate::config::{GuardConfig, IntrospectionConfig, JwksConfig, Mode, extra_roots};
pub use crate::error::{GuardError, TokenProblem};
pub use crate::jwks::LocalKeys;
pub use crate::principal::{Actor, Identity, Principal};
pub use crate::token::FORM_BODY_LIMIT;

use crate::introspection::{Answer, Introspector};
use crate::jwks::Jwks;
use crate::jwt::{Expectations, LocalVerifier};
use crate::token::BearerToken;

/// Validates access tokens for one resource server. Cheap to clone (one `Arc`); register it
/// with `App::app_data(guard.clone())` (or as `web::Data<Guard>`).
#[derive(Clone)]
pub struct Guard {
    inner: Arc<Inner>,
}

struct Inner {
    mode: Mode,
    realm: String,
    expect: Arc<Expectations>,
    local: Option<LocalVerifier>,
    introspector: Option<Introspector>,
    /// `guard_requests_total{result="allowed"}`, registered once: the per-request path
    /// only adds to it.
    allowed: metrics::Counter,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("mode", &self.inner.mode)
            .field("issuer", &self.inner.expect.issuer)
            .field("audience", &self.inner.expect.audience)
            .finish_non_exhaustive()
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A compact JWS has exactly three dot-separated parts; anything else is opaque.
fn looks_like_jwt(token: &str) -> bool {
    token.bytes().filter(|b| *b == b'.').count() == 2
}

impl Guard {
    /// Validates `config` and builds the guard. Must be called inside a Tokio runtime: in
    /// `jwt` and `hybrid` modes a task on that runtime loads the signing keys at once and
    /// keeps them fresh for as long as a clone of the guard lives.
    pub fn new(config: GuardConfig) -> Result<Self, GuardError> {
        Self::build(config, None)
    }

    /// A `jwt`-mode guard inside the issuer itself: tokens are verified against `keys`,
    /// the issuer's own current key ring (RFC 9068 §4 checks as in [`Guard::new`]), with no
    /// discovery or JWKS fetch. authz protects its admin API this way.
    pub fn with_local_keys(mut config: GuardConfig, keys: LocalKeys) -> Result<Self, GuardError> {
        config.mode = Mode::Jwt;
        Self::build(config, Some(keys))
    }

    fn build(config: GuardConfig, local_keys: Option<LocalKeys>) -> Result<Self, GuardError> {
        config.validate()?;
        let handle = tokio::runtime::Handle::try_current().map_err(|_| GuardError::NoRuntime)?;
        let expect = Arc::new(Expectations {
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            leeway: i64::try_from(config.leeway.as_secs()).unwrap_or(i64::MAX),
        });
        let local = if config.mode.verifies_locally() {
            let jwks = match local_keys {
                Some(keys) => Jwks::local(&config, handle, keys),
                None => Jwks::new(&config, handle),
            }
            .map_err(GuardError::HttpClient)?;
            jwks.spawn_refresher();
            Some(LocalVerifier {
                jwks,
                algorithms: config.algorithms.clone(),
                expect: Arc::clone(&expect),
                verified: jwt::VerifiedCache::default(),
            })
        } else {
            None
        };
        let introspector = if config.mode.introspects() {
            Some(Introspector::new(&config.introspection)?)
        } else {
            None
        };
        Ok(Self {
            inner: Arc::new(Inner {
                mode: config.mode,
                realm: config.realm,
                expect,
                local,
                introspector,
                allowed: metrics::counter!(
                    "guard_requests_total", "result" => "allowed", "reason" => "none"
                ),
            }),
        })
    }

    /// The configured mode.
    pub fn mode(&self) -> Mode {
        self.inner.mode
    }

    /// The `realm` of the challenges.
    pub fn realm(&self) -> &str {
        &self.inner.realm
    }

    /// Whether the guard can decide on tokens: in `jwt` and `hybrid` modes once the issuer's
    /// keys were loaded (they are kept afterwards, even if the issuer goes away); always in
    /// `introspection` mode, which asks per token.
    pub fn is_ready(&self) -> bool {
        self.inner
            .local
            .as_ref()
            .is_none_or(|local| local.jwks.loaded())
    }

    /// Validates `token` as the configured mode says and returns whom it speaks for.
    /// `InvalidToken` when it is not a valid access token for this resource now
    /// (RFC 6750 §3.1), `Unavailable` when that cannot be decided now.
    #[instrument(skip_all, fields(mode = self.inner.mode.as_str()))]
    pub async fn authenticate(&self, token: &str) -> Result<Principal, GuardError> {
        let now = unix_now();
        let inner = &*self.inner;
        match (&inner.local, &inner.introspector) {
            (Some(local), None) => local.verify(token, now).await,
            (None, Some(introspector)) => inner.introspected(introspector, token, now).await,
            (Some(local), Some(introspector)) if looks_like_jwt(token) => {
                let principal = local.verify(token, now).await?;
                inner.introspected(introspector, token, now).await?;
                Ok(principal)
            }
            (_, Some(introspector)) => inner.introspected(introspector, token, now).await,
            (None, None) => Err(GuardError::Unavailable),
        }
    }

    /// The whole decision for one request, counted in `guard_requests_total`.
    #[instrument(skip_all)]
    pub(crate) async fn authorize<S: AsRef<str>>(
        &self,
        token: Result<Option<BearerToken>, GuardError>,
        required: &[S],
    ) -> Result<Principal, GuardError> {
        let result = match token {
            Err(e) => Err(e),
            Ok(None) => Err(GuardError::MissingToken),
            Ok(Some(token)) => match self.authenticate(token.expose()).await {
                Ok(principal) => check_scopes(principal, required),
                Err(e) => Err(e),
            },
        };
        match &result {
            Ok(_) => self.inner.allowed.increment(1),
            Err(GuardError::InvalidToken(problem)) => {
                tracing::debug!(reason = problem.label(), "access token refused");
                record("invalid_token", problem.label());
            }
            Err(GuardError::Unavailable) => {
                tracing::warn!("access token cannot be checked now");
                record("unavailable", "none");
            }
            Err(e) => {
                tracing::debug!(result = e.result_label(), "request refused");
                record(e.result_label(), "none");
            }
        }
        result
    }
}

impl Inner {
    async fn introspected(
        &self,
        introspector: &Introspector,
        token: &str,
        now: i64,
    ) -> Result<Principal, GuardError> {
        match introspector.introspect(token).await {
            Answer::Active(response) => introspection::principal_from(&response, &self.expect, now),
            Answer::Inactive => Err(GuardError::InvalidToken(TokenProblem::Inactive)),
            Answer::Unavailable => Err(GuardError::Unavailable),
        }
    }
}

/// RFC 6750 §3.1 `insufficient_scope` unless every one of `required` was granted.
pub(crate) fn check_scopes<S: AsRef<str>>(
    principal: Principal,
    required: &[S],
) -> Result<Principal, GuardError> {
    if principal.has_scopes(required) {
        Ok(principal)
    } else {
        let scope: Vec<&str> = required.iter().map(AsRef::as_ref).collect();
        Err(GuardError::InsufficientScope(scope.join(" ")))
    }
}

/// Counts one decision: `guard_requests_total{result, reason}`.
pub(crate) fn record(result: &'static str, reason: &'static str) {
    metrics::counter!("guard_requests_total", "result" => result, "reason" => reason).increment(1);
}
