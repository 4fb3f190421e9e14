//! Holes an abusive client found on the wire (issue 14): oversized bodies on the OAuth
//! endpoints, `/userinfo` with a client's own token, and RP-Initiated Logout with a
//! leaked `id_token_hint` but without the victim's browser, and gRPC messages that are
//! not protobuf, and malformed HTTP requests flooding the error log.

use reqwest::StatusCode;
use serde_json::Value;
use storage::testing::TestDatabase;
use tracing_subscriber::layer::SubscriberExt;

use runtime::testing::RawCodec;

use crate::flow_env::*;

/// Over the form limit, every OAuth endpoint answers 413 with the RFC 6749 §5.2 JSON
/// error, never cached.
async fn oversized_bodies_get_the_oauth_error_shape(db: TestDatabase) {
    let env = start(&db).await;
    let big = format!(
        "grant_type=client_credentials&pad={}",
        "a".repeat(64 * 1024)
    );
    for path in ["/token", "/introspect", "/revoke", "/userinfo"] {
        let url = format!("http://{}{path}", env.addrs.http);
        let res = env
            .http
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("authorization", basic("m2m", SECRET))
            .body(big.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        assert_eq!(res.headers()["cache-control"], "no-store", "{path}");
        assert_eq!(res.headers()["content-type"], "application/json", "{path}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "error": "invalid_request",
                "error_description": "request body too large",
            }),
            "{path}"
        );
    }
    // Under the limit nothing changes.
    let (status, _, body) = env
        .token(
            Some(("m2m", SECRET)),
            &[("grant_type", "client_credentials"), ("scope", "api:read")],
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

/// `/userinfo` (OpenID Connect Core §5.3) serves only tokens of an OpenID Connect
/// authentication: a client_credentials token never carries `openid`, even when its
/// client may use `openid` and a user's subject equals its `client_id`.
async fn userinfo_refuses_a_clients_own_token(db: TestDatabase) {
    let env = start(&db).await;
    env.idp.user("m2m", false);
    // No scope asked: the client's scopes, less openid.
    let (status, _, body) = env
        .token(
            Some(("m2m", SECRET)),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let scope = body["scope"].as_str().unwrap();
    assert!(!scope.split(' ').any(|s| s == "openid"), "{scope}");
    assert!(scope.split(' ').any(|s| s == "api:read"), "{scope}");
    let (status, headers, info) = env.userinfo(body["access_token"].as_str().unwrap()).await;
    assert_eq!(status, 403, "{info}");
    assert_eq!(info["error"], "insufficient_scope");
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains(r#"error="insufficient_scope""#)
    );
    assert!(info.get("email").is_none());
    // Asked for: refused.
    let (status, _, body) = env
        .token(
            Some(("m2m", SECRET)),
            &[
                ("grant_type", "client_credentials"),
                ("scope", "openid api:read"),
            ],
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_scope");
}

fn end_session_query(hint: &str) -> String {
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("id_token_hint", hint),
            ("post_logout_redirect_uri", WEB_BYE),
            ("state", "s9"),
        ])
        .finish();
    format!("/end_session?{q}")
}

/// RP-Initiated Logout 1.0 §2: a valid `id_token_hint` from a browser without the
/// victim's session cookie is a question, not a logout; only the browser holding the
/// session the hint names signs out without one.
async fn a_leaked_id_token_hint_does_not_end_the_session(db: TestDatabase) {
    let env = start(&db).await;
    let mut victim = Browser::new(&env);
    let (code, verifier) = env
        .sign_in(&mut victim, "first", "openid", "alice", "idp-a")
        .await;
    let (_, _, body) = env.redeem("first", &code, &verifier).await;
    let hint = body["id_token"].as_str().unwrap().to_owned();

    // Another browser (or a link followed without cookies), by GET and by POST.
    let mut stranger = Browser::new(&env);
    let seen = stranger.get(&end_session_query(&hint)).await;
    assert_eq!(seen.status, 200, "{seen:?}");
    assert!(seen.body.contains("Sign out?"), "{}", seen.body);
    assert!(seen.body.contains("<form"), "{}", seen.body);
    let seen = stranger
        .post(
            "/end_session",
            &[("id_token_hint", hint.as_str()), ("client_id", "first")],
        )
        .await;
    assert!(seen.body.contains("Sign out?"), "{}", seen.body);
    // Answering the question from there ends nothing either.
    let seen = stranger
        .post(
            "/end_session",
            &[
                ("id_token_hint", hint.as_str()),
                ("confirm", "yes"),
                ("csrf", ""),
                ("post_logout_redirect_uri", WEB_BYE),
            ],
        )
        .await;
    assert_eq!(seen.status, StatusCode::SEE_OTHER, "{seen:?}");
    assert!(env.idp.ended().is_empty());

    // The victim is still signed in: prompt=none still gets a code.
    let (_, c) = pkce();
    let seen = victim
        .authorize(&code_request(
            "first",
            WEB_CB,
            "openid",
            &c,
            &[("prompt", "none")],
        ))
        .await;
    assert!(seen.redirected_to(WEB_CB).contains_key("code"), "{seen:?}");

    // The victim's own browser with the hint: signed out without a question, as before.
    let seen = victim.get(&end_session_query(&hint)).await;
    assert_eq!(seen.redirected_to(WEB_BYE)["state"], "s9");
    assert_eq!(env.idp.ended(), vec!["idp-a".to_owned()]);
    assert!(!victim.jar.contains_key("authz_session"));
}

/// A message that is not protobuf (a truncated varint key) is the caller's mistake:
/// `INVALID_ARGUMENT` on LoginFlow and Introspection, with or without credentials, never
/// `INTERNAL`, and nothing of the decoder's message.
async fn undecodable_grpc_requests_are_invalid_argument(db: TestDatabase) {
    let env = start(&db).await;
    let channel =
        tonic::transport::Endpoint::from_shared(format!("http://{}", env.addrs.grpc.unwrap()))
            .unwrap()
            .connect()
            .await
            .unwrap();
    for path in [
        "/authz.v1.LoginFlow/GetLoginRequest",
        "/authz.v1.Introspection/Introspect",
    ] {
        for auth in [None, Some(("rs", SECRET))] {
            let mut grpc = tonic::client::Grpc::new(channel.clone());
            grpc.ready().await.unwrap();
            let status = grpc
                .unary(
                    as_client(vec![0xff_u8, 0xff, 0xff], auth),
                    tonic::codegen::http::uri::PathAndQuery::from_static(path),
                    RawCodec,
                )
                .await
                .unwrap_err();
            assert_eq!(
                status.code(),
                tonic::Code::InvalidArgument,
                "{path} {auth:?}: {status:?}"
            );
            assert!(!status.message().contains("decode"), "{status:?}");
        }
    }
    // A well-formed request still reaches the handler.
    let status = env.get_login("no-such-challenge").await.unwrap_err();
    assert_ne!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
}

/// What the service logs, captured in memory.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Sends `raw` on a new connection and returns all the server answers before closing.
async fn raw_exchange(addr: std::net::SocketAddr, raw: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(raw).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut answer),
    )
    .await;
    // A reset after the answer is as good as a close.
    let _ = read.expect("the server closes a connection it cannot parse");
    String::from_utf8_lossy(&answer).into_owned()
}

/// Malformed requests are the client's error: twenty of them over raw TCP get 400 (or a
/// closed connection) and leave no ERROR line in the service's log, which is installed as
/// the binaries install it (`telemetry::log_layer`).
async fn malformed_requests_do_not_log_errors(db: TestDatabase) {
    // Once per process (nextest runs each test in its own; plain cargo test does not).
    static CAPTURED: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    let captured = CAPTURED.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_subscriber::EnvFilter::new("info"))
            .with(telemetry::log_layer(false, false, move || writer.clone()));
        tracing::subscriber::set_global_default(subscriber).unwrap();
        captured
    });
    let env = start(&db).await;
    let addr = env.addrs.http;
    let malformed: [&[u8]; 5] = [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nNo colon here\r\n\r\n",
        b"POST /token HTTP/1.1\r\nHost: a\r\nContent-Length: many\r\n\r\n",
        b"POST /token HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nxx\r\n",
        b"GET /\x01\x02 HTTP/1.1\r\nHost: a\r\n\r\n",
    ];
    for round in 0..4 {
        for raw in malformed {
            let answer = raw_exchange(addr, raw).await;
            assert!(
                answer.is_empty() || answer.starts_with("HTTP/1.1 400"),
                "round {round}: {answer}"
            );
        }
    }
    // The service still answers, and its log is captured (an ERROR would be seen).
    let res = env
        .http
        .get(format!("http://{addr}/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let canary = format!("canary {addr}");
    tracing::error!("{canary}");
    let log = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    let errors: Vec<&str> = log.lines().filter(|l| l.contains("ERROR")).collect();
    assert!(errors.iter().any(|l| l.contains(&canary)), "{log}");
    assert!(
        !errors.iter().any(|l| l.contains("actix_http")),
        "{errors:#?}"
    );
}

storage::backend_tests!(
    authz::MIGRATIONS;
    oversized_bodies_get_the_oauth_error_shape,
    userinfo_refuses_a_clients_own_token,
    a_leaked_id_token_hint_does_not_end_the_session,
    undecodable_grpc_requests_are_invalid_argument,
    malformed_requests_do_not_log_errors,
);
