//! dcr: Dynamic Client Registration (RFC 7591) with initial access tokens, the client
//! configuration endpoint (RFC 7592), and the bad input of issue 17: malformed, oversized
//! and inconsistent metadata, spent, expired and revoked tokens. None of them may leave a
//! client (or a spent token use) behind. On SQLite and PostgreSQL.

use std::sync::Arc;
use std::time::Duration;

use authz::clients::Clients;
use authz::registration::Registrations;
use authz::{Addresses, Application, AuthzConfig};
use domain::ScopeSet;
use issuer::ManualClock;
use reqwest::StatusCode;
use runtime::{GrpcListenConfig, ListenConfig, Shutdown};
use serde_json::{Value, json};
use storage::Database;
use storage::testing::TestDatabase;

use crate::cli::TEST_KEK;

pub(crate) struct Server {
    pub(crate) addrs: Addresses,
    pub(crate) clock: ManualClock,
    pub(crate) clients: Arc<Clients>,
    pub(crate) registrations: Registrations,
    shutdown: Shutdown,
    pub(crate) http: reqwest::Client,
    _running: tokio::task::JoinHandle<Result<(), authz::AuthzError>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

pub(crate) async fn start(db: &TestDatabase, tune: impl FnOnce(&mut AuthzConfig)) -> Server {
    let mut config = AuthzConfig {
        issuer: "http://127.0.0.1:9".to_owned(),
        http: ListenConfig::loopback(0),
        grpc: GrpcListenConfig::loopback(0),
        admin: ListenConfig::loopback(0),
        database: db.config().clone(),
        ..AuthzConfig::default()
    };
    config.keys.encryption_key = Some(config::Secret::new(TEST_KEK.to_owned()));
    config.keys.algorithms = vec![issuer::Algorithm::ES256];
    config.keys.default_alg = issuer::Algorithm::ES256;
    config.clients.cache_ttl = Duration::ZERO;
    tune(&mut config);
    let clock = ManualClock::new(1_800_000_000);
    let shutdown = Shutdown::new();
    let app =
        Application::build_with_clock(config.clone(), shutdown.clone(), Arc::new(clock.clone()))
            .await
            .unwrap();
    let addrs = app.addresses();
    let pool = Database::connect(db.config(), &authz::MIGRATIONS)
        .await
        .unwrap();
    let clients = Arc::new(Clients::new(
        pool.clone(),
        Arc::new(clock.clone()),
        Duration::ZERO,
    ));
    let registrations = Registrations::new(
        pool,
        Arc::clone(&clients),
        Arc::new(clock.clone()),
        config.registration.clone(),
    );
    Server {
        addrs,
        clock,
        clients,
        registrations,
        shutdown,
        http: reqwest::Client::new(),
        _running: tokio::spawn(app.run()),
    }
}

impl Server {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addrs.http)
    }

    /// A fresh initial access token for `scope` with `uses` uses, valid for an hour.
    pub(crate) async fn token(&self, scope: &str, uses: u32) -> String {
        self.registrations
            .create_token(
                "test".into(),
                ScopeSet::parse(scope).unwrap(),
                Duration::from_secs(3600),
                uses,
            )
            .await
            .unwrap()
            .1
    }

    /// Sends `body` (raw) to `method url` with `bearer`, as JSON.
    pub(crate) async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        bearer: Option<&str>,
        body: Option<String>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut req = self.http.request(method, url);
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let res = req.send().await.unwrap();
        let (status, headers) = (res.status(), res.headers().clone());
        let text = res.text().await.unwrap();
        (
            status,
            headers,
            serde_json::from_str(&text).unwrap_or(Value::Null),
        )
    }

    pub(crate) async fn register(
        &self,
        bearer: Option<&str>,
        body: &Value,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        self.send(
            reqwest::Method::POST,
            &self.url("/register"),
            bearer,
            Some(body.to_string()),
        )
        .await
    }

    async fn client_count(&self) -> usize {
        self.clients.list().await.unwrap().len()
    }

    async fn uses_left(&self) -> Vec<i64> {
        self.registrations
            .list_tokens()
            .await
            .unwrap()
            .iter()
            .map(|t| t.uses_left)
            .collect()
    }
}

fn web_app() -> Value {
    json!({
        "client_name": "Dynamic web app",
        "redirect_uris": ["https://app.example.test/cb"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_basic",
        "scope": "openid profile",
        "logo_uri": "https://app.example.test/logo.png",
    })
}

fn assert_error(status: StatusCode, body: &Value, want: StatusCode, code: &str) {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["error"], code, "{body}");
}

async fn registration_with_an_initial_access_token(db: TestDatabase) {
    let s = start(&db, |_| {}).await;
    let discovery: Value = s
        .http
        .get(s.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        discovery["registration_endpoint"],
        "http://127.0.0.1:9/register"
    );
    let token = s.token("openid profile email", 1).await;
    let (status, headers, body) = s.register(Some(&token), &web_app()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    let id = body["client_id"].as_str().unwrap().to_owned();
    assert_eq!(body["client_name"], "Dynamic web app");
    assert_eq!(
        body["redirect_uris"],
        json!(["https://app.example.test/cb"])
    );
    assert_eq!(
        body["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(body["response_types"], json!(["code"]));
    assert_eq!(body["scope"], "openid profile");
    assert_eq!(body["client_secret_expires_at"], 0);
    assert_eq!(body["client_id_issued_at"], 1_800_000_000);
    assert!(body["client_secret"].as_str().unwrap().len() >= 43);
    assert!(
        body.get("logo_uri").is_none(),
        "unsupported metadata is ignored, not echoed: {body}"
    );
    assert_eq!(
        body["registration_client_uri"],
        format!("http://127.0.0.1:9/register/{id}")
    );
    assert!(body["registration_access_token"].as_str().unwrap().len() >= 43);
    // An ordinary client: the registry (CLI, admin) sees it.
    let (client, secrets) = s.clients.get(&id).await.unwrap().unwrap();
    assert_eq!(client.name, "Dynamic web app");
    assert_eq!(secrets.len(), 1);
    // The token had one use.
    assert_eq!(s.uses_left().await, vec![0]);
    let (status, headers, body) = s.register(Some(&token), &web_app()).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "invalid_token");
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer "),
        "{headers:?}"
    );
    assert_eq!(s.client_count().await, 1);
}

async fn a_registered_client_authenticates_at_the_token_endpoint(db: TestDatabase) {
    let s = start(&db, |_| {}).await;
    let token = s.token("api:read", 1).await;
    let (status, _, body) = s
        .register(
            Some(&token),
            &json!({
                "grant_types": ["client_credentials"],
                "response_types": [],
                "token_endpoint_auth_method": "client_secret_post",
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["scope"], "api:read");
    let id = body["client_id"].as_str().unwrap();
    let secret = body["client_secret"].as_str().unwrap();
    let res = s
        .http
        .post(s.url("/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let tokens: Value = res.json().await.unwrap();
    assert_eq!(tokens["scope"], "api:read");
}

async fn bad_metadata_is_refused_and_leaves_nothing_behind(db: TestDatabase) {
    let s = start(&db, |_| {}).await;
    let token = s.token("openid profile", 3).await;
    let with = |patch: Value| {
        let mut m = web_app();
        for (k, v) in patch.as_object().unwrap() {
            m[k] = v.clone();
        }
        m.to_string()
    };
    let cases: Vec<(&str, String, StatusCode, &str)> = vec![
        (
            "malformed JSON",
            "{\"redirect_uris\": [".into(),
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
        ),
        (
            "not an object",
            "[1,2]".into(),
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
        ),
        (
            "wrong type",
            with(json!({"redirect_uris": "https://app.example.test/cb"})),
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
        ),
        (
            "fragment",
            with(json!({"redirect_uris": ["https://app.example.test/cb#x"]})),
            StatusCode::BAD_REQUEST,
            "invalid_redirect_uri",
        ),
        (
            "plain http",
            with(json!({"redirect_uris": ["http://app.example.test/cb"]})),
            StatusCode::BAD_REQUEST,
            "invalid_redirect_uri",
        ),
        (
            "relative",
            with(json!({"redirect_uris": ["/cb"]})),
            StatusCode::BAD_REQUEST,
            "invalid_redirect_uri",
        ),
        (
            "no redirect uri",
            with(json!({"redirect_uris": []})),
            StatusCode::BAD_REQUEST,
            "invalid_redirect_uri",
        ),
        (
            "code grant without code response",
            with(json!({"response_types": []})),
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
        ),
        (
            "code response without code grant",
            with(json!({"grant_types": ["client_credentials"]})),
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
        ),
        (
            "implicit",
            with(json!({"response_types": ["token"]})),
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
        ),
        (
            "unknown grant",
            with(json!({"grant_types": ["password"]})),
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
        ),
        (
            "refresh alone",
            with(json!({"grant_types": ["refresh_token"], "response_types": []})),
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
        ),
        (
            "token exchange",
            with(
                json!({"grant_types": ["authorization_code", "urn:ietf:params:oauth:grant-type:token-exchange"]}),
            ),
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
        ),
        (
            "unknown auth method",
            with(json!({"token_endpoint_auth_method": "client_secret_jwt_v9"})),
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
        ),
        (
            "public client_credentials",
            with(
                json!({"token_endpoint_auth_method": "none", "grant_types": ["client_credentials"], "response_types": []}),
            ),
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
        ),
        (
            "scope beyond the token",
            with(json!({"scope": "openid email"})),
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
        ),
        (
            "malformed scope",
            with(json!({"scope": "openid  profile"})),
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
        ),
        (
            "backchannel over http",
            with(json!({"backchannel_logout_uri": "http://app.example.test/logout"})),
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
        ),
        (
            "backchannel fragment",
            with(json!({"backchannel_logout_uri": "https://app.example.test/logout#f"})),
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
        ),
        (
            "flag not boolean",
            with(json!({"require_pushed_authorization_requests": "yes"})),
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
        ),
        (
            "oversized",
            with(json!({"client_name": "x".repeat(20_000)})),
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
        ),
    ];
    for (what, body, want, code) in cases {
        let (status, headers, answer) = s
            .send(
                reqwest::Method::POST,
                &s.url("/register"),
                Some(&token),
                Some(body),
            )
            .await;
        assert_eq!(status, want, "{what}: {answer}");
        assert_eq!(answer["error"], code, "{what}: {answer}");
        assert_eq!(headers["cache-control"], "no-store", "{what}");
    }
    // Not JSON at all.
    let res = s
        .http
        .post(s.url("/register"))
        .bearer_auth(&token)
        .form(&[("redirect_uris", "https://app.example.test/cb")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    // Nothing registered, no use spent.
    assert_eq!(s.client_count().await, 0);
    assert_eq!(s.uses_left().await, vec![3]);
    // The token still works for good metadata.
    let (status, _, body) = s.register(Some(&token), &web_app()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(s.uses_left().await, vec![2]);
}

async fn expired_revoked_unknown_and_missing_tokens_are_401(db: TestDatabase) {
    let s = start(&db, |_| {}).await;
    let expiring = s.token("openid", 5).await;
    let revoked = s.token("openid", 5).await;
    let app = json!({"redirect_uris": ["https://app.example.test/cb"]});
    let (status, _, body) = s.register(None, &app).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "invalid_token");
    let (status, _, body) = s.register(Some("not-a-token"), &app).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "invalid_token");
    let id = s
        .registrations
        .list_tokens()
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.created_at == 1_800_000_000)
        .unwrap()
        .id;
    // Both were minted at the same instant: revoke one by id, then check which still works.
    s.registrations.revoke_token(&id).await.unwrap();
    let left: Vec<_> = [&expiring, &revoked].into_iter().collect();
    let mut working = 0;
    for t in &left {
        let (status, _, body) = s.register(Some(t), &app).await;
        if status == StatusCode::CREATED {
            working += 1;
        } else {
            assert_error(status, &body, StatusCode::UNAUTHORIZED, "invalid_token");
        }
    }
    assert_eq!(working, 1, "exactly the unrevoked token works");
    assert!(s.registrations.revoke_token(&id).await.is_err());
    s.clock.advance(3601);
    for t in &left {
        let (status, _, body) = s.register(Some(t), &app).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "invalid_token");
    }
    // Another scheme is not a Bearer token.
    let res = s
        .http
        .post(s.url("/register"))
        .basic_auth("a", Some("b"))
        .json(&app)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(s.client_count().await, 1);
}

async fn concurrent_registrations_spend_a_single_use_once(db: TestDatabase) {
    let s = start(&db, |_| {}).await;
    let token = s.token("openid", 1).await;
    let app = json!({"redirect_uris": ["https://app.example.test/cb"]});
    let (a, b, c) = tokio::join!(
        s.register(Some(&token), &app),
        s.register(Some(&token), &app),
        s.register(Some(&token), &app)
    );
    let created = [&a, &b, &c]
        .iter()
        .filter(|r| r.0 == StatusCode::CREATED)
        .count();
    assert_eq!(created, 1, "{a:?} {b:?} {c:?}");
    for r in [&a, &b, &c] {
        if r.0 != StatusCode::CREATED {
            assert_error(r.0, &r.2, StatusCode::UNAUTHORIZED, "invalid_token");
        }
    }
    assert_eq!(s.client_count().await, 1);
    assert_eq!(s.uses_left().await, vec![0]);
}

async fn open_registration_is_for_native_loopback_clients_only(db: TestDatabase) {
    // (Without `registration.open`, no token is 401: see
    // expired_revoked_unknown_and_missing_tokens_are_401.)
    let native = json!({
        "redirect_uris": ["http://127.0.0.1/callback", "http://[::1]/callback"],
        "token_endpoint_auth_method": "none",
        "scope": "openid",
    });
    let s = start(&db, |c| c.registration.open = true).await;
    let (status, _, body) = s.register(None, &native).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(body.get("client_secret").is_none(), "{body}");
    assert!(body.get("client_secret_expires_at").is_none(), "{body}");
    let mut web = native.clone();
    web["redirect_uris"] = json!(["https://app.example.test/cb"]);
    let (status, _, body) = s.register(None, &web).await;
    assert_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "invalid_redirect_uri",
    );
    let mut confidential = native.clone();
    confidential["token_endpoint_auth_method"] = "client_secret_basic".into();
    let (status, _, body) = s.register(None, &confidential).await;
    assert_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "invalid_client_metadata",
    );
    let mut greedy = native.clone();
    greedy["scope"] = "openid admin".into();
    let (status, _, body) = s.register(None, &greedy).await;
    assert_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "invalid_client_metadata",
    );
    assert_eq!(s.client_count().await, 1);
    // With an initial access token the open rules do not apply.
    let token = s.token("openid", 1).await;
    let (status, _, body) = s.register(Some(&token), &web_app_openid()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

fn web_app_openid() -> Value {
    let mut m = web_app();
    m["scope"] = "openid".into();
    m
}

async fn configuration_endpoint_reads_updates_and_deletes(db: TestDatabase) {
    let s = start(&db, |_| {}).await;
    let token = s.token("openid profile email", 1).await;
    let (_, _, reg) = s.register(Some(&token), &web_app()).await;
    let id = reg["client_id"].as_str().unwrap().to_owned();
    let secret = reg["client_secret"].as_str().unwrap().to_owned();
    let uri = reg["registration_client_uri"]
        .as_str()
        .unwrap()
        .replace("http://127.0.0.1:9", &format!("http://{}", s.addrs.http));
    let rat = reg["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let get = |t: String| {
        let uri = uri.clone();
        let s = &s;
        async move { s.send(reqwest::Method::GET, &uri, Some(&t), None).await }
    };
    let (status, headers, body) = get(rat.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(body["client_id"], id.as_str());
    assert_eq!(body["redirect_uris"], reg["redirect_uris"]);
    assert!(body.get("client_secret").is_none());
    // A wrong token, another client's token and an unknown client look the same.
    let (status, _, body) = get("wrong".into()).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "invalid_token");
    let (status, _, body) = s
        .send(
            reqwest::Method::GET,
            &s.url("/register/nobody"),
            Some(&rat),
            None,
        )
        .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "invalid_token");
    let (status, _, body) = s.send(reqwest::Method::GET, &uri, None, None).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "invalid_token");

    // Update: invalid metadata changes nothing and keeps the token.
    let mut update = web_app();
    update["client_id"] = id.clone().into();
    update["redirect_uris"] = json!(["https://app.example.test/other#frag"]);
    let (status, _, body) = s
        .send(
            reqwest::Method::PUT,
            &uri,
            Some(&rat),
            Some(update.to_string()),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "invalid_redirect_uri",
    );
    let mut wrong_id = web_app();
    wrong_id["client_id"] = "someone-else".into();
    let (status, _, body) = s
        .send(
            reqwest::Method::PUT,
            &uri,
            Some(&rat),
            Some(wrong_id.to_string()),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    let mut server_field = update.clone();
    server_field["redirect_uris"] = json!(["https://app.example.test/new"]);
    server_field["registration_access_token"] = rat.clone().into();
    let (status, _, body) = s
        .send(
            reqwest::Method::PUT,
            &uri,
            Some(&rat),
            Some(server_field.to_string()),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    let mut bad_secret = update.clone();
    bad_secret["redirect_uris"] = json!(["https://app.example.test/new"]);
    bad_secret["client_secret"] = "not-the-secret".into();
    let (status, _, body) = s
        .send(
            reqwest::Method::PUT,
            &uri,
            Some(&rat),
            Some(bad_secret.to_string()),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    let mut to_public = update.clone();
    to_public["redirect_uris"] = json!(["https://app.example.test/new"]);
    to_public["token_endpoint_auth_method"] = "none".into();
    let (status, _, body) = s
        .send(
            reqwest::Method::PUT,
            &uri,
            Some(&rat),
            Some(to_public.to_string()),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "invalid_client_metadata",
    );
    let (_, _, body) = get(rat.clone()).await;
    assert_eq!(
        body["redirect_uris"],
        json!(["https://app.example.test/cb"])
    );

    // A good update replaces the metadata and rotates the token.
    let mut good = update.clone();
    good["redirect_uris"] = json!(["https://app.example.test/new"]);
    good["client_secret"] = secret.clone().into();
    good["require_pushed_authorization_requests"] = true.into();
    good.as_object_mut().unwrap().remove("scope");
    let (status, _, body) = s
        .send(
            reqwest::Method::PUT,
            &uri,
            Some(&rat),
            Some(good.to_string()),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["redirect_uris"],
        json!(["https://app.example.test/new"])
    );
    assert_eq!(body["require_pushed_authorization_requests"], true);
    assert_eq!(
        body["scope"], "openid profile",
        "the scope stays within what it had"
    );
    let new_rat = body["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(new_rat, rat);
    let (status, _, body) = get(rat.clone()).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "invalid_token");
    let (status, _, body) = get(new_rat.clone()).await;
    assert_eq!(status, 200, "{body}");
    let (client, _) = s.clients.get(&id).await.unwrap().unwrap();
    assert!(client.require_pushed_authorization_requests);
    // The secret survives the update: authentication passes, the bogus code does not.
    let res = s
        .http
        .post(s.url("/token"))
        .basic_auth(&id, Some(&secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", "x"),
            ("redirect_uri", "https://app.example.test/new"),
            ("code_verifier", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_ne!(body["error"], "invalid_client", "{body}");

    // Delete: 204, then the client and its token are gone.
    let (status, _, _) = s
        .send(reqwest::Method::DELETE, &uri, Some(&rat), None)
        .await;
    assert_eq!(status, 401);
    let (status, _, _) = s
        .send(reqwest::Method::DELETE, &uri, Some(&new_rat), None)
        .await;
    assert_eq!(status, 204);
    let (status, _, body) = get(new_rat.clone()).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "invalid_token");
    assert!(s.clients.get(&id).await.unwrap().is_none());
}

async fn clients_created_otherwise_have_no_configuration_endpoint(db: TestDatabase) {
    let s = start(&db, |_| {}).await;
    let c = authz::clients::Client::new(domain::ClientId::parse("cli-made").unwrap(), "CLI".into());
    s.clients
        .create(authz::clients::NewClient {
            client: c,
            secret: None,
        })
        .await
        .unwrap();
    for t in ["", "x"] {
        let (status, _, body) = s
            .send(
                reqwest::Method::DELETE,
                &s.url("/register/cli-made"),
                Some(t).filter(|t| !t.is_empty()),
                None,
            )
            .await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "invalid_token");
    }
    assert!(s.clients.get("cli-made").await.unwrap().is_some());
}

storage::backend_tests!(authz::MIGRATIONS;
    registration_with_an_initial_access_token,
    a_registered_client_authenticates_at_the_token_endpoint,
    bad_metadata_is_refused_and_leaves_nothing_behind,
    expired_revoked_unknown_and_missing_tokens_are_401,
    concurrent_registrations_spend_a_single_use_once,
    open_registration_is_for_native_loopback_clients_only,
    configuration_endpoint_reads_updates_and_deletes,
    clients_created_otherwise_have_no_configuration_endpoint,
);
