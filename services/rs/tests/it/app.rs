//! rs booted in-process on port 0 with an issuer that cannot be reached: not ready, every
//! request refused before its body is looked at, and the refusals counted.

use rs::{Application, RsConfig};
use runtime::{ListenConfig, Shutdown};

/// `{"alg":"ES256","kid":"k","typ":"at+jwt"}.{}.sig`: well-formed, signed by no known key.
const UNKNOWN_KEY_JWT: &str = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsiLCJ0eXAiOiJhdCtqd3QifQ.e30.c2ln";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_issuers_keys_rs_is_not_ready_and_lets_nothing_through() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let issuer = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let mut config = RsConfig {
        http: ListenConfig::loopback(0),
        admin: ListenConfig::loopback(0),
        ..RsConfig::default()
    };
    config.guard.issuer = issuer;
    let shutdown = Shutdown::new();
    let app = Application::build(config, shutdown.clone()).await.unwrap();
    let addrs = app.addresses();
    let running = tokio::spawn(app.run());
    let client = reqwest::Client::new();
    let api = format!("http://{}/api/v1", addrs.http);
    let admin = format!("http://{}", addrs.admin);

    let ready = client.get(format!("{admin}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(
        body["reason"],
        "the issuer's signing keys are not loaded yet"
    );

    // The one public route answers without a token and says what the others need.
    let status = client.get(format!("{api}/status")).send().await.unwrap();
    assert_eq!(status.status(), 200);
    let status: serde_json::Value = status.json().await.unwrap();
    assert_eq!(status["token_validation"], "jwt");
    assert_eq!(status["ready"], false);
    assert_eq!(status["scopes"]["POST /api/v1/items"][0], "items:write");

    let me = client.get(format!("{api}/me")).send().await.unwrap();
    assert_eq!(me.status(), 401);
    assert_eq!(me.headers()["www-authenticate"], r#"Bearer realm="rs""#);

    // The scope check comes before the body: no 422 for an unauthenticated caller.
    let create = client
        .post(format!("{api}/items"))
        .header("content-type", "application/json")
        .body("{\"name\": 7}")
        .send()
        .await
        .unwrap();
    assert_eq!(create.status(), 401);

    let cannot_check = client
        .get(format!("{api}/items"))
        .bearer_auth(UNKNOWN_KEY_JWT)
        .send()
        .await
        .unwrap();
    assert_eq!(cannot_check.status(), 503, "no keys: no decision, no pass");
    let malformed = client
        .get(format!("{api}/me"))
        .bearer_auth("not-a-jwt")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 401);
    assert_eq!(
        malformed.headers()["www-authenticate"],
        r#"Bearer realm="rs", error="invalid_token", error_description="the access token is malformed""#
    );

    let metrics = client
        .get(format!("{admin}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        r#"guard_requests_total{result="missing_token",reason="none"}"#,
        r#"guard_requests_total{result="unavailable",reason="none"}"#,
        r#"guard_requests_total{result="invalid_token",reason="malformed"}"#,
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }

    shutdown.trigger();
    running.await.unwrap().unwrap();
}
