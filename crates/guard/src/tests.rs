//! The guard against a fake issuer (discovery + JWKS over HTTP) and a fake
//! `authz.v1.Introspection` server, on loopback port 0.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use issuer::jws::Signer;
use issuer::{Algorithm, PrivateKey};
use proto::authz::v1::introspection_server::{Introspection, IntrospectionServer};
use proto::authz::v1::{
    IntrospectBatchRequest, IntrospectBatchResponse, IntrospectRequest, IntrospectResponse,
};
use serde_json::{Value, json};

use crate::{Guard, GuardConfig, GuardError, Mode, Principal, Scoped, TokenProblem};

const AUD: &str = "https://api.example.test";

fn now() -> i64 {
    crate::unix_now()
}

// ---------------------------------------------------------------- fake issuer

struct IssuerState {
    keys: Vec<PrivateKey>,
    cache_control: String,
    discovery_issuer: Option<String>,
    /// The issuer URL clients use when this server is reached through a back channel.
    public_url: Option<String>,
}

struct FakeIssuer {
    url: String,
    state: Arc<Mutex<IssuerState>>,
    up: Arc<AtomicBool>,
    jwks_fetches: Arc<AtomicUsize>,
    server: actix_web::dev::ServerHandle,
}

impl FakeIssuer {
    async fn start(cache_control: &str) -> Self {
        Self::start_with(cache_control, None).await
    }

    /// Serves over HTTPS with `tls` when given (the issuer URL is then
    /// `https://localhost:PORT`).
    async fn start_with(cache_control: &str, tls: Option<rustls::ServerConfig>) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let url = match tls {
            Some(_) => format!("https://localhost:{port}"),
            None => format!("http://127.0.0.1:{port}"),
        };
        let state = Arc::new(Mutex::new(IssuerState {
            keys: vec![PrivateKey::generate(Algorithm::ES256, 2048).unwrap()],
            cache_control: cache_control.to_owned(),
            discovery_issuer: None,
            public_url: None,
        }));
        let up = Arc::new(AtomicBool::new(true));
        let jwks_fetches = Arc::new(AtomicUsize::new(0));
        let (s, u, f, base) = (state.clone(), up.clone(), jwks_fetches.clone(), url.clone());
        let server = HttpServer::new(move || {
            let (s, u, f, base) = (s.clone(), u.clone(), f.clone(), base.clone());
            let (s2, u2, base2) = (s.clone(), u.clone(), base.clone());
            App::new()
                .route(
                    "/.well-known/openid-configuration",
                    web::get().to(move || {
                        let (s, u, base) = (s2.clone(), u2.clone(), base2.clone());
                        async move {
                            if !u.load(Ordering::SeqCst) {
                                return HttpResponse::ServiceUnavailable().finish();
                            }
                            let state = s.lock().unwrap();
                            // Behind a public URL, the document names the public URLs.
                            let public = state.public_url.clone().unwrap_or_else(|| base.clone());
                            HttpResponse::Ok().json(json!({
                                "issuer": state.discovery_issuer.clone().unwrap_or_else(|| public.clone()),
                                "jwks_uri": format!("{public}/jwks"),
                            }))
                        }
                    }),
                )
                .route(
                    "/jwks",
                    web::get().to(move || {
                        let (s, u, f) = (s.clone(), u.clone(), f.clone());
                        async move {
                            if !u.load(Ordering::SeqCst) {
                                return HttpResponse::ServiceUnavailable().finish();
                            }
                            f.fetch_add(1, Ordering::SeqCst);
                            let state = s.lock().unwrap();
                            let body =
                                issuer::jwks::document(state.keys.iter().map(|k| k.public_jwk()))
                                    .unwrap();
                            HttpResponse::Ok()
                                .insert_header(("Cache-Control", state.cache_control.clone()))
                                .content_type("application/json")
                                .body(body)
                        }
                    }),
                )
        })
        .workers(1)
        .disable_signals();
        let server = match tls {
            Some(config) => server.listen_rustls_0_23(listener, config),
            None => server.listen(listener),
        }
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            url,
            state,
            up,
            jwks_fetches,
            server: handle,
        }
    }

    fn claims(&self) -> Value {
        json!({
            "iss": self.url,
            "sub": "alice",
            "client_id": "app",
            "aud": [AUD],
            "exp": now() + 300,
            "iat": now(),
            "jti": "j1",
            "scope": "items:read profile",
        })
    }

    /// Signs with the newest key.
    fn sign(&self, typ: &str, claims: &Value) -> String {
        let state = self.state.lock().unwrap();
        Signer::new(state.keys.last().unwrap())
            .unwrap()
            .sign_jwt(typ, claims)
            .unwrap()
    }

    fn token(&self, changes: Value) -> String {
        let mut claims = self.claims();
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                claims.as_object_mut().unwrap().remove(k);
            } else {
                claims[k] = v.clone();
            }
        }
        self.sign("at+jwt", &claims)
    }

    /// Publishes a new key and signs with it from now on.
    fn rotate(&self) {
        let key = PrivateKey::generate(Algorithm::ES256, 2048).unwrap();
        self.state.lock().unwrap().keys.push(key);
    }

    fn fetches(&self) -> usize {
        self.jwks_fetches.load(Ordering::SeqCst)
    }

    fn config(&self) -> GuardConfig {
        let mut c = GuardConfig::jwt(self.url.clone(), AUD);
        c.leeway = Duration::ZERO;
        c
    }
}

async fn ready(guard: &Guard) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !guard.is_ready() {
        assert!(Instant::now() < deadline, "keys not loaded in time");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn problem(result: Result<Principal, GuardError>) -> TokenProblem {
    match result {
        Err(GuardError::InvalidToken(p)) => p,
        other => panic!("expected invalid_token, got {other:?}"),
    }
}

fn forge(header: Value, payload: Value) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string()),
        URL_SAFE_NO_PAD.encode([7u8; 64])
    )
}

fn tamper_signature(token: &str) -> String {
    let (input, signature) = token.rsplit_once('.').unwrap();
    let mut sig = URL_SAFE_NO_PAD.decode(signature).unwrap();
    sig[10] ^= 0x01;
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

// ---------------------------------------------------------------- fake introspection

#[derive(Default)]
struct IntrospectState {
    answers: HashMap<String, IntrospectResponse>,
    calls: usize,
    /// Every call as it arrived: when, and for which token.
    log: Vec<(Instant, String)>,
    fail_next: usize,
    delay: Duration,
}

#[derive(Clone)]
struct FakeIntrospection {
    state: Arc<Mutex<IntrospectState>>,
    credentials: String,
}

#[tonic::async_trait]
impl Introspection for FakeIntrospection {
    async fn introspect(
        &self,
        request: tonic::Request<IntrospectRequest>,
    ) -> Result<tonic::Response<IntrospectResponse>, tonic::Status> {
        let auth = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let token = request.into_inner().token;
        let delay = {
            let mut state = self.state.lock().unwrap();
            state.calls += 1;
            state.log.push((Instant::now(), token.clone()));
            if auth != self.credentials {
                return Err(tonic::Status::unauthenticated(
                    "client authentication failed",
                ));
            }
            if state.fail_next > 0 {
                state.fail_next -= 1;
                return Err(tonic::Status::unavailable("try again later"));
            }
            state.delay
        };
        tokio::time::sleep(delay).await;
        let answer = self.state.lock().unwrap().answers.get(&token).cloned();
        Ok(tonic::Response::new(answer.unwrap_or_default()))
    }

    async fn introspect_batch(
        &self,
        _: tonic::Request<IntrospectBatchRequest>,
    ) -> Result<tonic::Response<IntrospectBatchResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("not used by the guard"))
    }
}

impl FakeIntrospection {
    /// Serves on port 0; the guard authenticates as `rs:s3cret`.
    async fn start() -> (Self, String) {
        Self::start_with(None, true).await
    }

    /// Serves on port 0, over TLS with `tls` when given (the URL is then
    /// `https://127.0.0.1:PORT`); with `basic` false the caller must send no credentials
    /// (it authenticates by its client certificate, which `tls` then requires).
    async fn start_with(
        tls: Option<tonic::transport::ServerTlsConfig>,
        basic: bool,
    ) -> (Self, String) {
        let fake = Self {
            state: Arc::default(),
            credentials: if basic {
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode("rs:s3cret")
                )
            } else {
                String::new()
            },
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{}", listener.local_addr().unwrap());
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        let service = IntrospectionServer::new(fake.clone());
        let mut builder = tonic::transport::Server::builder();
        if let Some(tls) = tls {
            builder = builder.tls_config(tls).unwrap();
        }
        tokio::spawn(builder.add_service(service).serve_with_incoming(incoming));
        (fake, url)
    }

    fn answer(&self, token: &str, response: IntrospectResponse) {
        self.state
            .lock()
            .unwrap()
            .answers
            .insert(token.to_owned(), response);
    }

    fn calls(&self) -> usize {
        self.state.lock().unwrap().calls
    }

    /// How many calls asked about `token`.
    fn asked(&self, token: &str) -> usize {
        let state = self.state.lock().unwrap();
        state.log.iter().filter(|(_, t)| t == token).count()
    }

    /// When each call arrived, in order.
    fn arrivals(&self) -> Vec<Instant> {
        let state = self.state.lock().unwrap();
        state.log.iter().map(|(at, _)| *at).collect()
    }
}

fn active(iss: &str, exp: i64) -> IntrospectResponse {
    IntrospectResponse {
        active: true,
        scope: "items:read".into(),
        client_id: "app".into(),
        sub: "alice".into(),
        aud: vec![AUD.into()],
        iss: iss.into(),
        exp,
        iat: now(),
        token_type: "Bearer".into(),
        jti: "j1".into(),
        ..IntrospectResponse::default()
    }
}

fn introspection_config(mode: Mode, issuer: &str, endpoint: &str) -> GuardConfig {
    let mut c = GuardConfig::jwt(issuer, AUD);
    c.mode = mode;
    c.leeway = Duration::ZERO;
    c.introspection.endpoint = endpoint.to_owned();
    c.introspection.client_id = Some("rs".into());
    c.introspection.client_secret = Some(::config::Secret::new("s3cret".into()));
    c.introspection.backoff = Duration::from_millis(10);
    c.introspection.deadline = Duration::from_millis(500);
    c
}

// ---------------------------------------------------------------- jwt mode

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_mode_accepts_valid_tokens_and_names_each_problem() {
    let issuer = FakeIssuer::start("max-age=600").await;
    let guard = Guard::new(issuer.config()).unwrap();
    ready(&guard).await;

    let p = guard.authenticate(&issuer.token(json!({}))).await.unwrap();
    assert_eq!((p.sub.as_str(), p.client_id.as_str()), ("alice", "app"));
    assert!(p.has_scopes(&["items:read", "profile"]));
    assert_eq!(p.aud, vec![AUD]);
    assert_eq!(p.claims["jti"], "j1");

    use TokenProblem::*;
    let cases = [
        (issuer.token(json!({"exp": now() - 1})), Expired),
        (issuer.token(json!({"nbf": now() + 60})), NotYetValid),
        (
            issuer.token(json!({"aud": "https://other.example.test"})),
            Audience,
        ),
        (
            issuer.token(json!({"iss": "https://evil.example.test"})),
            Issuer,
        ),
        (issuer.token(json!({"client_id": null})), Claims),
        (issuer.sign("JWT", &issuer.claims()), Type),
        (tamper_signature(&issuer.token(json!({}))), Signature),
        ("garbage".to_owned(), Malformed),
        ("a.b.c".to_owned(), Malformed),
        (
            forge(
                json!({"alg": "none", "kid": "k", "typ": "at+jwt"}),
                issuer.claims(),
            ),
            Algorithm,
        ),
        (
            forge(
                json!({"alg": "HS256", "kid": "k", "typ": "at+jwt"}),
                issuer.claims(),
            ),
            Algorithm,
        ),
        (
            forge(
                json!({"alg": "ES256", "kid": "forged", "typ": "at+jwt"}),
                issuer.claims(),
            ),
            UnknownKey,
        ),
    ];
    for (token, expected) in cases {
        assert_eq!(problem(guard.authenticate(&token).await), expected);
    }
    // The payload changed under a valid signature.
    let token = issuer.token(json!({}));
    let mut parts: Vec<&str> = token.split('.').collect();
    let admin = URL_SAFE_NO_PAD.encode(json!({"sub": "admin"}).to_string());
    parts[1] = &admin;
    assert_eq!(
        problem(guard.authenticate(&parts.join(".")).await),
        Signature
    );

    let mut leeway = issuer.config();
    leeway.leeway = Duration::from_secs(30);
    let lenient = Guard::new(leeway).unwrap();
    ready(&lenient).await;
    assert!(
        lenient
            .authenticate(&issuer.token(json!({"exp": now() - 10})))
            .await
            .is_ok()
    );
    assert_eq!(
        problem(
            lenient
                .authenticate(&issuer.token(json!({"exp": now() - 31})))
                .await
        ),
        Expired
    );
    issuer.server.stop(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kids_refetch_at_most_once_per_interval_and_rotation_is_picked_up() {
    let issuer = FakeIssuer::start("max-age=3600").await;
    let mut config = issuer.config();
    config.jwks.refetch_interval = Duration::from_secs(1);
    let guard = Guard::new(config).unwrap();
    ready(&guard).await;
    assert_eq!(issuer.fetches(), 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let forged = forge(
        json!({"alg": "ES256", "kid": "forged", "typ": "at+jwt"}),
        issuer.claims(),
    );
    let storm: Vec<_> = (0..20)
        .map(|_| {
            let (guard, forged) = (guard.clone(), forged.clone());
            tokio::spawn(async move { guard.authenticate(&forged).await })
        })
        .collect();
    for attempt in storm {
        assert_eq!(problem(attempt.await.unwrap()), TokenProblem::UnknownKey);
    }
    assert_eq!(issuer.fetches(), 2, "twenty forged kids, one refetch");

    issuer.rotate();
    let rotated = issuer.token(json!({}));
    assert_eq!(
        problem(guard.authenticate(&rotated).await),
        TokenProblem::UnknownKey,
        "within the interval a new kid waits"
    );
    assert_eq!(issuer.fetches(), 2);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let p = guard.authenticate(&rotated).await.unwrap();
    assert_eq!(p.sub, "alice");
    assert_eq!(issuer.fetches(), 3);
    issuer.server.stop(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remembered_signatures_still_expire_and_die_with_their_key() {
    let issuer = FakeIssuer::start("max-age=1").await;
    let mut config = issuer.config();
    config.jwks.min_ttl = Duration::from_secs(1);
    let guard = Guard::new(config).unwrap();
    ready(&guard).await;

    let short = issuer.token(json!({ "exp": now() + 1 }));
    let old_key = issuer.token(json!({}));
    for _ in 0..3 {
        assert!(guard.authenticate(&short).await.is_ok());
        assert!(guard.authenticate(&old_key).await.is_ok());
    }
    // Expiry is checked on every request, remembered signature or not.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        problem(guard.authenticate(&short).await),
        TokenProblem::Expired
    );

    // The signing key leaves the JWKS: its tokens stop verifying once the guard sees that.
    issuer.rotate();
    issuer.state.lock().unwrap().keys.remove(0);
    let fetched = issuer.fetches();
    let deadline = Instant::now() + Duration::from_secs(10);
    while issuer.fetches() == fetched {
        assert!(Instant::now() < deadline, "JWKS not refreshed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        problem(guard.authenticate(&old_key).await),
        TokenProblem::UnknownKey
    );
    assert!(guard.authenticate(&issuer.token(json!({}))).await.is_ok());
    issuer.server.stop(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_follow_max_age_and_survive_an_unreachable_issuer() {
    let issuer = FakeIssuer::start("public, max-age=1").await;
    let mut config = issuer.config();
    config.jwks.min_ttl = Duration::from_secs(1);
    config.jwks.default_ttl = Duration::from_secs(60);
    let guard = Guard::new(config.clone()).unwrap();
    ready(&guard).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(issuer.fetches() >= 2, "refreshed after max-age");

    issuer.up.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let token = issuer.token(json!({}));
    assert!(
        guard.authenticate(&token).await.is_ok(),
        "last good keys kept"
    );
    assert!(guard.is_ready());

    // A guard that never saw the keys cannot decide: 503, not 401, and not ready.
    let cold = Guard::new(config).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!cold.is_ready());
    assert_eq!(
        cold.authenticate(&token).await,
        Err(GuardError::Unavailable)
    );
    issuer.up.store(true, Ordering::SeqCst);
    ready(&cold).await;
    assert!(cold.authenticate(&token).await.is_ok());
    issuer.server.stop(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_must_name_the_configured_issuer() {
    let issuer = FakeIssuer::start("max-age=60").await;
    issuer.state.lock().unwrap().discovery_issuer = Some("https://impostor.example.test".into());
    let guard = Guard::new(issuer.config()).unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!guard.is_ready());
    assert_eq!(
        issuer.fetches(),
        0,
        "no JWKS read from a mismatching discovery"
    );
    assert_eq!(
        guard.authenticate(&issuer.token(json!({}))).await,
        Err(GuardError::Unavailable)
    );
    issuer.server.stop(false).await;
}

/// An issuer whose public URL is not reachable from here (a container network): discovery
/// and the JWKS through `jwks.backchannel_url`, `iss` still the public issuer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_fetched_through_the_backchannel_url() {
    const PUBLIC: &str = "http://localhost:9";
    let issuer = FakeIssuer::start("max-age=60").await;
    issuer.state.lock().unwrap().public_url = Some(PUBLIC.into());
    let token = issuer.token(json!({"iss": PUBLIC}));

    // Without a back channel the public URL (nothing listens on port 9) gives no keys.
    let mut direct = issuer.config();
    direct.issuer = PUBLIC.into();
    let unreachable = Guard::new(direct.clone()).unwrap();
    assert_eq!(
        unreachable.authenticate(&token).await,
        Err(GuardError::Unavailable)
    );

    let mut config = direct;
    config.jwks.backchannel_url = Some(issuer.url.clone());
    let guard = Guard::new(config).unwrap();
    ready(&guard).await;
    assert!(issuer.fetches() >= 1);
    let principal = guard.authenticate(&token).await.unwrap();
    assert_eq!(principal.claims["iss"], PUBLIC);
    // The iss check is unchanged: a token naming the back channel is not the issuer's.
    let wrong = issuer.token(json!({"iss": issuer.url}));
    assert_eq!(
        problem(guard.authenticate(&wrong).await),
        TokenProblem::Issuer
    );
    issuer.server.stop(false).await;
}

// ---------------------------------------------------------------- introspection mode

const ISS: &str = "https://id.example.test";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_answers_are_cached_and_coalesced() {
    let (fake, endpoint) = FakeIntrospection::start().await;
    fake.answer("opaque-1", active(ISS, now() + 300));
    fake.answer(
        "elsewhere",
        IntrospectResponse {
            aud: vec!["https://other.example.test".into()],
            ..active(ISS, now() + 300)
        },
    );
    fake.state.lock().unwrap().delay = Duration::from_millis(200);
    let guard = Guard::new(introspection_config(Mode::Introspection, ISS, &endpoint)).unwrap();
    assert!(guard.is_ready());

    let together: Vec<_> = (0..20)
        .map(|_| {
            let guard = guard.clone();
            tokio::spawn(async move { guard.authenticate("opaque-1").await })
        })
        .collect();
    for one in together {
        let p = one.await.unwrap().unwrap();
        assert_eq!(p.sub, "alice");
        assert_eq!(p.claims["token_type"], "Bearer");
    }
    assert_eq!(fake.calls(), 1, "twenty concurrent requests, one call");
    guard.authenticate("opaque-1").await.unwrap();
    assert_eq!(fake.calls(), 1, "cached");

    assert_eq!(
        problem(guard.authenticate("unknown").await),
        TokenProblem::Inactive
    );
    assert_eq!(
        problem(guard.authenticate("unknown").await),
        TokenProblem::Inactive
    );
    assert_eq!(fake.calls(), 2, "inactive answers are cached too");
    assert_eq!(
        problem(guard.authenticate("elsewhere").await),
        TokenProblem::Audience
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_answers_expire_with_the_ttl_and_never_outlive_the_token() {
    let (fake, endpoint) = FakeIntrospection::start().await;
    let mut config = introspection_config(Mode::Introspection, ISS, &endpoint);
    config.introspection.cache_ttl = Duration::from_secs(1);
    let guard = Guard::new(config).unwrap();
    fake.answer("revoked-soon", active(ISS, now() + 300));
    guard.authenticate("revoked-soon").await.unwrap();
    fake.answer("revoked-soon", IntrospectResponse::default());
    guard.authenticate("revoked-soon").await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        problem(guard.authenticate("revoked-soon").await),
        TokenProblem::Inactive,
        "revocation seen within cache_ttl"
    );

    let mut long = introspection_config(Mode::Introspection, ISS, &endpoint);
    long.introspection.cache_ttl = Duration::from_secs(600);
    let guard = Guard::new(long).unwrap();
    fake.answer("short-lived", active(ISS, now() + 1));
    guard.authenticate("short-lived").await.unwrap();
    let calls = fake.calls();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    fake.answer("short-lived", IntrospectResponse::default());
    assert_eq!(
        problem(guard.authenticate("short-lived").await),
        TokenProblem::Inactive
    );
    assert_eq!(
        fake.calls(),
        calls + 1,
        "asked again once the token expired"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_are_retried_and_an_unreachable_server_is_unavailable() {
    let (fake, endpoint) = FakeIntrospection::start().await;
    fake.answer("t", active(ISS, now() + 300));
    let guard = Guard::new(introspection_config(Mode::Introspection, ISS, &endpoint)).unwrap();
    fake.state.lock().unwrap().fail_next = 2;
    guard.authenticate("t").await.unwrap();
    assert_eq!(fake.calls(), 3, "two retries");

    fake.state.lock().unwrap().fail_next = 3;
    assert_eq!(guard.authenticate("u").await, Err(GuardError::Unavailable));
    assert_eq!(fake.calls(), 6);
    fake.state.lock().unwrap().fail_next = 0;
    assert_eq!(
        problem(guard.authenticate("u").await),
        TokenProblem::Inactive,
        "failures are not cached"
    );

    let mut wrong = introspection_config(Mode::Introspection, ISS, &endpoint);
    wrong.introspection.client_secret = Some(::config::Secret::new("wrong".into()));
    let refused = Guard::new(wrong).unwrap();
    let before = fake.calls();
    assert_eq!(
        refused.authenticate("t2").await,
        Err(GuardError::Unavailable)
    );
    assert_eq!(
        fake.calls(),
        before + 1,
        "refused credentials are not retried"
    );

    fake.state.lock().unwrap().delay = Duration::from_millis(800);
    let mut hasty = introspection_config(Mode::Introspection, ISS, &endpoint);
    hasty.introspection.deadline = Duration::from_millis(100);
    hasty.introspection.retries = 0;
    let hasty = Guard::new(hasty).unwrap();
    let started = Instant::now();
    assert_eq!(hasty.authenticate("t3").await, Err(GuardError::Unavailable));
    assert!(
        started.elapsed() < Duration::from_millis(700),
        "the deadline holds"
    );

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nowhere = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let down = Guard::new(introspection_config(Mode::Introspection, ISS, &nowhere)).unwrap();
    assert_eq!(down.authenticate("t").await, Err(GuardError::Unavailable));
}

/// An inactive answer is reused for `negative_ttl` and no longer: then the server is asked
/// again, and a token it now calls active is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inactive_answers_are_reused_for_the_negative_ttl_only() {
    const NEGATIVE_TTL: Duration = Duration::from_secs(2);
    let (fake, endpoint) = FakeIntrospection::start().await;
    let mut config = introspection_config(Mode::Introspection, ISS, &endpoint);
    config.introspection.negative_ttl = NEGATIVE_TTL;
    config.introspection.cache_ttl = Duration::from_secs(600);
    let guard = Guard::new(config).unwrap();

    let first_asked = Instant::now();
    assert_eq!(
        problem(guard.authenticate("late").await),
        TokenProblem::Inactive
    );
    fake.answer("late", active(ISS, now() + 3600));
    assert_eq!(
        problem(guard.authenticate("late").await),
        TokenProblem::Inactive,
        "within negative_ttl the inactive answer is reused"
    );
    assert_eq!(fake.asked("late"), 1);

    // The server now says active, so every refusal until the entry expires is the cache's.
    let deadline = first_asked + Duration::from_secs(10);
    let principal = loop {
        match guard.authenticate("late").await {
            Ok(principal) => break principal,
            Err(GuardError::InvalidToken(TokenProblem::Inactive)) => {
                assert_eq!(fake.asked("late"), 1, "refused from the cache only");
            }
            other => panic!("expected the cached refusal or a pass, got {other:?}"),
        }
        assert!(
            Instant::now() < deadline,
            "the inactive answer outlived negative_ttl"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        first_asked.elapsed() >= NEGATIVE_TTL,
        "asked again after {:?}, before negative_ttl",
        first_asked.elapsed()
    );
    assert_eq!(principal.sub, "alice");
    assert_eq!(fake.asked("late"), 2, "asked again exactly once");
    guard.authenticate("late").await.unwrap();
    assert_eq!(fake.asked("late"), 2, "the active answer is cached in turn");
}

/// `retries` further attempts after transient failures, paused by `backoff`, then twice
/// that: the gaps between the calls the server sees grow, and nothing waits after the last.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_are_spaced_by_a_doubling_backoff() {
    const BACKOFF: Duration = Duration::from_millis(300);
    let (fake, endpoint) = FakeIntrospection::start().await;
    fake.answer("t", active(ISS, now() + 300));
    fake.state.lock().unwrap().fail_next = 100;
    let mut config = introspection_config(Mode::Introspection, ISS, &endpoint);
    config.introspection.retries = 2;
    config.introspection.backoff = BACKOFF;
    let guard = Guard::new(config.clone()).unwrap();

    assert_eq!(guard.authenticate("t").await, Err(GuardError::Unavailable));
    let returned = Instant::now();
    let at = fake.arrivals();
    assert_eq!(at.len(), 3, "1 + retries attempts");
    let (first, second) = (at[1] - at[0], at[2] - at[1]);
    assert!(first >= BACKOFF, "first pause {first:?}");
    assert!(second >= 2 * BACKOFF, "second pause {second:?}");
    assert!(
        second.as_secs_f64() >= 1.5 * first.as_secs_f64(),
        "the pause grows: {first:?} then {second:?}"
    );
    assert!(
        returned - at[2] < 2 * BACKOFF,
        "no pause after the last attempt: {:?}",
        returned - at[2]
    );

    config.introspection.retries = 0;
    let once = Guard::new(config).unwrap();
    assert_eq!(once.authenticate("t").await, Err(GuardError::Unavailable));
    assert_eq!(fake.calls(), 4, "retries 0: a single attempt");
}

/// The cache holds at most `cache_capacity` answers. When it is full, the answer closest to
/// its expiry makes room: with equal TTLs the earliest token, otherwise a short-lived
/// inactive answer before an older, longer-lived active one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_is_bounded_and_drops_the_answer_closest_to_expiry() {
    let (fake, endpoint) = FakeIntrospection::start().await;
    let mut config = introspection_config(Mode::Introspection, ISS, &endpoint);
    config.introspection.cache_capacity = 2;
    config.introspection.cache_ttl = Duration::from_secs(600);
    config.introspection.negative_ttl = Duration::from_secs(60);

    let guard = Guard::new(config.clone()).unwrap();
    let inactive = async |token: &str| {
        assert_eq!(
            problem(guard.authenticate(token).await),
            TokenProblem::Inactive,
            "{token}"
        );
    };
    let asked = || ["a", "b", "c"].map(|t| fake.asked(t));
    inactive("a").await;
    inactive("b").await;
    inactive("a").await;
    inactive("b").await;
    assert_eq!(asked(), [1, 1, 0], "two answers fit");
    inactive("c").await;
    inactive("b").await;
    inactive("c").await;
    assert_eq!(
        asked(),
        [1, 1, 1],
        "c took the place of a, the first to expire"
    );
    inactive("a").await;
    assert_eq!(asked(), [2, 1, 1], "a was dropped");
    inactive("c").await;
    inactive("b").await;
    assert_eq!(asked(), [2, 2, 1], "a's return dropped b, c is still there");

    let guard = Guard::new(config).unwrap();
    fake.answer("long", active(ISS, now() + 3600));
    guard.authenticate("long").await.unwrap();
    assert_eq!(
        problem(guard.authenticate("x").await),
        TokenProblem::Inactive
    );
    assert_eq!(
        problem(guard.authenticate("y").await),
        TokenProblem::Inactive
    );
    guard.authenticate("long").await.unwrap();
    assert_eq!(
        fake.asked("long"),
        1,
        "the oldest entry stays: it expires last"
    );
    assert_eq!(
        problem(guard.authenticate("x").await),
        TokenProblem::Inactive
    );
    assert_eq!(fake.asked("x"), 2, "x, closest to expiry, made room for y");
}

/// A full cache makes room for an eighth of its capacity at once, so a flood of distinct
/// tokens pays the eviction scan once per that many answers, not on every one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_cache_makes_room_in_batches() {
    let (fake, endpoint) = FakeIntrospection::start().await;
    let mut config = introspection_config(Mode::Introspection, ISS, &endpoint);
    config.introspection.cache_capacity = 16;
    config.introspection.negative_ttl = Duration::from_secs(60);
    let guard = Guard::new(config).unwrap();
    let tokens: Vec<String> = (0..17).map(|i| format!("t{i:02}")).collect();
    for t in &tokens {
        assert_eq!(problem(guard.authenticate(t).await), TokenProblem::Inactive);
    }
    // The 17th answer dropped the two closest to expiry, t00 and t01, not just one: t01
    // is asked again, and taking its place back drops nothing.
    guard.authenticate(&tokens[1]).await.unwrap_err();
    assert_eq!(fake.asked(&tokens[1]), 2, "t01 went with t00");
    for t in &tokens[2..] {
        guard.authenticate(t).await.unwrap_err();
        assert_eq!(fake.asked(t), 1, "{t} was dropped");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hybrid_verifies_locally_then_asks_about_revocation() {
    let issuer = FakeIssuer::start("max-age=600").await;
    let (fake, endpoint) = FakeIntrospection::start().await;
    let mut config = introspection_config(Mode::Hybrid, &issuer.url, &endpoint);
    config.introspection.cache_ttl = Duration::from_secs(1);
    let guard = Guard::new(config).unwrap();
    ready(&guard).await;

    let token = issuer.token(json!({}));
    fake.answer(&token, active(&issuer.url, now() + 300));
    let p = guard.authenticate(&token).await.unwrap();
    assert_eq!(
        p.claims["scope"], "items:read profile",
        "claims of the JWT itself"
    );
    assert_eq!(fake.calls(), 1);

    let calls = fake.calls();
    assert_eq!(
        problem(guard.authenticate(&tamper_signature(&token)).await),
        TokenProblem::Signature
    );
    assert_eq!(
        fake.calls(),
        calls,
        "a bad signature never reaches introspection"
    );

    fake.answer(&token, IntrospectResponse::default());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        problem(guard.authenticate(&token).await),
        TokenProblem::Inactive
    );

    fake.answer("opaque", active(&issuer.url, now() + 300));
    assert_eq!(guard.authenticate("opaque").await.unwrap().sub, "alice");
    issuer.server.stop(false).await;
}

// ---------------------------------------------------------------- actix edge

crate::required_scopes!(ItemsRead = ["items:read"]);
crate::required_scopes!(Admin = ["admin", "items:read"]);

#[actix_web::test]
async fn extractors_and_middleware_answer_as_rfc_6750_says() {
    use actix_web::test::{TestRequest, call_service, init_service, read_body};

    let (fake, endpoint) = FakeIntrospection::start().await;
    fake.answer("good", active(ISS, now() + 300));
    fake.answer(
        "elsewhere",
        IntrospectResponse {
            aud: vec!["x".into()],
            ..active(ISS, now() + 300)
        },
    );
    let mut config = introspection_config(Mode::Introspection, ISS, &endpoint);
    config.realm = "items".into();
    let guard = Guard::new(config).unwrap();
    let app = init_service(
        App::new()
            .app_data(guard.clone())
            .route(
                "/me",
                web::get().to(|p: Principal| async move { p.sub.clone() }),
            )
            .route(
                "/items",
                web::get().to(|p: Scoped<ItemsRead>| async move { p.client_id.clone() }),
            )
            .route(
                "/form",
                web::post().to(
                    |p: Principal, form: web::Form<HashMap<String, String>>| async move {
                        format!(
                            "{} {}",
                            p.sub,
                            form.get("note").cloned().unwrap_or_default()
                        )
                    },
                ),
            )
            .service(web::scope("/admin").wrap(guard.protect(&["admin"])).route(
                "/x",
                web::get().to(|p: Principal| async move { p.sub.clone() }),
            ))
            .service(
                web::scope("/open")
                    .wrap(guard.protect::<&str>(&[]))
                    .route(
                        "/me",
                        web::get().to(|p: Principal| async move { p.sub.clone() }),
                    )
                    .route(
                        "/admin",
                        web::get().to(|p: Scoped<Admin>| async move { p.sub.clone() }),
                    ),
            ),
    )
    .await;

    let check = |req: TestRequest, status: u16, challenge: Option<&str>| {
        let app = &app;
        let challenge = challenge.map(str::to_owned);
        async move {
            let res = call_service(app, req.to_request()).await;
            assert_eq!(res.status().as_u16(), status);
            let header = res
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap().to_owned());
            assert_eq!(header, challenge);
            if status != 200 {
                assert_eq!(res.headers().get("cache-control").unwrap(), "no-store");
            }
            String::from_utf8(read_body(res).await.to_vec()).unwrap()
        }
    };
    let bearer = |t: &str| ("Authorization", format!("Bearer {t}"));
    let get = |uri: &str| TestRequest::get().uri(uri);

    assert_eq!(
        check(get("/me").insert_header(bearer("good")), 200, None).await,
        "alice"
    );
    check(get("/me"), 401, Some(r#"Bearer realm="items""#)).await;
    check(
        get("/me").insert_header(("Authorization", "Basic YTpi")),
        401,
        Some(r#"Bearer realm="items""#),
    )
    .await;
    let body = check(
        get("/me").insert_header(bearer("nope")),
        401,
        Some(r#"Bearer realm="items", error="invalid_token", error_description="the access token is not active""#),
    )
    .await;
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"], "invalid_token");
    check(
        get("/me").insert_header(bearer("elsewhere")),
        401,
        Some(r#"Bearer realm="items", error="invalid_token", error_description="the access token is not meant for this resource""#),
    )
    .await;
    check(
        get("/me?access_token=good"),
        400,
        Some(r#"Bearer realm="items", error="invalid_request", error_description="access tokens are not accepted in the query string""#),
    )
    .await;
    assert_eq!(
        check(get("/items").insert_header(bearer("good")), 200, None).await,
        "app"
    );

    let form = |body: &'static str| {
        TestRequest::post()
            .uri("/form")
            .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
            .set_payload(body)
    };
    assert_eq!(
        check(form("access_token=good&note=hi"), 200, None).await,
        "alice hi",
        "token from the form body, which the handler still reads"
    );
    check(
        form("access_token=good").insert_header(bearer("good")),
        400,
        Some(r#"Bearer realm="items", error="invalid_request", error_description="the access token was sent in more than one place""#),
    )
    .await;

    let insufficient = r#"Bearer realm="items", error="insufficient_scope", error_description="the request requires higher privileges than provided by the access token", scope="admin""#;
    check(
        get("/admin/x").insert_header(bearer("good")),
        403,
        Some(insufficient),
    )
    .await;
    check(get("/admin/x"), 401, Some(r#"Bearer realm="items""#)).await;
    assert_eq!(
        check(get("/open/me").insert_header(bearer("good")), 200, None).await,
        "alice"
    );
    check(
        get("/open/admin").insert_header(bearer("good")),
        403,
        Some(&insufficient.replace(r#"scope="admin""#, r#"scope="admin items:read""#)),
    )
    .await;

    // Unreachable authorization server: 503, never a pass.
    fake.state.lock().unwrap().fail_next = 100;
    let res = call_service(&app, get("/me").insert_header(bearer("fresh")).to_request()).await;
    assert_eq!(res.status().as_u16(), 503);
    assert_eq!(res.headers().get("retry-after").unwrap(), "1");
    assert!(res.headers().get("www-authenticate").is_none());
}

#[actix_web::test]
async fn extractors_without_a_registered_guard_fail_closed() {
    use actix_web::test::{TestRequest, call_service, init_service};
    let app = init_service(App::new().route(
        "/me",
        web::get().to(|p: Principal| async move { p.sub.clone() }),
    ))
    .await;
    let req = TestRequest::get()
        .uri("/me")
        .insert_header(("Authorization", "Bearer x"))
        .to_request();
    assert_eq!(call_service(&app, req).await.status().as_u16(), 500);
}

#[test]
fn building_needs_a_runtime_and_a_valid_config() {
    assert_eq!(
        Guard::new(GuardConfig::default()).err(),
        Some(GuardError::NoRuntime)
    );
    let mut bad = GuardConfig::default();
    bad.audience.clear();
    assert!(matches!(Guard::new(bad), Err(GuardError::Config(e)) if e.key == "audience"));
}

// ---------------------------------------------------------------- TLS (issue 16)

/// Discovery and JWKS over HTTPS from an issuer whose certificate chains to a private CA:
/// trusted with `jwks.ca_file`, refused without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_over_https_is_trusted_through_ca_file() {
    let pki = runtime::test_pki::TestPki::new("issuer").unwrap();
    let issuer = FakeIssuer::start_with(
        "max-age=600",
        Some(pki.rustls_server_config("issuer").unwrap()),
    )
    .await;
    assert!(issuer.url.starts_with("https://"));
    let token = issuer.token(json!({}));

    let mut trusted = issuer.config();
    trusted.jwks.ca_file = Some(pki.ca_file().to_path_buf());
    let guard = Guard::new(trusted).unwrap();
    ready(&guard).await;
    assert_eq!(guard.authenticate(&token).await.unwrap().sub, "alice");

    // Without the CA the issuer's certificate is not trusted: no keys, no pass.
    let untrusted = Guard::new(issuer.config()).unwrap();
    assert!(untrusted.authenticate(&token).await.is_err());
    assert!(!untrusted.is_ready());
    assert_eq!(issuer.fetches(), 1);

    let mut missing = issuer.config();
    missing.jwks.ca_file = Some(pki.dir().join("missing.pem"));
    let error = ::config::Validate::validate(&missing)
        .unwrap_err()
        .to_string();
    assert!(error.starts_with("jwks.ca_file: cannot read"), "{error}");
    issuer.server.stop(false).await;
}

/// Introspection over https: the server's certificate is verified against `tls.ca_file`
/// (another CA: unavailable, never a pass); with a client certificate and no client_id the
/// guard sends no Basic credentials and authenticates by mutual TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_over_https_verifies_the_server_and_can_use_mutual_tls() {
    use tonic::transport::{Certificate, Identity, ServerTlsConfig};
    let pki = runtime::test_pki::TestPki::new("authz").unwrap();
    let stranger = runtime::test_pki::TestPki::new("stranger").unwrap();
    let server = pki
        .issue(
            "authz",
            &["localhost", "127.0.0.1"],
            runtime::test_pki::Validity::Current,
        )
        .unwrap();
    let identity = Identity::from_pem(
        std::fs::read(&server.cert_file).unwrap(),
        std::fs::read(&server.key_file).unwrap(),
    );

    let (fake, endpoint) = FakeIntrospection::start_with(
        Some(ServerTlsConfig::new().identity(identity.clone())),
        true,
    )
    .await;
    fake.answer("opaque-tls", active(ISS, now() + 300));
    let mut config = introspection_config(Mode::Introspection, ISS, &endpoint);
    config.introspection.tls = pki.client_tls(None);
    let guard = Guard::new(config.clone()).unwrap();
    assert_eq!(guard.authenticate("opaque-tls").await.unwrap().sub, "alice");

    config.introspection.tls.ca_file = Some(stranger.ca_file().to_path_buf());
    let wrong_ca = Guard::new(config.clone()).unwrap();
    assert!(matches!(
        wrong_ca.authenticate("opaque-tls").await,
        Err(GuardError::Unavailable)
    ));
    config.introspection.tls.ca_file = None;
    let error = ::config::Validate::validate(&config)
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("introspection.tls.ca_file: required"),
        "{error}"
    );

    // Mutual TLS: the server requires a client certificate from the CA, no Basic header.
    let (mtls, endpoint) = FakeIntrospection::start_with(
        Some(
            ServerTlsConfig::new()
                .identity(identity)
                .client_ca_root(Certificate::from_pem(std::fs::read(pki.ca_file()).unwrap())),
        ),
        false,
    )
    .await;
    mtls.answer("opaque-mtls", active(ISS, now() + 300));
    let rs = pki
        .issue("rs", &["rs.internal"], runtime::test_pki::Validity::Current)
        .unwrap();
    let mut config = introspection_config(Mode::Introspection, ISS, &endpoint);
    config.introspection.client_id = None;
    config.introspection.client_secret = None;
    config.introspection.tls = pki.client_tls(Some(&rs));
    ::config::Validate::validate(&config).unwrap();
    let guard = Guard::new(config).unwrap();
    assert_eq!(
        guard.authenticate("opaque-mtls").await.unwrap().sub,
        "alice"
    );
}
