//! The smaller holes of issue 14, each reproduced against the real binaries (one minimal
//! stack per test: nextest runs every test in its own process) and asserted closed: Basic
//! credentials decoded exactly (RFC 6749 §2.3.1), undecodable protobuf, pending
//! authorization requests bounded, rs's per-subject quota, logout with a leaked
//! `id_token_hint`, `/userinfo` with a client's own token, the 413 error shape, the
//! refresh reuse interval, and malformed HTTP requests kept out of the error log.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::{StatusCode, Url};
use runtime::testing::RawCodec;
use serde_json::Value;
use tempfile::TempDir;

use super::wiring::{self, Registered, Request};
use crate::code_flow::pairs;
use crate::harness::{Service, free_port};

/// One test's processes and what was registered for them.
struct Stack {
    authz: Service,
    idp: Option<Service>,
    reg: Registered,
    /// authz's issuer: its own public address.
    issuer: String,
    /// authz's environment (database, KEK), for its CLI.
    env: Vec<(String, String)>,
    http: reqwest::Client,
    dir: TempDir,
}

impl Stack {
    /// authz alone, with `extra` settings; its issuer is its own address.
    async fn authz(extra: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = format!("sqlite://{}/authz.db", dir.path().display());
        let reg = wiring::register(dir.path(), &db, None);
        let port = free_port();
        let issuer = format!("http://localhost:{port}");
        let mut env = wiring::authz_env(
            &reg,
            &db,
            &issuer,
            "http://localhost:9/idp",
            "http://127.0.0.1:9",
        );
        env.extend(pairs(&[("AUTHZ__HTTP__PORT", &port.to_string())]));
        env.extend(pairs(extra));
        let authz = Service::start("authz", dir.path(), &env).await;
        Self {
            authz,
            idp: None,
            reg,
            issuer,
            env,
            http: reqwest::Client::new(),
            dir,
        }
    }

    /// authz and idp wired together (alice can sign in), with `extra` authz settings.
    async fn signin(extra: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let authz_db = format!("sqlite://{}/authz.db", dir.path().display());
        let idp_db = format!("sqlite://{}/idp.db", dir.path().display());
        let reg = wiring::register(dir.path(), &authz_db, Some(&idp_db));
        let (authz_http, idp_http, idp_grpc) = (free_port(), free_port(), free_port());
        let issuer = format!("http://localhost:{authz_http}");
        let idp_url = format!("http://localhost:{idp_http}");
        let mut env = wiring::authz_env(
            &reg,
            &authz_db,
            &issuer,
            &idp_url,
            &format!("http://127.0.0.1:{idp_grpc}"),
        );
        env.extend(pairs(&[("AUTHZ__HTTP__PORT", &authz_http.to_string())]));
        env.extend(pairs(extra));
        let authz = Service::start("authz", dir.path(), &env).await;
        let mut idp_env = wiring::idp_env(
            &reg,
            &idp_db,
            &idp_url,
            &format!("http://{}", authz.addr("grpc")),
        );
        idp_env.extend(pairs(&[
            ("IDP__HTTP__PORT", &idp_http.to_string()),
            ("IDP__GRPC__PORT", &idp_grpc.to_string()),
        ]));
        let idp = Service::start("idp", dir.path(), &idp_env).await;
        Self {
            authz,
            idp: Some(idp),
            reg,
            issuer,
            env,
            http: reqwest::Client::new(),
            dir,
        }
    }

    fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// Signs alice in with `browser` and redeems the code: the token response.
    async fn sign_in(&self, browser: &mut demo::browser::Browser) -> Value {
        let req = Request::new(&self.endpoint("/authorize"), &[]);
        let to = wiring::sign_in(browser, &req, Url::clone).await;
        let (status, body) = self.redeem(&req, &to).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn redeem(&self, req: &Request, to: &Url) -> (StatusCode, Value) {
        self.token(&[
            ("grant_type", "authorization_code"),
            ("code", &req.code(to)),
            ("redirect_uri", wiring::REDIRECT_URI),
            ("code_verifier", &req.verifier),
        ])
        .await
    }

    async fn token(&self, form: &[(&str, &str)]) -> (StatusCode, Value) {
        wiring::rp_post(
            &self.http,
            &self.endpoint("/token"),
            &self.reg.rp_secret,
            form,
        )
        .await
    }

    async fn refresh(&self, refresh_token: &str) -> (StatusCode, Value) {
        self.token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .await
    }

    async fn active(&self, token: &str) -> bool {
        wiring::active(&self.http, &self.issuer, &self.reg, token).await
    }
}

/// `Basic base64(id:secret)` exactly as given, without the form-urlencoding of RFC 6749
/// §2.3.1 (so `&` stays a literal `&`).
fn raw_basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

async fn grpc_channel(addr: std::net::SocketAddr) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

fn with_auth<T>(message: T, authorization: &str) -> tonic::Request<T> {
    let mut req = tonic::Request::new(message);
    req.metadata_mut()
        .insert("authorization", authorization.parse().unwrap());
    req
}

/// `demo-client:demo-secret&junk=1`: RFC 6749 §2.3.1 form-urlencodes the id and secret
/// before Basic, so a raw `&` is part of the value, not the start of a parameter to drop.
/// Refused at `/token` (401 invalid_client), at authz's gRPC Introspection and at idp's
/// Sessions API (UNAUTHENTICATED), while the exact credentials work at all three.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_credentials_with_a_trailing_parameter_are_refused() {
    let stack = Stack::signin(&[]).await;
    let rp = &stack.reg.rp_secret;
    let cc = [("grant_type", "client_credentials")];
    for (id, secret) in [
        ("rp".to_owned(), format!("{rp}&junk=1")),
        ("rp&junk=1".to_owned(), rp.clone()),
    ] {
        let res = stack
            .http
            .post(stack.endpoint("/token"))
            .header("authorization", raw_basic(&id, &secret))
            .form(&cc)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "{id}");
        assert!(res.headers().contains_key("www-authenticate"));
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client", "{id}: {body}");
    }
    let (status, body) = stack.token(&cc).await;
    assert_eq!(status, 200, "the exact credentials: {body}");

    use proto::authz::v1::IntrospectRequest;
    use proto::authz::v1::introspection_client::IntrospectionClient;
    let mut introspection = IntrospectionClient::new(grpc_channel(stack.authz.addr("grpc")).await);
    let secret = &stack.reg.introspector_secret;
    let request = || IntrospectRequest {
        token: "not-a-token".to_owned(),
        token_type_hint: String::new(),
    };
    let refused = introspection
        .introspect(with_auth(
            request(),
            &raw_basic("introspector", &format!("{secret}&junk=1")),
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    let answer = introspection
        .introspect(with_auth(request(), &raw_basic("introspector", secret)))
        .await
        .unwrap();
    assert!(!answer.into_inner().active);

    use proto::idp::v1::CheckSessionRequest;
    use proto::idp::v1::sessions_client::SessionsClient;
    let idp = stack.idp.as_ref().unwrap();
    let mut sessions = SessionsClient::new(grpc_channel(idp.addr("grpc")).await);
    let request = || CheckSessionRequest {
        session_id: "no-such-session".to_owned(),
    };
    let secret = &stack.reg.authz_secret;
    let refused = sessions
        .check_session(with_auth(
            request(),
            &raw_basic(wiring::AUTHZ_CLIENT, &format!("{secret}&junk=1")),
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    let answer = sessions
        .check_session(with_auth(
            request(),
            &raw_basic(wiring::AUTHZ_CLIENT, secret),
        ))
        .await;
    assert!(
        !matches!(&answer, Err(s) if s.code() == tonic::Code::Unauthenticated),
        "{answer:?}"
    );
}

/// A message that is not protobuf (a truncated varint key) at Introspect answers
/// INVALID_ARGUMENT, with or without credentials (decoding comes before authentication),
/// never INTERNAL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_protobuf_is_invalid_argument() {
    let stack = Stack::authz(&[]).await;
    let channel = grpc_channel(stack.authz.addr("grpc")).await;
    let good = raw_basic("introspector", &stack.reg.introspector_secret);
    for auth in [None, Some(good.as_str())] {
        let mut grpc = tonic::client::Grpc::new(channel.clone());
        grpc.ready().await.unwrap();
        let mut req = tonic::Request::new(vec![0xff_u8, 0xff, 0xff]);
        if let Some(auth) = auth {
            req = with_auth(vec![0xff_u8, 0xff, 0xff], auth);
        }
        let status = grpc
            .unary(
                req,
                tonic::codegen::http::uri::PathAndQuery::from_static(
                    "/authz.v1.Introspection/Introspect",
                ),
                RawCodec,
            )
            .await
            .unwrap_err();
        assert_eq!(
            status.code(),
            tonic::Code::InvalidArgument,
            "{auth:?}: {status:?}"
        );
    }
}

/// How many pending authorization requests authz's SQLite database holds.
async fn pending_rows(db_url: &str) -> i64 {
    use storage::diesel::sql_types::BigInt;
    use storage::diesel_async::RunQueryDsl;
    let pool = storage::Database::connect(
        &storage::DatabaseConfig::with_url(db_url.to_owned()),
        &authz::MIGRATIONS,
    )
    .await
    .unwrap();
    let mut conn = pool.get().await.unwrap();
    storage::with_conn!(&mut conn, |c| storage::diesel::select(
        storage::diesel::dsl::sql::<BigInt>("(SELECT COUNT(*) FROM authorization_requests)")
    )
    .get_result::<i64>(c)
    .await)
    .unwrap()
}

/// Unauthenticated `/authorize` requests: per address, the first
/// `pending_requests_per_address` of a minute are stored and sent to idp's login, the next
/// are answered `temporarily_unavailable` at the redirect URI (RFC 6749 §4.1.2.1); once
/// `max_pending_requests` are pending, every address gets that answer, and the table holds
/// no row beyond the cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_authorization_requests_are_bounded() {
    let stack = Stack::authz(&[
        ("AUTHZ__AUTHORIZE__PENDING_REQUESTS_PER_ADDRESS", "3"),
        ("AUTHZ__AUTHORIZE__MAX_PENDING_REQUESTS", "5"),
    ])
    .await;
    let ask = |from: [u8; 4]| {
        let url = Request::new(&stack.endpoint("/authorize"), &[]).url;
        async move {
            let res = reqwest::Client::builder()
                .local_address(IpAddr::from(from))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap()
                .get(url)
                .send()
                .await
                .unwrap();
            assert!(res.status().is_redirection(), "{res:?}");
            let to = res.headers()["location"].to_str().unwrap().to_owned();
            if to.starts_with(wiring::REDIRECT_URI) {
                assert!(to.contains("error=temporarily_unavailable"), "{to}");
                assert!(to.contains("state="), "{to}");
                false
            } else {
                assert!(to.starts_with("http://localhost:9/idp/login?"), "{to}");
                true
            }
        }
    };
    let mut admitted = Vec::new();
    for from in [[127, 0, 0, 1]; 4] {
        admitted.push(ask(from).await);
    }
    assert_eq!(admitted, [true, true, true, false], "per-address limit");
    admitted.clear();
    for from in [
        [127, 0, 0, 2],
        [127, 0, 0, 2],
        [127, 0, 0, 2],
        [127, 0, 0, 3],
    ] {
        admitted.push(ask(from).await);
    }
    assert_eq!(admitted, [true, true, false, false], "the cap of 5");
    let db = format!("sqlite://{}/authz.db", stack.dir.path().display());
    assert_eq!(pending_rows(&db).await, 5, "no row beyond the cap");
}

/// rs: one subject stops at `items.max_per_subject` with 403 `quota_exceeded`, and another
/// subject still creates items.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_subject_cannot_fill_rs() {
    let stack = Stack::authz(&[]).await;
    let mut writers = Vec::new();
    for id in ["writer-a", "writer-b"] {
        let secret = wiring::client(
            &stack.env,
            &[
                "--id",
                id,
                "--name",
                id,
                "--grant-type",
                "client_credentials",
                "--scope",
                "items:write",
                "--audience",
                wiring::RS_AUD,
            ],
        );
        let res: Value = stack
            .http
            .post(stack.endpoint("/token"))
            .basic_auth(id, Some(&secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        writers.push(res["access_token"].as_str().unwrap().to_owned());
    }
    let rs = Service::start(
        "rs",
        stack.dir.path(),
        &pairs(&[
            ("RS__GUARD__MODE", "jwt"),
            ("RS__GUARD__ISSUER", &stack.issuer),
            ("RS__GUARD__AUDIENCE", wiring::RS_AUD),
            ("RS__ITEMS__MAX_PER_SUBJECT", "2"),
        ]),
    )
    .await;
    let items = format!("{}/api/v1/items", rs.url("http"));
    let create = |token: &str, n: u32| {
        stack
            .http
            .post(&items)
            .bearer_auth(token)
            .json(&serde_json::json!({ "name": format!("item {n}") }))
            .send()
    };
    for n in 0..2 {
        assert_eq!(create(&writers[0], n).await.unwrap().status(), 201);
    }
    let refused = create(&writers[0], 2).await.unwrap();
    assert_eq!(refused.status(), 403);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "quota_exceeded", "{body}");
    assert_eq!(create(&writers[1], 3).await.unwrap().status(), 201);
}

fn end_session(stack: &Stack, hint: &str) -> Url {
    Url::parse_with_params(
        &stack.endpoint("/end_session"),
        [
            ("id_token_hint", hint),
            ("post_logout_redirect_uri", wiring::LOGOUT_URI),
            ("state", "bye"),
        ],
    )
    .unwrap()
}

/// A code for `prompt=none`, or the error authz redirected with.
async fn silent(stack: &Stack, browser: &mut demo::browser::Browser) -> Result<(), String> {
    let req = Request::new(&stack.endpoint("/authorize"), &[("prompt", "none")]);
    let res = browser.get(&req.url).await.unwrap();
    let to = res.location.unwrap();
    assert!(to.as_str().starts_with(wiring::REDIRECT_URI), "{to}");
    match to.query_pairs().find(|(k, _)| k == "error") {
        Some((_, e)) => Err(e.into_owned()),
        None => {
            req.code(&to);
            Ok(())
        }
    }
}

/// RP-Initiated Logout 1.0 §2: a valid `id_token_hint` without the victim's session
/// cookie asks for confirmation and ends nothing; the victim's own browser still signs
/// out without a question.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaked_id_token_hint_does_not_end_the_session() {
    let stack = Stack::signin(&[]).await;
    let mut victim = wiring::browser();
    let tokens = stack.sign_in(&mut victim).await;
    let hint = tokens["id_token"].as_str().unwrap();

    let mut stranger = wiring::browser();
    let asked = stranger.get(&end_session(&stack, hint)).await.unwrap();
    assert_eq!(asked.status, StatusCode::OK, "{asked:?}");
    assert!(asked.body.contains("Sign out?"), "{}", asked.body);
    assert!(asked.body.contains("<form"), "{}", asked.body);
    silent(&stack, &mut victim)
        .await
        .expect("the victim is still signed in");

    let out = victim.get(&end_session(&stack, hint)).await.unwrap();
    assert_eq!(out.status, StatusCode::SEE_OTHER, "{out:?}");
    assert_eq!(
        out.location.unwrap().as_str(),
        format!("{}?state=bye", wiring::LOGOUT_URI)
    );
    assert_eq!(
        silent(&stack, &mut victim).await,
        Err("login_required".to_owned())
    );
}

/// `/userinfo` (OpenID Connect Core §5.3) refuses an access token that was not issued
/// with `openid`: a client_credentials token (whose audience is an API, not userinfo)
/// gets 403 insufficient_scope and no claims, and client_credentials cannot ask for
/// `openid`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn userinfo_refuses_a_clients_own_token() {
    let stack = Stack::authz(&[]).await;
    let (status, body) = stack.token(&[("grant_type", "client_credentials")]).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        !body["scope"]
            .as_str()
            .unwrap()
            .split(' ')
            .any(|s| s == "openid")
    );
    let res = stack
        .http
        .get(stack.endpoint("/userinfo"))
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let challenge = res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.contains(r#"error="insufficient_scope""#),
        "{challenge}"
    );
    let info: Value = res.json().await.unwrap();
    assert_eq!(info["error"], "insufficient_scope");
    assert!(info.get("sub").is_none(), "{info}");
    let (status, body) = stack
        .token(&[
            ("grant_type", "client_credentials"),
            ("scope", "openid items:write"),
        ])
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_scope");
}

/// A 2 MB form at `/token` is refused with 413 in the RFC 6749 §5.2 JSON error shape
/// (not cacheable), and the endpoint serves the next request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_token_request_gets_the_oauth_error_shape() {
    let stack = Stack::authz(&[]).await;
    let big = format!(
        "grant_type=client_credentials&pad={}",
        "a".repeat(2 * 1024 * 1024)
    );
    let res = stack
        .http
        .post(stack.endpoint("/token"))
        .basic_auth("rp", Some(&stack.reg.rp_secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(res.headers()["content-type"], "application/json");
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request", "{body}");
    assert!(body["error_description"].is_string(), "{body}");
    let (status, body) = stack.token(&[("grant_type", "client_credentials")]).await;
    assert_eq!(status, 200, "{body}");
}

/// `tokens.refresh_reuse_interval` (RFC 9700 §4.14.2): a refresh retried within the
/// interval gets the same successor instead of revoking the grant; once the successor is
/// used, or after the interval, presenting the old token again revokes the family.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_refresh_gets_the_same_successor_once() {
    const INTERVAL: Duration = Duration::from_secs(3);
    let stack = Stack::signin(&[("AUTHZ__TOKENS__REFRESH_REUSE_INTERVAL", "3s")]).await;
    let mut browser = wiring::browser();
    let ok = |(status, body): (StatusCode, Value)| {
        assert_eq!(status, 200, "{body}");
        (
            body["refresh_token"].as_str().unwrap().to_owned(),
            body["access_token"].as_str().unwrap().to_owned(),
        )
    };
    let refused = |(status, body): (StatusCode, Value)| {
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"], "invalid_grant", "{body}");
    };

    let first = stack.sign_in(&mut browser).await;
    let r0 = first["refresh_token"].as_str().unwrap().to_owned();
    let (r1, a1) = ok(stack.refresh(&r0).await);
    // The response was lost: the client retries with the token it still has.
    let (again, a1b) = ok(stack.refresh(&r0).await);
    assert_eq!(again, r1, "the same successor, not a replay");
    assert!(stack.active(&a1).await && stack.active(&a1b).await);
    // The successor is used: the old token is now a replay, and the family is revoked.
    let (r2, a2) = ok(stack.refresh(&r1).await);
    refused(stack.refresh(&r0).await);
    refused(stack.refresh(&r2).await);
    for access in [&a1, &a1b, &a2] {
        assert!(!stack.active(access).await, "revoked with the family");
    }

    // Another grant (SSO): its rotated token presented after the interval is a replay.
    let req = Request::new(&stack.endpoint("/authorize"), &[]);
    let to = wiring::sign_in(&mut browser, &req, Url::clone).await;
    let (r0, _) = ok(stack.redeem(&req, &to).await);
    let rotated = Instant::now();
    let (r1, _) = ok(stack.refresh(&r0).await);
    tokio::time::sleep(INTERVAL.saturating_sub(rotated.elapsed()) + Duration::from_millis(500))
        .await;
    refused(stack.refresh(&r0).await);
    refused(stack.refresh(&r1).await);
}

/// The value of the un-labelled counter `name` on a Prometheus `/metrics` page (0 when
/// absent).
fn counter(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Malformed HTTP requests (a request line that is not HTTP) are the client's error: they
/// get 400 or a closed connection, write no ERROR line in authz's log, and are counted in
/// `http_malformed_requests_total` on the admin `/metrics`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_are_counted_not_logged_as_errors() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stack = Stack::authz(&[]).await;
    let metrics = format!("{}/metrics", stack.authz.url("admin"));
    let read = || async {
        let page = stack
            .http
            .get(&metrics)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        counter(&page, "http_malformed_requests_total")
    };
    let before = read().await;
    const SENT: u32 = 5;
    for _ in 0..SENT {
        let mut stream = tokio::net::TcpStream::connect(stack.authz.addr("http"))
            .await
            .unwrap();
        stream.write_all(b"GARBAGE\r\n\r\n").await.unwrap();
        let mut answer = Vec::new();
        let closed =
            tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
        assert!(closed.is_ok(), "authz did not close the connection");
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 400"),
            "{answer}"
        );
    }
    // The counter is updated when the request is rejected: poll it briefly.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut after = read().await;
    while after < before + f64::from(SENT) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        after = read().await;
    }
    assert!(
        after >= before + f64::from(SENT),
        "http_malformed_requests_total went from {before} to {after}"
    );
    let (status, body) = stack.token(&[("grant_type", "client_credentials")]).await;
    assert_eq!(status, 200, "still serving: {body}");
    // The log is JSON lines (the harness sets log_format json): a level per line.
    let log = stack.authz.logs();
    assert!(
        log.contains(r#""level":"INFO""#),
        "the log is captured: {log}"
    );
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(r#""level":"ERROR""#))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
}
