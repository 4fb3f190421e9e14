//! The resource server in each guard mode (`jwt`, `introspection`, `hybrid`) against one real
//! authz: valid, missing, garbage, tampered, expired, foreign-audience and under-scoped tokens;
//! revocation within the introspection cache TTL; a key rotation picked up without restart;
//! and authz going away.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::harness::{Service, TEST_KEK, free_port, workspace};

/// The resource identifier of rs: the audience its tokens must carry.
const RS_AUD: &str = "https://rs.example.test";
/// How long rs may reuse an introspection answer in these tests.
const CACHE_TTL: Duration = Duration::from_secs(2);

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// authz's key schedule for this test: ES256 only, rotated by hand, a new key published 2 s
/// before it signs, the JWKS cacheable for 1 s, the schedule checked every 200 ms.
fn authz_keys() -> Vec<(String, String)> {
    pairs(&[
        ("AUTHZ__KEYS__ALGORITHMS", "[ES256]"),
        ("AUTHZ__KEYS__DEFAULT_ALG", "ES256"),
        ("AUTHZ__KEYS__ROTATION_PERIOD", "0s"),
        ("AUTHZ__KEYS__PUBLISH_AHEAD", "2s"),
        ("AUTHZ__KEYS__JWKS_MAX_AGE", "1s"),
        ("AUTHZ__KEYS__RETIRED_RETENTION", "60s"),
        ("AUTHZ__KEYS__CHECK_INTERVAL", "200ms"),
    ])
}

fn authz_cli(db_url: &str, args: &[&str]) -> Value {
    let out = Command::new(crate::harness::binary("authz"))
        .current_dir(workspace())
        .args(args)
        .envs(authz_keys())
        .env("AUTHZ__DATABASE__URL", db_url)
        .env("AUTHZ__KEYS__ENCRYPTION_KEY", TEST_KEK)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn create_client(db_url: &str, id: &str, extra: &[&str]) -> String {
    let mut args = vec!["clients", "create", "--id", id, "--name", id, "--json"];
    args.extend_from_slice(extra);
    authz_cli(db_url, &args)["client_secret"]
        .as_str()
        .unwrap()
        .to_owned()
}

struct Authz {
    service: Service,
    http: reqwest::Client,
}

impl Authz {
    async fn token(&self, client: &str, secret: &str, scope: Option<&str>) -> String {
        let mut form = vec![("grant_type", "client_credentials")];
        form.extend(scope.map(|s| ("scope", s)));
        let res = self
            .http
            .post(format!("{}/token", self.service.url("http")))
            .basic_auth(client, Some(secret))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }
}

fn kid(token: &str) -> String {
    let header = URL_SAFE_NO_PAD
        .decode(token.split('.').next().unwrap())
        .unwrap();
    let header: Value = serde_json::from_slice(&header).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

fn exp(token: &str) -> i64 {
    let payload = URL_SAFE_NO_PAD
        .decode(token.split('.').nth(1).unwrap())
        .unwrap();
    let payload: Value = serde_json::from_slice(&payload).unwrap();
    payload["exp"].as_i64().unwrap()
}

fn tampered(token: &str) -> String {
    let (input, signature) = token.rsplit_once('.').unwrap();
    let mut sig = URL_SAFE_NO_PAD.decode(signature).unwrap();
    sig[5] ^= 0x20;
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// One rs process in one mode.
struct Rs {
    mode: &'static str,
    service: Service,
    http: reqwest::Client,
}

/// What a request to rs got back.
#[derive(Debug)]
struct Answer {
    status: u16,
    challenge: Option<String>,
    body: Value,
}

impl Rs {
    async fn start(
        mode: &'static str,
        data: &Path,
        issuer: &str,
        grpc: &str,
        secret_file: &Path,
    ) -> Self {
        let dir = data.join(mode);
        std::fs::create_dir_all(&dir).unwrap();
        let env = pairs(&[
            ("RS__GUARD__MODE", mode),
            ("RS__GUARD__ISSUER", issuer),
            ("RS__GUARD__AUDIENCE", RS_AUD),
            ("RS__GUARD__LEEWAY", "0s"),
            // Keys are cached far longer than the test: a rotated key is found through
            // the unknown-kid refetch.
            ("RS__GUARD__JWKS__MIN_TTL", "60s"),
            ("RS__GUARD__JWKS__REFETCH_INTERVAL", "1s"),
            ("RS__GUARD__INTROSPECTION__ENDPOINT", grpc),
            ("RS__GUARD__INTROSPECTION__CLIENT_ID", "rs"),
            (
                "RS__GUARD__INTROSPECTION__CLIENT_SECRET_FILE",
                secret_file.to_str().unwrap(),
            ),
            ("RS__GUARD__INTROSPECTION__CACHE_TTL", "2s"),
            ("RS__GUARD__INTROSPECTION__NEGATIVE_TTL", "1s"),
            ("RS__GUARD__INTROSPECTION__DEADLINE", "500ms"),
            ("RS__GUARD__INTROSPECTION__RETRIES", "1"),
            ("RS__GUARD__INTROSPECTION__BACKOFF", "50ms"),
        ]);
        let service = Service::start("rs", &dir, &env).await;
        Self {
            mode,
            service,
            http: reqwest::Client::new(),
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Answer {
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let challenge = res
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned());
        let text = res.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer {
            status,
            challenge,
            body,
        }
    }

    async fn get(&self, path: &str, token: Option<&str>) -> Answer {
        let mut req = self
            .http
            .get(format!("{}/api/v1{path}", self.service.url("http")));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        self.send(req).await
    }

    async fn post_item(&self, token: &str, body: Value) -> Answer {
        let req = self
            .http
            .post(format!("{}/api/v1/items", self.service.url("http")))
            .bearer_auth(token)
            .json(&body);
        self.send(req).await
    }

    /// Expects 401 `invalid_token` with exactly this description.
    async fn refuses(&self, token: &str, description: &str) {
        let answer = self.get("/me", Some(token)).await;
        assert_eq!(answer.status, 401, "{} mode: {answer:?}", self.mode);
        assert_eq!(
            answer.challenge.as_deref(),
            Some(
                format!(
                    r#"Bearer realm="rs", error="invalid_token", error_description="{description}""#
                )
                .as_str()
            ),
            "{} mode",
            self.mode
        );
        assert_eq!(answer.body["error"], "invalid_token");
    }

    async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.service.url("admin")))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

/// Polls until `check` holds, at most `within`; returns how long it took.
async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            return started.elapsed();
        }
        assert!(started.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guard_modes_against_a_real_authz() {
    let data = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}/authz.db", data.path().display());
    crate::code_flow::migrate("authz", &[("AUTHZ__DATABASE__URL".into(), db_url.clone())]);
    let both = "items:read items:write";
    let caller = create_client(&db_url, "caller", &["--scope", both, "--audience", RS_AUD]);
    let short = create_client(
        &db_url,
        "short-lived",
        &[
            "--scope",
            both,
            "--audience",
            RS_AUD,
            "--access-token-ttl",
            "2s",
        ],
    );
    let foreign = create_client(
        &db_url,
        "foreign",
        &[
            "--scope",
            both,
            "--audience",
            "https://elsewhere.example.test",
        ],
    );
    let rs_secret = create_client(&db_url, "rs", &["--introspect", "true"]);
    let secret_file = data.path().join("rs-client-secret");
    std::fs::write(&secret_file, format!("{rs_secret}\n")).unwrap();

    // authz's issuer URL (in every token and its discovery document) must name the address
    // it really serves.
    let port = free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let mut env = authz_keys();
    env.extend(pairs(&[
        ("AUTHZ__HTTP__PORT", &port.to_string()),
        ("AUTHZ__ISSUER", &issuer),
        ("AUTHZ__DATABASE__URL", &db_url),
    ]));
    let authz = Authz {
        service: Service::start("authz", data.path(), &env).await,
        http: reqwest::Client::new(),
    };
    let grpc = authz.service.url("grpc");
    let (jwt, introspection, hybrid) = tokio::join!(
        Rs::start("jwt", data.path(), &issuer, &grpc, &secret_file),
        Rs::start("introspection", data.path(), &issuer, &grpc, &secret_file),
        Rs::start("hybrid", data.path(), &issuer, &grpc, &secret_file),
    );
    let all = [&jwt, &introspection, &hybrid];

    // A 2 s token, used at once and again after it expired.
    let short_token = authz.token("short-lived", &short, None).await;
    for rs in all {
        assert_eq!(
            rs.get("/me", Some(&short_token)).await.status,
            200,
            "{}",
            rs.mode
        );
    }

    let full = authz.token("caller", &caller, None).await;
    let write_only = authz.token("caller", &caller, Some("items:write")).await;
    let foreign_token = authz.token("foreign", &foreign, None).await;
    for rs in all {
        let me = rs.get("/me", Some(&full)).await;
        assert_eq!(me.status, 200, "{}: {me:?}", rs.mode);
        assert_eq!(me.body["sub"], "caller");
        assert_eq!(me.body["client_id"], "caller");
        assert_eq!(me.body["scopes"], json!(["items:read", "items:write"]));
        assert_eq!(me.body["aud"], json!([RS_AUD]));

        let created = rs
            .post_item(&full, json!({"name": "bolt", "quantity": 3}))
            .await;
        assert_eq!(created.status, 201, "{}: {created:?}", rs.mode);
        assert_eq!(created.body["created_by"], "caller");
        let listed = rs.get("/items", Some(&full)).await;
        assert_eq!(listed.status, 200);
        assert_eq!(listed.body["items"][0]["name"], "bolt");
        let invalid = rs.post_item(&full, json!({"name": ""})).await;
        assert_eq!(invalid.status, 422);
        assert_eq!(invalid.body["error"], "invalid_item");
        assert_eq!(invalid.body["error_description"], "name: must not be empty");

        let none = rs.get("/me", None).await;
        assert_eq!(none.status, 401);
        assert_eq!(none.challenge.as_deref(), Some(r#"Bearer realm="rs""#));

        let scope = rs.get("/items", Some(&write_only)).await;
        assert_eq!(scope.status, 403, "{}", rs.mode);
        assert_eq!(
            scope.challenge.as_deref(),
            Some(
                r#"Bearer realm="rs", error="insufficient_scope", error_description="the request requires higher privileges than provided by the access token", scope="items:read""#
            )
        );
        let read_only = authz.token("caller", &caller, Some("items:read")).await;
        assert_eq!(
            rs.post_item(&read_only, json!({"name": "x"})).await.status,
            403
        );

        let query = rs.get(&format!("/me?access_token={full}"), None).await;
        assert_eq!(query.status, 400);
        assert_eq!(
            query.challenge.as_deref(),
            Some(
                r#"Bearer realm="rs", error="invalid_request", error_description="access tokens are not accepted in the query string""#
            )
        );

        rs.refuses(
            &foreign_token,
            "the access token is not meant for this resource",
        )
        .await;
    }
    let inactive = "the access token is not active";
    jwt.refuses("garbage", "the access token is malformed")
        .await;
    introspection.refuses("garbage", inactive).await;
    hybrid.refuses("garbage", inactive).await;
    let bad_signature = tampered(&full);
    jwt.refuses(&bad_signature, "the access token signature is invalid")
        .await;
    introspection.refuses(&bad_signature, inactive).await;
    hybrid
        .refuses(&bad_signature, "the access token signature is invalid")
        .await;

    // Expired: authz itself says inactive; local verification says why.
    let wait = exp(&short_token) - unix_now() + 1;
    tokio::time::sleep(Duration::from_secs(wait.max(0) as u64)).await;
    jwt.refuses(&short_token, "the access token expired").await;
    introspection.refuses(&short_token, inactive).await;
    hybrid
        .refuses(&short_token, "the access token expired")
        .await;

    // Revocation reaches introspection and hybrid within the cache TTL; jwt cannot see it.
    let revoked = authz.token("caller", &caller, None).await;
    for rs in all {
        assert_eq!(rs.get("/me", Some(&revoked)).await.status, 200);
    }
    let res = authz
        .http
        .post(format!("{}/revoke", authz.service.url("http")))
        .basic_auth("caller", Some(&caller))
        .form(&[("token", revoked.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    for rs in [&introspection, &hybrid] {
        let took = eventually(CACHE_TTL + Duration::from_secs(1), rs.mode, || async {
            rs.get("/me", Some(&revoked)).await.status == 401
        })
        .await;
        assert!(
            took <= CACHE_TTL + Duration::from_secs(1),
            "{}: {took:?}",
            rs.mode
        );
        rs.refuses(&revoked, inactive).await;
    }
    assert_eq!(jwt.get("/me", Some(&revoked)).await.status, 200);

    // Key rotation: once the new key signs, its tokens pass in a running rs.
    let old_kid = kid(&full);
    authz_cli(&db_url, &["keys", "rotate", "--json"]);
    let deadline = Instant::now() + Duration::from_secs(15);
    let rotated = loop {
        let token = authz.token("caller", &caller, None).await;
        if kid(&token) != old_kid {
            break token;
        }
        assert!(Instant::now() < deadline, "the new key never signed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for rs in all {
        let me = rs.get("/me", Some(&rotated)).await;
        assert_eq!(me.status, 200, "{} after rotation: {me:?}", rs.mode);
    }
    let metrics = jwt.metrics().await;
    assert!(
        metrics.contains(r#"guard_jwks_fetches_total{trigger="unknown_kid",result="ok"}"#),
        "the new kid was fetched on demand:\n{metrics}"
    );
    for line in [
        r#"guard_requests_total{result="allowed",reason="none"}"#,
        r#"guard_requests_total{result="missing_token",reason="none"}"#,
        r#"guard_requests_total{result="insufficient_scope",reason="none"}"#,
        r#"guard_requests_total{result="invalid_token",reason="expired"}"#,
        r#"guard_requests_total{result="invalid_token",reason="signature"}"#,
        r#"guard_requests_total{result="invalid_token",reason="audience"}"#,
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }

    // authz goes away: jwt keeps serving from its cached keys, the others answer 503.
    let unseen_jwt = authz.token("caller", &caller, None).await;
    let unseen_introspection = authz.token("caller", &caller, None).await;
    let unseen_hybrid = authz.token("caller", &caller, None).await;
    assert_eq!(
        authz.service.terminate(Duration::from_secs(10)).await,
        Some(0)
    );
    assert_eq!(jwt.get("/me", Some(&rotated)).await.status, 200);
    assert_eq!(jwt.get("/me", Some(&unseen_jwt)).await.status, 200);
    let ready = reqwest::get(format!("{}/readyz", jwt.service.url("admin")))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    for (rs, token) in [
        (&introspection, &unseen_introspection),
        (&hybrid, &unseen_hybrid),
    ] {
        let answer = rs.get("/me", Some(token)).await;
        assert_eq!(answer.status, 503, "{}: {answer:?}", rs.mode);
        assert_eq!(answer.body["error"], "temporarily_unavailable");
        assert!(answer.challenge.is_none());
    }
}
