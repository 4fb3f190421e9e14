//! Logout propagation: OpenID Connect Back-Channel Logout 1.0 (logout tokens POSTed from a
//! stored queue, retried with backoff, bounded, surviving a restart; refresh tokens of the
//! session revoked except `offline_access`), Front-Channel Logout 1.0 (iframes on the
//! logout page), `LoginFlow.SessionEnded`, the client metadata and its CLI validation.

use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use authz::clients::Clients;
use issuer::ManualClock;
use proto::authz::v1::SessionEndedRequest;
use serde_json::Value;
use storage::Database;
use storage::testing::TestDatabase;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::cli::authz_in;
use crate::flow_env::*;

const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// A back-channel logout receiver: a minimal HTTP/1.1 server that records the
/// `logout_token` of every POST and answers `status` after `delay_ms`.
#[derive(Clone)]
struct Receiver {
    url: String,
    tokens: Arc<Mutex<Vec<String>>>,
    status: Arc<AtomicU16>,
    delay_ms: Arc<AtomicU64>,
}

impl Receiver {
    async fn start(status: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let receiver = Self {
            url: format!("http://{addr}/backchannel"),
            tokens: Arc::default(),
            status: Arc::new(AtomicU16::new(status)),
            delay_ms: Arc::default(),
        };
        let r = receiver.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let r = r.clone();
                tokio::spawn(async move { r.serve(stream).await });
            }
        });
        receiver
    }

    async fn serve(&self, stream: tokio::net::TcpStream) {
        let mut reader = BufReader::new(stream);
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).await.is_err() {
            return;
        }
        let token = url::form_urlencoded::parse(&body)
            .find(|(k, _)| k == "logout_token")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        self.tokens.lock().unwrap().push(token);
        tokio::time::sleep(Duration::from_millis(self.delay_ms.load(Ordering::SeqCst))).await;
        let status = self.status.load(Ordering::SeqCst);
        let response =
            format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        let _ = reader.get_mut().write_all(response.as_bytes()).await;
    }

    /// The logout tokens received so far (every attempt).
    fn received(&self) -> Vec<String> {
        self.tokens.lock().unwrap().clone()
    }

    /// Waits (up to 10 s) until `n` POSTs arrived; their tokens.
    async fn wait_for(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{n} POSTs expected, {} arrived",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Asserts that no more than `n` POSTs arrive within half a second.
    async fn assert_stays_at(&self, n: usize) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(self.received().len(), n, "no further attempt expected yet");
    }
}

/// The client registry of `db`, to change the test clients' logout metadata.
async fn registry(db: &TestDatabase, clock: &ManualClock) -> Clients {
    let pool = Database::connect(db.config(), &authz::MIGRATIONS)
        .await
        .unwrap();
    Clients::new(pool, Arc::new(clock.clone()), Duration::ZERO)
}

/// Registers `uri` as `client_id`'s back-channel logout URI.
async fn backchannel(env: &Env, db: &TestDatabase, client_id: &str, uri: &str) {
    let clients = registry(db, &env.clock).await;
    let (mut c, _) = clients.get(client_id).await.unwrap().unwrap();
    c.backchannel_logout_uri = Some(uri.to_owned());
    c.backchannel_logout_session_required = true;
    clients.update(c).await.unwrap();
}

/// Signs alice in to `web` twice in one browser (authz session over idp session `idp-a`):
/// once without and once with `offline_access`; the two token responses.
async fn two_grants(env: &Env, browser: &mut Browser) -> (Value, Value) {
    let (code, verifier) = env
        .sign_in(browser, "web", "openid profile", "alice", "idp-a")
        .await;
    let (_, _, online) = env.redeem("web", &code, &verifier).await;
    let (code, verifier) = env
        .sign_in(browser, "web", "openid offline_access", "alice", "idp-a")
        .await;
    let (_, _, offline) = env.redeem("web", &code, &verifier).await;
    (online, offline)
}

/// RP-initiated logout with a hint naming this browser's session (no question asked).
async fn end_session(browser: &mut Browser, id_token: &str) -> Seen {
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("id_token_hint", id_token),
            ("post_logout_redirect_uri", WEB_BYE),
            ("state", "s1"),
        ])
        .finish();
    browser.get(&format!("/end_session?{q}")).await
}

fn claim<'a>(claims: &'a serde_json::Map<String, Value>, name: &str) -> &'a Value {
    claims.get(name).unwrap_or(&Value::Null)
}

async fn rp_initiated_logout_posts_a_verifiable_logout_token_without_waiting(db: TestDatabase) {
    let env = start(&db).await;
    let receiver = Receiver::start(200).await;
    // A slow receiver: the logout must not wait for it.
    receiver.delay_ms.store(3_000, Ordering::SeqCst);
    backchannel(&env, &db, "web", &receiver.url).await;
    let mut browser = Browser::new(&env);
    let (online, offline) = two_grants(&env, &mut browser).await;
    let id_token = online["id_token"].as_str().unwrap();

    let started = Instant::now();
    let seen = end_session(&mut browser, id_token).await;
    let took = started.elapsed();
    assert_eq!(seen.redirected_to(WEB_BYE)["state"], "s1");
    assert!(
        took < Duration::from_millis(2_500),
        "the logout waited for the receiver: {took:?}"
    );

    // One token for the one client of the session, verifiable against the JWKS.
    let tokens = receiver.wait_for(1).await;
    receiver.assert_stays_at(1).await;
    let keys = env.verifiers().await;
    let claims = verify(&keys, &tokens[0], "logout+jwt");
    let id_claims = verify(&keys, id_token, "JWT");
    assert_eq!(claim(&claims, "iss"), ISSUER);
    assert_eq!(claim(&claims, "aud"), "web");
    assert_eq!(claim(&claims, "sub"), "alice");
    assert_eq!(claim(&claims, "sid"), claim(&id_claims, "sid"));
    assert!(claim(&id_claims, "sid").is_string(), "ID tokens carry sid");
    assert_eq!(claim(&claims, "events"), &serde_json::json!({ EVENT: {} }));
    assert!(
        claim(&claims, "jti")
            .as_str()
            .is_some_and(|j| j.len() >= 16)
    );
    let iat = claim(&claims, "iat").as_i64().unwrap();
    assert_eq!(iat, env.now());
    assert!(claim(&claims, "exp").as_i64().unwrap() > iat);
    assert!(!claims.contains_key("nonce"), "§2.4: no nonce");
    // The header says what it is (an ID token verifier expecting JWT refuses it).
    assert!(
        issuer::jws::verify(
            &tokens[0],
            &keys,
            &issuer::jws::Expect {
                algorithms: &issuer::Algorithm::ALL,
                typ: Some("JWT"),
            },
        )
        .is_err()
    );

    // §2.7: the session's refresh tokens are revoked, except offline_access.
    let (status, _, body) = env
        .refresh("web", online["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    let (status, _, body) = env
        .refresh("web", offline["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(status, 200, "offline_access survives: {body}");
}

/// Config for the retry tests: 1 s, 2 s, 4 s between attempts, 3 attempts.
fn quick_retries(c: &mut authz::AuthzConfig) {
    c.logout.initial_backoff = Duration::from_secs(1);
    c.logout.max_backoff = Duration::from_secs(4);
    c.logout.max_attempts = 3;
    c.logout.poll_interval = Duration::from_millis(100);
}

async fn a_receiver_that_is_down_gets_retries_with_backoff_then_none(db: TestDatabase) {
    let env = start_with(&db, quick_retries).await;
    let receiver = Receiver::start(503).await;
    backchannel(&env, &db, "web", &receiver.url).await;
    let mut browser = Browser::new(&env);
    let (online, _) = two_grants(&env, &mut browser).await;
    let seen = end_session(&mut browser, online["id_token"].as_str().unwrap()).await;
    assert_eq!(seen.redirected_to(WEB_BYE)["state"], "s1");

    receiver.wait_for(1).await;
    // Not before the backoff (1 s of the server's clock) has passed.
    receiver.assert_stays_at(1).await;
    env.clock.advance(1);
    receiver.wait_for(2).await;
    // The second wait is twice as long.
    env.clock.advance(1);
    receiver.assert_stays_at(2).await;
    env.clock.advance(1);
    let tokens = receiver.wait_for(3).await;
    // max_attempts reached: dropped.
    env.clock.advance(3600);
    receiver.assert_stays_at(3).await;
    // Each attempt is a freshly signed token for the same logout (same jti).
    let keys = env.verifiers().await;
    let jtis: Vec<Value> = tokens
        .iter()
        .map(|t| claim(&verify(&keys, t, "logout+jwt"), "jti").clone())
        .collect();
    assert!(jtis.iter().all(|j| *j == jtis[0]), "{jtis:?}");
    assert_ne!(tokens[0], tokens[2], "re-signed with a new iat");
}

async fn a_refusing_receiver_is_not_retried(db: TestDatabase) {
    let env = start_with(&db, quick_retries).await;
    let receiver = Receiver::start(400).await;
    backchannel(&env, &db, "web", &receiver.url).await;
    let mut browser = Browser::new(&env);
    let (online, _) = two_grants(&env, &mut browser).await;
    end_session(&mut browser, online["id_token"].as_str().unwrap()).await;
    receiver.wait_for(1).await;
    env.clock.advance(10);
    receiver.assert_stays_at(1).await;
}

async fn queued_deliveries_survive_a_restart(db: TestDatabase) {
    let mut env = start_with(&db, quick_retries).await;
    let receiver = Receiver::start(503).await;
    backchannel(&env, &db, "web", &receiver.url).await;
    let mut browser = Browser::new(&env);
    let (online, _) = two_grants(&env, &mut browser).await;
    end_session(&mut browser, online["id_token"].as_str().unwrap()).await;
    let first = receiver.wait_for(1).await;
    // The failure is recorded before the process stops.
    receiver.assert_stays_at(1).await;

    env.restart().await;
    receiver.status.store(200, Ordering::SeqCst);
    env.clock.advance(1);
    let tokens = receiver.wait_for(2).await;
    // Delivered now: nothing more, however long one waits.
    env.clock.advance(3600);
    receiver.assert_stays_at(2).await;
    let keys = env.verifiers().await;
    assert_eq!(
        claim(&verify(&keys, &tokens[1], "logout+jwt"), "jti"),
        claim(&verify(&keys, &first[0], "logout+jwt"), "jti"),
        "the new process delivered the stored logout"
    );
}

async fn idp_session_end_reaches_authz_and_the_clients(db: TestDatabase) {
    let env = start_with(&db, |c| c.logout.max_queued = 1).await;
    let receiver = Receiver::start(200).await;
    backchannel(&env, &db, "web", &receiver.url).await;
    backchannel(&env, &db, "opaque", &receiver.url).await;
    let mut browser = Browser::new(&env);
    let (online, offline) = two_grants(&env, &mut browser).await;
    let (code, verifier) = env
        .sign_in(&mut browser, "opaque", "openid", "alice", "idp-a")
        .await;
    let (status, _, _) = env.redeem("opaque", &code, &verifier).await;
    assert_eq!(status, 200);

    // Only idp may say so.
    let mut flow = env.login_flow().await;
    let request = || SessionEndedRequest {
        session_id: "idp-a".into(),
    };
    let denied = flow
        .session_ended(as_client(request(), Some(("intruder", SECRET))))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    let anonymous = flow
        .session_ended(as_client(request(), None))
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), tonic::Code::Unauthenticated);
    let empty = flow
        .session_ended(env.as_idp(SessionEndedRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(empty.code(), tonic::Code::InvalidArgument);

    let ended = flow
        .session_ended(env.as_idp(request()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ended.sessions_ended, 1);
    assert_eq!(ended.grants_revoked, 2, "online web + opaque, not offline");
    assert_eq!(
        ended.logout_tokens_queued, 1,
        "two clients, but logout.max_queued = 1 bounds the queue"
    );
    receiver.wait_for(1).await;
    receiver.assert_stays_at(1).await;
    // The authz session is gone (SSO over) and the grants are revoked but offline ones.
    let (_, c) = pkce();
    let seen = browser
        .authorize(&code_request(
            "web",
            WEB_CB,
            "openid",
            &c,
            &[("prompt", "none")],
        ))
        .await;
    assert_eq!(seen.redirected_to(WEB_CB)["error"], "login_required");
    let (status, _, _) = env
        .refresh("web", online["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(status, 400);
    let (status, _, _) = env
        .refresh("web", offline["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(status, 200);

    // Again: nothing left to end.
    let again = flow
        .session_ended(env.as_idp(request()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            again.sessions_ended,
            again.grants_revoked,
            again.logout_tokens_queued
        ),
        (0, 0, 0)
    );
}

async fn the_logout_page_loads_front_channel_iframes(db: TestDatabase) {
    let env = start(&db).await;
    let clients = registry(&db, &env.clock).await;
    let (mut c, _) = clients.get("web").await.unwrap().unwrap();
    c.frontchannel_logout_uri = Some("https://rp.example.test/fc?x=1".into());
    clients.update(c).await.unwrap();
    let mut browser = Browser::new(&env);
    let (online, _) = two_grants(&env, &mut browser).await;
    let id_token = online["id_token"].as_str().unwrap();
    let sid = claim(&verify(&env.verifiers().await, id_token, "JWT"), "sid")
        .as_str()
        .unwrap()
        .to_owned();
    let seen = end_session(&mut browser, id_token).await;
    assert_eq!(seen.status, 200, "{}", seen.body);
    assert!(!browser.jar.contains_key("authz_session"), "signed out");
    let iss: String = url::form_urlencoded::byte_serialize(ISSUER.as_bytes()).collect();
    let frame =
        format!(r#"<iframe src="https://rp.example.test/fc?x=1&#38;iss={iss}&#38;sid={sid}""#);
    assert!(seen.body.contains(&frame), "{frame} in {}", seen.body);
    assert!(
        seen.body.contains(&format!(r#"href="{WEB_BYE}?state=s1""#)),
        "{}",
        seen.body
    );
    let csp = seen.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-src https://rp.example.test;"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
}

async fn discovery_advertises_logout_propagation(db: TestDatabase) {
    let env = start(&db).await;
    let doc: Value = env
        .http
        .get(format!(
            "http://{}/.well-known/openid-configuration",
            env.addrs.http
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for flag in [
        "backchannel_logout_supported",
        "backchannel_logout_session_supported",
        "frontchannel_logout_supported",
        "frontchannel_logout_session_supported",
    ] {
        assert_eq!(doc[flag], true, "{flag}");
    }
}

async fn cli_validates_logout_metadata(db: TestDatabase) {
    let dir = tempfile::tempdir().unwrap();
    let url = db.config().url.expose().clone();
    let env = [("AUTHZ__DATABASE__URL", url.as_str())];
    let run = |args: &[&str]| authz_in(dir.path(), args, &env);
    let out = run(&["migrate"]);
    assert_eq!(out.status.code(), Some(0));
    let create = |flag: &str, uri: &str| {
        run(&[
            "clients", "create", "--id", "rp", "--name", "RP", flag, uri, "--json",
        ])
    };
    for (flag, uri, problem) in [
        (
            "--backchannel-logout-uri",
            "http://rp.example.test/bc",
            "must use https",
        ),
        (
            "--backchannel-logout-uri",
            "https://rp.example.test/bc#f",
            "must not contain a fragment",
        ),
        ("--backchannel-logout-uri", "/bc", "must be an absolute URI"),
        (
            "--frontchannel-logout-uri",
            "http://rp.example.test/fc",
            "must use https",
        ),
    ] {
        let out = create(flag, uri);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "{uri}");
        let last = stderr.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("error: invalid_client_metadata: "),
            "{stderr}"
        );
        assert!(last.contains(problem), "{problem}: {stderr}");
    }
    let out = run(&["clients", "show", "rp"]);
    assert_ne!(out.status.code(), Some(0), "nothing was stored");

    // https anywhere, http on loopback only.
    let out = create("--backchannel-logout-uri", "http://127.0.0.1:3000/bc");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&[
        "clients",
        "update",
        "rp",
        "--frontchannel-logout-uri",
        "https://rp.example.test/fc",
        "--backchannel-logout-session-required",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let out = run(&["clients", "show", "rp", "--json"]);
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["backchannel_logout_uri"], "http://127.0.0.1:3000/bc");
    assert_eq!(shown["backchannel_logout_session_required"], true);
    assert_eq!(
        shown["frontchannel_logout_uri"],
        "https://rp.example.test/fc"
    );
    // An update to a bad value is refused and changes nothing; "" removes.
    let out = run(&[
        "clients",
        "update",
        "rp",
        "--backchannel-logout-uri",
        "http://[::1]:3000/bc#x",
    ]);
    assert_ne!(out.status.code(), Some(0));
    let out = run(&["clients", "update", "rp", "--frontchannel-logout-uri", ""]);
    assert_eq!(out.status.code(), Some(0));
    let out = run(&["clients", "show", "rp", "--json"]);
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["backchannel_logout_uri"], "http://127.0.0.1:3000/bc");
    assert_eq!(shown["frontchannel_logout_uri"], Value::Null);
}

storage::backend_tests!(
    authz::MIGRATIONS;
    rp_initiated_logout_posts_a_verifiable_logout_token_without_waiting,
    a_receiver_that_is_down_gets_retries_with_backoff_then_none,
    a_refusing_receiver_is_not_retried,
    queued_deliveries_survive_a_restart,
    idp_session_end_reaches_authz_and_the_clients,
    the_logout_page_loads_front_channel_iframes,
    discovery_advertises_logout_propagation,
    cli_validates_logout_metadata,
);
