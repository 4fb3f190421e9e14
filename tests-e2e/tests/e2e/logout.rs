//! logout: a back-channel logout receiver started by the test (OpenID Connect Back-Channel
//! Logout 1.0 §2.5), for the code-flow test: a minimal HTTP/1.1 server on a free loopback
//! port that records the `logout_token` of every POST and answers 200 after a delay (a
//! slow relying party), and the checks of §2.6 on what it received, against the JWKS.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use issuer::Algorithm;
use issuer::jws::{Expect, Verifiers, verify};
use reqwest::Url;
use serde_json::{Map, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// The `events` member of a logout token (§2.4).
const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// The receiver; cheap to clone.
#[derive(Clone)]
pub(crate) struct Receiver {
    /// Its URL, to register as `backchannel_logout_uri`.
    pub(crate) url: String,
    tokens: Arc<Mutex<Vec<String>>>,
    delay: Duration,
}

impl Receiver {
    /// Serves on a free loopback port until the test ends, answering each POST after
    /// `delay`.
    pub(crate) async fn start(delay: Duration) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let receiver = Self {
            url: format!("http://{addr}/backchannel-logout"),
            tokens: Arc::default(),
            delay,
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
        let form = Url::parse(&format!("http://form/?{}", String::from_utf8_lossy(&body))).unwrap();
        let token = form
            .query_pairs()
            .find(|(k, _)| k == "logout_token")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        self.tokens.lock().unwrap().push(token);
        tokio::time::sleep(self.delay).await;
        let _ = reader
            .get_mut()
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .await;
    }

    /// The logout tokens received so far.
    pub(crate) fn received(&self) -> Vec<String> {
        self.tokens.lock().unwrap().clone()
    }

    /// Waits (up to 20 s) for the first logout token.
    pub(crate) async fn first(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(token) = self.received().into_iter().next() {
                return token;
            }
            assert!(Instant::now() < deadline, "no logout token arrived");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Back-Channel Logout 1.0 §2.6 on `token`: signature against `jwks`, `typ: logout+jwt`,
/// `iss`, `aud`, `iat`/`exp`, the logout event, `sid`, and no `nonce`; its claims.
pub(crate) fn verified_logout_token(
    token: &str,
    jwks: &Value,
    issuer: &str,
    client_id: &str,
) -> Map<String, Value> {
    let mut keys = Verifiers::new();
    assert!(keys.extend_from_jwks(jwks) > 0, "{jwks}");
    let claims = verify(
        token,
        &keys,
        &Expect {
            algorithms: &Algorithm::ALL,
            typ: Some("logout+jwt"),
        },
    )
    .unwrap()
    .claims;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .cast_signed();
    assert_eq!(claims["iss"], issuer);
    assert_eq!(claims["aud"], client_id);
    assert!(claims["iat"].as_i64().unwrap() <= now + 1, "{claims:?}");
    assert!(claims["exp"].as_i64().unwrap() > now, "{claims:?}");
    assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
    assert_eq!(claims["events"], serde_json::json!({ EVENT: {} }));
    assert!(claims["sid"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(!claims.contains_key("nonce"), "§2.4: no nonce");
    claims
}
