//! Issue 14, "Request bodies have no deadline": a client that sent `Content-Length: 1000`
//! and stalled held its connection forever, and 20,000 of them starved authz of file
//! descriptors so `/token` and even `/readyz` stopped answering. Against the real binaries
//! with small `limits` (env `<SERVICE>__LIMITS__…`): stalled bodies are cut off within
//! `limits.request_timeout` while other requests are served; beyond the per-peer cap the
//! public listener sheds with 503 + `Retry-After` while admin `/readyz` answers, and
//! recovers when the stalled connections are gone; a stalled gRPC handshake or frame is
//! closed within the keep-alive bound while Introspect calls keep working.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use base64::Engine;
use proto::authz::v1::IntrospectRequest;
use proto::authz::v1::introspection_client::IntrospectionClient;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{Service, free_port};

/// `limits.request_timeout` (and the gRPC keep-alive bound) in these tests.
const DEADLINE: Duration = Duration::from_secs(2);
/// What a loaded CI machine may add to a deadline.
const SLACK: Duration = Duration::from_secs(3);

/// Small limits for `service` (`AUTHZ`, `IDP`, `RS`) with at most `per_peer` connections
/// from one address.
fn limits(service: &str, per_peer: usize) -> Vec<(String, String)> {
    [
        ("REQUEST_TIMEOUT", "2s"),
        ("HEADER_TIMEOUT", "2s"),
        ("MAX_CONNECTIONS_PER_PEER", &per_peer.to_string()),
        ("RETRY_AFTER", "3s"),
        ("GRPC_KEEPALIVE_INTERVAL", "1s"),
        ("GRPC_KEEPALIVE_TIMEOUT", "1s"),
    ]
    .iter()
    .map(|(k, v)| (format!("{service}__LIMITS__{k}"), (*v).to_owned()))
    .collect()
}

/// An HTTP client that opens a fresh connection per request and gives up after 5 s, so a
/// stalled server fails the test instead of hanging it.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// Sends a POST head to `path` announcing a 1000-byte body, then 10 bytes of it, and
/// stalls.
async fn stalled_body(addr: SocketAddr, path: &str, extra_headers: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\n{extra_headers}Content-Length: 1000\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(b"grant_type").await.unwrap();
    stream
}

/// Waits (at most `within`) until the server closes `stream`; returns what it sent first.
async fn closed_within(mut stream: TcpStream, within: Duration, what: &str) -> String {
    let mut got = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "{what}: still open after {within:?}");
    String::from_utf8_lossy(&got).into_owned()
}

async fn token(http: &reqwest::Client, authz: &Service) -> reqwest::Response {
    http.post(format!("{}/token", authz.url("http")))
        .basic_auth(demo::seeded::CLIENT_ID, Some(demo::seeded::CLIENT_SECRET))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "items:write"),
        ])
        .send()
        .await
        .unwrap()
}

async fn readyz(http: &reqwest::Client, service: &Service) -> u16 {
    http.get(format!("{}/readyz", service.url("admin")))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn metric(page: &str, series: &str) -> f64 {
    page.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn metrics(http: &reqwest::Client, service: &Service) -> String {
    http.get(format!("{}/metrics", service.url("admin")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn start_authz(data: &std::path::Path, per_peer: usize) -> Service {
    Service::start_with(
        "authz",
        &["serve".to_owned(), "--demo".to_owned()],
        data,
        &limits("AUTHZ", per_peer),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authz_cuts_off_stalled_bodies_while_serving_others() {
    let data = tempfile::tempdir().unwrap();
    let authz = start_authz(data.path(), 16).await;
    let http = client();
    let addr = authz.addr("http");
    let started = Instant::now();
    let mut stalled = Vec::new();
    for _ in 0..3 {
        stalled.push(stalled_body(addr, "/token", "").await);
    }

    // Meanwhile everyone else is served.
    let answer = token(&http, &authz).await;
    assert_eq!(answer.status(), 200);
    let answer: Value = answer.json().await.unwrap();
    assert!(answer["access_token"].is_string(), "{answer}");
    assert_eq!(readyz(&http, &authz).await, 200);

    for stream in stalled {
        let within = (DEADLINE + SLACK).saturating_sub(started.elapsed());
        let sent = closed_within(stream, within, "a stalled /token body").await;
        assert!(sent.starts_with("HTTP/1.1 408"), "{sent}");
        assert!(
            sent.to_ascii_lowercase().contains("connection: close"),
            "{sent}"
        );
    }
    assert!(
        started.elapsed() >= DEADLINE - Duration::from_millis(200),
        "not cut off before the deadline"
    );
    let page = metrics(&http, &authz).await;
    assert!(
        metric(&page, r#"http_request_timeouts_total{listener="http"}"#) >= 3.0,
        "{page}"
    );
    assert_eq!(token(&http, &authz).await.status(), 200);

    // A chunked body (RFC 9112 §7.1) that stalls, on an endpoint that never reads a body
    // (the JWKS answers POST with 405): answered, then closed, not drained forever.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /.well-known/jwks.json HTTP/1.1\r\nHost: {addr}\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let sent = closed_within(stream, DEADLINE + SLACK, "a stalled chunked body").await;
    assert!(sent.starts_with("HTTP/1.1 "), "{sent}");
    assert!(
        sent.to_ascii_lowercase().contains("connection: close"),
        "{sent}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authz_sheds_beyond_the_per_peer_cap_keeps_admin_and_recovers() {
    let data = tempfile::tempdir().unwrap();
    let per_peer = 4;
    let authz = start_authz(data.path(), per_peer).await;
    let http = client();
    let addr = authz.addr("http");
    let mut stalled = Vec::new();
    for _ in 0..per_peer {
        stalled.push(stalled_body(addr, "/token", "").await);
    }
    // A connected socket is not yet a counted one: the workers count a connection when
    // they take it from the accept queue, so wait until all of them are.
    let counted = Instant::now() + SLACK;
    loop {
        let page = metrics(&http, &authz).await;
        if metric(&page, r#"http_connections_open{listener="http"}"#) >= per_peer as f64 {
            break;
        }
        assert!(
            Instant::now() < counted,
            "stalled connections not counted: {page}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The cap is reached: shed at once with 503 + Retry-After, not a hang.
    let asked = Instant::now();
    let shed = token(&http, &authz).await;
    assert!(asked.elapsed() < Duration::from_secs(2));
    assert_eq!(shed.status(), 503);
    assert_eq!(
        shed.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("3")
    );
    let body: Value = shed.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    // The admin listener has its own count and answers.
    assert_eq!(readyz(&http, &authz).await, 200);
    let page = metrics(&http, &authz).await;
    assert!(
        metric(&page, r#"http_requests_shed_total{listener="http"}"#) >= 1.0,
        "{page}"
    );

    // Once the stalled connections are cut off, the service is back.
    for stream in stalled {
        closed_within(stream, DEADLINE + SLACK, "a stalled /token body").await;
    }
    let deadline = Instant::now() + SLACK;
    loop {
        let status = token(&http, &authz).await.status();
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "still {status} after recovery");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authz_grpc_closes_stalled_handshakes_and_frames_while_serving_calls() {
    let data = tempfile::tempdir().unwrap();
    let authz = start_authz(data.path(), 16).await;
    let addr = authz.addr("grpc");
    let started = Instant::now();
    // Half the client preface (RFC 9113 §3.4), and the whole preface then half a frame.
    let mut half_preface = TcpStream::connect(addr).await.unwrap();
    half_preface.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    let mut half_frame = TcpStream::connect(addr).await.unwrap();
    half_frame
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04")
        .await
        .unwrap();

    // Meanwhile Introspect calls are served.
    let channel = tonic::transport::Endpoint::from_shared(authz.url("grpc"))
        .unwrap()
        .timeout(Duration::from_secs(5))
        .connect()
        .await
        .unwrap();
    let basic = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        demo::seeded::RS_CLIENT_ID,
        demo::seeded::RS_CLIENT_SECRET
    ));
    let mut request = tonic::Request::new(IntrospectRequest {
        token: "not-a-token".to_owned(),
        token_type_hint: String::new(),
    });
    request
        .metadata_mut()
        .insert("authorization", format!("Basic {basic}").parse().unwrap());
    let answer = IntrospectionClient::new(channel)
        .introspect(request)
        .await
        .unwrap()
        .into_inner();
    assert!(!answer.active);

    // Both stalled connections end within the keep-alive bound (interval + timeout).
    for (stream, what) in [
        (half_preface, "half an HTTP/2 preface"),
        (half_frame, "half an HTTP/2 frame"),
    ] {
        let within = (DEADLINE + SLACK).saturating_sub(started.elapsed());
        closed_within(stream, within, what).await;
    }
    let page = metrics(&client(), &authz).await;
    assert!(
        metric(&page, r#"http_request_timeouts_total{listener="grpc"}"#) >= 1.0,
        "{page}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idp_cuts_off_a_stalled_login_body() {
    let data = tempfile::tempdir().unwrap();
    let idp = Service::start("idp", data.path(), &limits("IDP", 16)).await;
    let http = client();
    let started = Instant::now();
    let stream = stalled_body(
        idp.addr("http"),
        "/login",
        "Content-Type: application/x-www-form-urlencoded\r\n",
    )
    .await;
    assert_eq!(readyz(&http, &idp).await, 200);
    let sent = closed_within(stream, DEADLINE + SLACK, "a stalled /login body").await;
    assert!(sent.starts_with("HTTP/1.1 408"), "{sent}");
    assert!(started.elapsed() >= DEADLINE - Duration::from_millis(200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rs_cuts_off_a_stalled_item_body() {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let authz = Service::start_with(
        "authz",
        &["serve".to_owned(), "--demo".to_owned()],
        data.path(),
        &[
            ("AUTHZ__HTTP__PORT".to_owned(), port.to_string()),
            ("AUTHZ__ISSUER".to_owned(), issuer.clone()),
        ],
    )
    .await;
    let mut env = limits("RS", 16);
    env.push(("RS__GUARD__ISSUER".to_owned(), issuer));
    env.push((
        "RS__GUARD__AUDIENCE".to_owned(),
        demo::seeded::AUDIENCE.to_owned(),
    ));
    let rs = Service::start("rs", data.path(), &env).await;
    let http = client();
    let answer = token(&http, &authz).await;
    assert_eq!(answer.status(), 200);
    let answer: Value = answer.json().await.unwrap();
    let access = answer["access_token"].as_str().unwrap();

    let started = Instant::now();
    let stream = stalled_body(
        rs.addr("http"),
        "/api/v1/items",
        &format!("Authorization: Bearer {access}\r\nContent-Type: application/json\r\n"),
    )
    .await;
    assert_eq!(readyz(&http, &rs).await, 200);
    let sent = closed_within(stream, DEADLINE + SLACK, "a stalled item body").await;
    assert!(sent.starts_with("HTTP/1.1 408"), "{sent}");
    assert!(started.elapsed() >= DEADLINE - Duration::from_millis(200));
}
