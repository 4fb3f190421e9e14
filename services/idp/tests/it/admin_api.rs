//! idp's admin REST API (issue 18) on its admin listener, on SQLite and PostgreSQL: every
//! route, the RFC 6750 refusals, RFC 9457 problems naming the field, ETag / If-Match, the
//! audit trail of every write, and the OpenAPI document against the routes.
//!
//! Tokens: RFC 9068 JWTs signed by a local key source that publishes discovery and a JWKS
//! exactly as authz does (`/.well-known/openid-configuration`, `jwks_uri`); idp's guard reads
//! them as it reads authz's. The real authz issuing them is covered by the e2e test.

use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use issuer::jws::Signer;
use issuer::{Algorithm, PrivateKey};
use reqwest::Method;
use serde_json::{Value, json};
use storage::testing::TestDatabase;

use crate::fake_authz::Call;
use crate::harness::{Browser, Idp, PASSWORD, start};

const ALL: &str = "admin:users:read admin:users:write admin:sessions:read \
                   admin:sessions:write admin:audit:read";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .try_into()
        .unwrap()
}

/// Publishes discovery and the JWKS of one ES256 key on loopback port 0, and signs access
/// tokens with it.
struct Issuer {
    url: String,
    key: std::sync::Arc<PrivateKey>,
    _server: actix_web::dev::ServerHandle,
}

impl Issuer {
    async fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let key = std::sync::Arc::new(PrivateKey::generate(Algorithm::ES256, 2048).unwrap());
        let jwks = issuer::jwks::document(std::iter::once(key.public_jwk())).unwrap();
        let discovery = json!({"issuer": url, "jwks_uri": format!("{url}/jwks")}).to_string();
        let (signer, base) = (key.clone(), url.clone());
        let server = HttpServer::new(move || {
            let (jwks, discovery) = (jwks.clone(), discovery.clone());
            let (signer, base) = (signer.clone(), base.clone());
            App::new()
                .route(
                    "/token",
                    web::post().to(
                        move |req: actix_web::HttpRequest,
                              form: web::Form<Vec<(String, String)>>| {
                            let (signer, base) = (signer.clone(), base.clone());
                            async move { token_endpoint(&signer, &base, &req, &form) }
                        },
                    ),
                )
                .route(
                    "/.well-known/openid-configuration",
                    web::get().to(move || {
                        let d = discovery.clone();
                        async move { HttpResponse::Ok().content_type("application/json").body(d) }
                    }),
                )
                .route(
                    "/jwks",
                    web::get().to(move || {
                        let j = jwks.clone();
                        async move { HttpResponse::Ok().content_type("application/json").body(j) }
                    }),
                )
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            url,
            key,
            _server: handle,
        }
    }

    /// An access token of client `ops` with `scope`, `changes` applied to its claims
    /// (`null` removes one).
    fn token_with(&self, scope: &str, changes: Value) -> String {
        sign(&self.key, &self.url, scope, changes)
    }

    fn token(&self, scope: &str) -> String {
        self.token_with(scope, json!({}))
    }
}

/// The secret of client `ops` at the key source's token endpoint.
const OPS_SECRET: &str = "ops-secret";

/// RFC 6749 §4.4 client credentials for `ops` (HTTP Basic, §2.3.1): the CLI's `--url`
/// mode gets its token here.
fn token_endpoint(
    key: &PrivateKey,
    issuer: &str,
    req: &actix_web::HttpRequest,
    form: &[(String, String)],
) -> HttpResponse {
    use base64::Engine;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("ops:{OPS_SECRET}"))
    );
    if req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        != Some(&expected)
    {
        return HttpResponse::Unauthorized()
            .insert_header(("WWW-Authenticate", "Basic"))
            .json(json!({"error": "invalid_client"}));
    }
    let field = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if field("grant_type") != Some("client_credentials") {
        return HttpResponse::BadRequest().json(json!({"error": "unsupported_grant_type"}));
    }
    let scope = field("scope").unwrap_or_default();
    HttpResponse::Ok().json(json!({
        "access_token": sign(key, issuer, scope, json!({})),
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": scope,
    }))
}

fn sign(key: &PrivateKey, issuer: &str, scope: &str, changes: Value) -> String {
    let mut claims = json!({
        "iss": issuer,
        "sub": "ops",
        "client_id": "ops",
        "aud": [issuer],
        "exp": now() + 300,
        "iat": now(),
        "jti": format!("j{}", now()),
        "scope": scope,
    });
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            claims.as_object_mut().unwrap().remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    Signer::new(key)
        .unwrap()
        .sign_jwt("at+jwt", &claims)
        .unwrap()
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

struct Env {
    idp: Idp,
    issuer: Issuer,
    http: reqwest::Client,
    token: String,
}

async fn start_env(db: TestDatabase, tweak: impl FnOnce(&mut idp::IdpConfig)) -> Env {
    let issuer = Issuer::start().await;
    let url = issuer.url.clone();
    let idp = start(db, move |c| {
        c.admin_api.enabled = true;
        c.admin_api.issuer = url;
        tweak(c);
    })
    .await;
    let env = Env {
        token: issuer.token(ALL),
        idp,
        issuer,
        http: reqwest::Client::new(),
    };
    // The guard loads the keys at start; until then the API answers 503.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let a = env.get("/admin/v1/users", &env.token).await;
        if a.status != 503 {
            assert_eq!(a.status, 200, "{}", a.body);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "keys never loaded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    env
}

impl Env {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.idp.admin)
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Answer {
        let res = req.send().await.unwrap();
        let (status, headers) = (res.status().as_u16(), res.headers().clone());
        let text = res.text().await.unwrap();
        Answer {
            status,
            headers,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
        }
    }

    async fn get(&self, path: &str, token: &str) -> Answer {
        self.send(self.http.get(self.url(path)).bearer_auth(token))
            .await
    }

    async fn write(
        &self,
        method: Method,
        path: &str,
        if_match: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut req = self
            .http
            .request(method, self.url(path))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        if let Some(tag) = if_match {
            req = req.header("if-match", tag);
        }
        self.send(req).await
    }

    async fn create(&self, username: &str) -> Answer {
        self.write(
            Method::POST,
            "/admin/v1/users",
            None,
            Some(json!({
                "username": username,
                "password": PASSWORD,
                "email": format!("{username}@Example.com"),
                "email_verified": true,
                "name": format!("{username} Example"),
                "locale": "en_GB",
            })),
        )
        .await
    }

    async fn audit(&self, query: &str) -> Vec<Value> {
        let a = self
            .get(&format!("/admin/v1/audit?{query}"), &self.token)
            .await;
        assert_eq!(a.status, 200, "{}", a.body);
        a.body["items"].as_array().unwrap().clone()
    }

    /// Signs `username` in through the login page (a new idp session).
    async fn sign_in(&self, username: &str, challenge: &str) {
        self.idp.authz.login(challenge);
        let page = Browser::new(&self.idp)
            .login(challenge, username, PASSWORD)
            .await;
        assert_eq!(page.status, 303, "{}", page.body);
    }
}

/// An RFC 9457 problem with `status` and type `urn:problem-type:admin:<kind>`.
fn assert_problem(a: &Answer, status: u16, kind: &str) {
    assert_eq!(a.status, status, "{}", a.body);
    assert_eq!(
        a.headers["content-type"], "application/problem+json",
        "{}",
        a.body
    );
    assert_eq!(
        a.body["type"],
        format!("urn:problem-type:admin:{kind}"),
        "{}",
        a.body
    );
    assert_eq!(a.body["status"], status);
    assert!(a.body["title"].is_string() && a.body["detail"].is_string());
}

/// Create (201, Location, ETag, no password anywhere), get, replace the profile with
/// If-Match (200; a stale tag 412, none 428), set a password that then signs in, disable
/// (sessions end, authz revokes the grants) and enable, delete (authz revokes; 404 after).
/// Every write is one audit entry by the admin client.
async fn users_lifecycle_with_etags_and_audit(db: TestDatabase) {
    let env = start_env(db, |_| {}).await;
    let created = env.create("Ada").await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created.headers["location"],
        format!("/admin/v1/users/{id}").as_str()
    );
    assert_eq!(created.body["username"], "ada");
    assert_eq!(created.body["email"], "ada@example.com");
    assert_eq!(created.body["locale"], "en-GB");
    assert_eq!(created.body["disabled"], false);
    let text = created.body.to_string();
    assert!(
        !text.contains("password") && !text.contains(PASSWORD),
        "{text}"
    );
    let tag = created.headers["etag"].to_str().unwrap().to_owned();

    let got = env.get(&format!("/admin/v1/users/{id}"), &env.token).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.headers["etag"], tag.as_str());
    assert_eq!(got.headers["cache-control"], "no-store");
    assert_eq!(got.body, created.body);
    // Same view as `idp users show --json`.
    let local = idp::cli::user_json(&env.idp.users.get(&id).await.unwrap());
    assert_eq!(got.body, local);

    let again = env.create("ada").await;
    assert_problem(&again, 409, "conflict");

    let path = format!("/admin/v1/users/{id}");
    let profile = json!({"name": "Ada Lovelace", "email": "ada@example.org", "picture": "https://img.example/ada.png"});
    let missing = env
        .write(Method::PUT, &path, None, Some(profile.clone()))
        .await;
    assert_problem(&missing, 428, "precondition-required");
    let replaced = env
        .write(Method::PUT, &path, Some(&tag), Some(profile.clone()))
        .await;
    assert_eq!(replaced.status, 200, "{}", replaced.body);
    assert_eq!(replaced.body["name"], "Ada Lovelace");
    assert_eq!(replaced.body["email"], "ada@example.org");
    assert_eq!(replaced.body["email_verified"], false);
    assert_eq!(
        replaced.body["locale"],
        Value::Null,
        "a replace removes absent claims"
    );
    let new_tag = replaced.headers["etag"].to_str().unwrap().to_owned();
    assert_ne!(new_tag, tag);
    let stale = env
        .write(
            Method::PUT,
            &path,
            Some(&tag),
            Some(json!({"name": "Someone else"})),
        )
        .await;
    assert_problem(&stale, 412, "precondition-failed");
    assert_eq!(
        env.idp
            .users
            .get(&id)
            .await
            .unwrap()
            .profile
            .name
            .as_deref(),
        Some("Ada Lovelace"),
        "a stale write changes nothing"
    );

    let set = env
        .write(
            Method::POST,
            &format!("{path}/password"),
            None,
            Some(json!({"password": "a brand new password"})),
        )
        .await;
    assert_eq!(set.status, 200, "{}", set.body);
    assert!(!set.body.to_string().contains("brand new"));
    assert!(
        env.idp
            .users
            .authenticate("ada", "a brand new password".into())
            .await
            .unwrap()
            .is_some()
    );
    let short = env
        .write(
            Method::POST,
            &format!("{path}/password"),
            None,
            Some(json!({"password": "short"})),
        )
        .await;
    assert_problem(&short, 400, "invalid-value");
    assert_eq!(short.body["field"], "password");
    env.write(
        Method::POST,
        &format!("{path}/password"),
        None,
        Some(json!({"password": PASSWORD})),
    )
    .await;

    env.sign_in("ada", "c1").await;
    let disabled = env
        .write(Method::POST, &format!("{path}/disable"), None, None)
        .await;
    assert_eq!(disabled.status, 200, "{}", disabled.body);
    assert_eq!(disabled.body["disabled"], true);
    let sessions = env.get(&format!("{path}/sessions"), &env.token).await;
    assert_eq!(
        sessions.body["items"],
        json!([]),
        "disabling ends the sessions"
    );
    assert!(
        env.idp
            .authz
            .calls()
            .iter()
            .any(|c| matches!(c, Call::RevokeSubject(r) if r.subject == id)),
        "authz revokes the grants of a disabled user"
    );
    assert!(
        env.idp
            .users
            .authenticate("ada", PASSWORD.into())
            .await
            .unwrap()
            .is_none()
    );
    let enabled = env
        .write(Method::POST, &format!("{path}/enable"), None, None)
        .await;
    assert_eq!(enabled.body["disabled"], false, "{}", enabled.body);

    let before = env
        .idp
        .authz
        .calls()
        .iter()
        .filter(|c| matches!(c, Call::RevokeSubject(_)))
        .count();
    let stale_delete = env.write(Method::DELETE, &path, Some(&tag), None).await;
    assert_problem(&stale_delete, 412, "precondition-failed");
    let deleted = env.write(Method::DELETE, &path, None, None).await;
    assert_eq!(deleted.status, 204);
    let after = env
        .idp
        .authz
        .calls()
        .iter()
        .filter(|c| matches!(c, Call::RevokeSubject(r) if r.subject == id))
        .count();
    assert_eq!(
        after,
        before + 1,
        "deleting revokes the user's grants at authz"
    );
    assert_problem(&env.get(&path, &env.token).await, 404, "not-found");
    assert_problem(
        &env.write(Method::DELETE, &path, None, None).await,
        404,
        "not-found",
    );

    let trail = env
        .audit(&format!("target_id={id}&actor_id=ops&outcome=success"))
        .await;
    let actions: Vec<&str> = trail
        .iter()
        .rev()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "user.created",
            "user.updated",
            "user.password_set",
            "user.password_set",
            "user.disabled",
            "user.enabled",
            "user.deleted",
        ]
    );
    for e in &trail {
        assert_eq!(e["actor_kind"], "admin_client", "{e}");
        assert_eq!(e["outcome"], "success", "{e}");
        assert_eq!(e["address"], "127.0.0.1", "{e}");
    }
    assert!(!format!("{trail:?}").contains(PASSWORD));
    // Refused writes are recorded too, with the problem type as the reason.
    let refused = env.audit(&format!("target_id={id}&outcome=failure")).await;
    let reasons: Vec<(&str, &str)> = refused
        .iter()
        .rev()
        .map(|e| (e["action"].as_str().unwrap(), e["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(
        reasons,
        [
            ("user.updated", "precondition-required"),
            ("user.updated", "precondition-failed"),
            ("user.password_set", "invalid-value"),
            ("user.deleted", "precondition-failed"),
            ("user.deleted", "not-found"),
        ]
    );
    let conflict = env.audit("action=user.created&outcome=failure").await;
    assert_eq!(conflict.len(), 1, "{conflict:?}");
    assert_eq!(conflict[0]["reason"], "conflict");
    assert_eq!(conflict[0]["target_id"], Value::Null);
    let filtered = env.audit("action=user.deleted&outcome=success").await;
    assert_eq!(filtered.len(), 1);
    let bad = env.get("/admin/v1/audit?action=nope", &env.token).await;
    assert_problem(&bad, 400, "invalid-query");
    assert_eq!(bad.body["field"], "action");
}

/// Pages of users by username; search by part of the username or email, exact username or
/// email, disabled; bad queries name their parameter.
async fn listing_pages_and_searches(db: TestDatabase) {
    let env = start_env(db, |_| {}).await;
    for name in ["erin", "bob", "dave", "carol", "alice"] {
        assert_eq!(env.create(name).await.status, 201);
    }
    env.idp
        .users
        .create(
            idp::users::NewUser {
                username: "x_y".into(),
                profile: idp::users::Profile {
                    email: Some("percent%sign@example.net".into()),
                    ..Default::default()
                },
            },
            PASSWORD.into(),
        )
        .await
        .unwrap();
    let names = |a: &Answer| -> Vec<String> {
        a.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["username"].as_str().unwrap().to_owned())
            .collect()
    };
    let first = env.get("/admin/v1/users?limit=2", &env.token).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(names(&first), ["alice", "bob"]);
    let cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
    let second = env
        .get(
            &format!("/admin/v1/users?limit=2&cursor={cursor}"),
            &env.token,
        )
        .await;
    assert_eq!(names(&second), ["carol", "dave"]);
    let cursor = second.body["next_cursor"].as_str().unwrap().to_owned();
    let last = env
        .get(
            &format!("/admin/v1/users?limit=2&cursor={cursor}"),
            &env.token,
        )
        .await;
    assert_eq!(names(&last), ["erin", "x_y"]);
    assert!(last.body.get("next_cursor").is_none(), "{}", last.body);

    let env = &env;
    let q = |query: &'static str| async move {
        let a = env
            .get(&format!("/admin/v1/users?{query}"), &env.token)
            .await;
        assert_eq!(a.status, 200, "{query}: {}", a.body);
        names(&a)
    };
    assert_eq!(q("q=AR").await, ["carol"]);
    assert_eq!(q("q=example.com").await.len(), 5);
    assert_eq!(q("q=%25").await, ["x_y"], "% is matched literally");
    assert_eq!(q("q=_").await, ["x_y"], "_ is matched literally");
    assert_eq!(q("username=BOB").await, ["bob"]);
    assert_eq!(q("email=dave%40example.com").await, ["dave"]);
    let bob = env.get("/admin/v1/users?username=bob", &env.token).await;
    let bob_id = bob.body["items"][0]["id"].as_str().unwrap().to_owned();
    env.write(
        Method::POST,
        &format!("/admin/v1/users/{bob_id}/disable"),
        None,
        None,
    )
    .await;
    assert_eq!(q("disabled=true").await, ["bob"]);
    assert_eq!(q("disabled=false").await.len(), 5);

    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=many", "limit"),
        ("cursor=%21%21", "cursor"),
        ("sort=name", "sort"),
        ("disabled=maybe", "disabled"),
        ("q=", "q"),
    ] {
        let a = env
            .get(&format!("/admin/v1/users?{query}"), &env.token)
            .await;
        assert_problem(&a, 400, "invalid-query");
        assert_eq!(a.body["field"], field, "{query}");
    }
}

/// No token, a forged, expired, foreign or wrong-audience token: 401 with the RFC 6750
/// challenge; a token without the route's scope: 403 `insufficient_scope` naming it.
async fn tokens_are_checked_with_rfc_6750_challenges(db: TestDatabase) {
    let env = start_env(db, |_| {}).await;
    let none = env.send(env.http.get(env.url("/admin/v1/users"))).await;
    assert_problem(&none, 401, "unauthorized");
    assert_eq!(
        none.headers["www-authenticate"],
        r#"Bearer realm="idp-admin""#
    );
    let other = Issuer::start().await;
    for (what, token) in [
        ("forged", "a.b.c".to_owned()),
        (
            "expired",
            env.issuer
                .token_with(ALL, json!({"exp": now() - 3600, "iat": now() - 7200})),
        ),
        (
            "another issuer's key",
            other.token_with(ALL, json!({"iss": env.issuer.url})),
        ),
        (
            "another audience",
            env.issuer
                .token_with(ALL, json!({"aud": ["https://rs.example"]})),
        ),
    ] {
        let a = env.get("/admin/v1/users", &token).await;
        assert_problem(&a, 401, "invalid-token");
        let challenge = a.headers["www-authenticate"].to_str().unwrap();
        assert!(
            challenge.starts_with(r#"Bearer realm="idp-admin""#)
                && challenge.contains(r#"error="invalid_token""#),
            "{what}: {challenge}"
        );
    }
    let reader = env.issuer.token("admin:users:read");
    assert_eq!(env.get("/admin/v1/users", &reader).await.status, 200);
    for (method, path, scope) in [
        (Method::POST, "/admin/v1/users", "admin:users:write"),
        (
            Method::GET,
            "/admin/v1/users/x/sessions",
            "admin:sessions:read",
        ),
        (
            Method::DELETE,
            "/admin/v1/users/x/sessions",
            "admin:sessions:write",
        ),
        (Method::GET, "/admin/v1/audit", "admin:audit:read"),
    ] {
        let denied = env
            .send(
                env.http
                    .request(method.clone(), env.url(path))
                    .bearer_auth(&reader)
                    .json(&json!({"username": "x", "password": PASSWORD})),
            )
            .await;
        assert_problem(&denied, 403, "insufficient-scope");
        let challenge = denied.headers["www-authenticate"].to_str().unwrap();
        assert!(
            challenge.contains(r#"error="insufficient_scope""#)
                && challenge.contains(&format!(r#"scope="{scope}""#)),
            "{method} {path}: {challenge}"
        );
    }
    assert_eq!(
        env.get("/admin/v1/users?limit=1", &reader).await.status,
        200
    );
    assert_eq!(env.audit("").await.len(), 0, "refused calls wrote nothing");
    let unknown = env.get("/admin/v1/nothing", &reader).await;
    assert_problem(&unknown, 404, "not-found");
}

/// Malformed JSON, wrong types, unknown and missing fields: 400 naming the field; bad
/// values: 400 `invalid-value` naming it; not JSON: 415; too large: 413. Nothing stored.
async fn bad_bodies_name_the_field(db: TestDatabase) {
    let env = start_env(db, |_| {}).await;
    let post = |path: &str, body: String, content_type: &'static str| {
        env.http
            .post(env.url(path))
            .bearer_auth(&env.token)
            .header("content-type", content_type)
            .body(body)
    };
    let malformed = env
        .send(post(
            "/admin/v1/users",
            "{\"username\":".into(),
            "application/json",
        ))
        .await;
    assert_problem(&malformed, 400, "invalid-body");
    for (body, field) in [
        (json!({"username": 7, "password": PASSWORD}), "username"),
        (
            json!({"username": "a", "password": PASSWORD, "email_verified": "yes"}),
            "email_verified",
        ),
        (
            json!({"username": "a", "password": PASSWORD, "colour": "red"}),
            "colour",
        ),
        (
            json!({"username": "a", "password": PASSWORD, "password_hash": "x"}),
            "password_hash",
        ),
        (json!({"username": "a"}), "password"),
    ] {
        let a = env
            .send(post(
                "/admin/v1/users",
                body.to_string(),
                "application/json",
            ))
            .await;
        assert_problem(&a, 400, "invalid-body");
        assert_eq!(a.body["field"], field, "{body}");
    }
    for (body, field) in [
        (
            json!({"username": "has space", "password": PASSWORD}),
            "username",
        ),
        (
            json!({"username": "a", "password": PASSWORD, "email": "nope"}),
            "email",
        ),
        (
            json!({"username": "a", "password": PASSWORD, "locale": "english"}),
            "locale",
        ),
        (
            json!({"username": "a", "password": PASSWORD, "picture": "javascript:x"}),
            "picture",
        ),
        (
            json!({"username": "a", "password": PASSWORD, "name": "a\u{7}b"}),
            "name",
        ),
        (json!({"username": "a", "password": "short"}), "password"),
    ] {
        let a = env
            .send(post(
                "/admin/v1/users",
                body.to_string(),
                "application/json",
            ))
            .await;
        assert_problem(&a, 400, "invalid-value");
        assert_eq!(a.body["field"], field, "{body}");
    }
    let form = env
        .send(post(
            "/admin/v1/users",
            "username=a".into(),
            "application/x-www-form-urlencoded",
        ))
        .await;
    assert_problem(&form, 415, "unsupported-media-type");
    let big = json!({"username": "a", "password": PASSWORD, "name": "a".repeat(70 * 1024)});
    let oversized = env
        .send(post("/admin/v1/users", big.to_string(), "application/json"))
        .await;
    assert_problem(&oversized, 413, "body-too-large");

    let id = env.create("grace").await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/admin/v1/users/{id}");
    let tag = env.get(&path, &env.token).await.headers["etag"]
        .to_str()
        .unwrap()
        .to_owned();
    for (body, field) in [
        (json!({"name": ["x"]}), "name"),
        (json!({"username": "renamed"}), "username"),
    ] {
        let a = env
            .write(Method::PUT, &path, Some(&tag), Some(body.clone()))
            .await;
        assert_problem(&a, 400, "invalid-body");
        assert_eq!(a.body["field"], field, "{body}");
    }
    let bad_tag = env
        .write(Method::PUT, &path, Some("not-a-tag"), Some(json!({})))
        .await;
    assert_problem(&bad_tag, 400, "invalid-header");
    let pw = env
        .write(
            Method::POST,
            &format!("{path}/password"),
            None,
            Some(json!({"password": PASSWORD, "confirm": PASSWORD})),
        )
        .await;
    assert_problem(&pw, 400, "invalid-body");
    assert_eq!(pw.body["field"], "confirm");

    let list = env.get("/admin/v1/users", &env.token).await;
    assert_eq!(
        list.body["items"].as_array().unwrap().len(),
        1,
        "{}",
        list.body
    );
    assert_eq!(
        env.get(&path, &env.token).await.headers["etag"],
        tag.as_str()
    );
}

/// A user's sessions: listed (no secrets), one ended (authz told), the rest ended at once;
/// a session of another user or an unknown one is 404.
async fn sessions_are_listed_and_ended(db: TestDatabase) {
    let env = start_env(db, |_| {}).await;
    let id = env.create("hedy").await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = env.create("ida").await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for challenge in ["s1", "s2", "s3"] {
        env.sign_in("hedy", challenge).await;
    }
    env.sign_in("ida", "s4").await;
    let path = format!("/admin/v1/users/{id}/sessions");
    let listed = env.get(&path, &env.token).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let items = listed.body["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 3, "{}", listed.body);
    assert_eq!(items[0]["amr"], json!(["pwd"]));
    assert!(items[0].get("secret_hash").is_none());
    let first = items[0]["id"].as_str().unwrap().to_owned();

    let ended = env
        .write(Method::DELETE, &format!("{path}/{first}"), None, None)
        .await;
    assert_eq!(ended.status, 204, "{}", ended.body);
    assert!(
        env.idp
            .authz
            .calls()
            .iter()
            .any(|c| matches!(c, Call::SessionEnded(r) if r.session_id == first))
    );
    let again = env
        .write(Method::DELETE, &format!("{path}/{first}"), None, None)
        .await;
    assert_problem(&again, 404, "not-found");
    let ida_sessions = env
        .get(&format!("/admin/v1/users/{other}/sessions"), &env.token)
        .await;
    let ida_session = ida_sessions.body["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let foreign = env
        .write(Method::DELETE, &format!("{path}/{ida_session}"), None, None)
        .await;
    assert_problem(&foreign, 404, "not-found");

    let all = env.write(Method::DELETE, &path, None, None).await;
    assert_eq!(all.status, 200, "{}", all.body);
    assert_eq!(all.body["ended"].as_array().unwrap().len(), 2);
    assert_eq!(env.get(&path, &env.token).await.body["items"], json!([]));
    let none_left = env.write(Method::DELETE, &path, None, None).await;
    assert_eq!(none_left.body["ended"], json!([]));
    assert_eq!(
        env.get(&format!("/admin/v1/users/{other}/sessions"), &env.token)
            .await
            .body["items"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "the other user's session stays"
    );
    assert_problem(
        &env.get("/admin/v1/users/nobody/sessions", &env.token).await,
        404,
        "not-found",
    );
    let trail = env
        .audit("actor_id=ops&target_kind=session&outcome=success")
        .await;
    assert_eq!(trail.len(), 1);
    assert_eq!(trail[0]["action"], "session.ended");
    assert_eq!(trail[0]["target_id"], first.as_str());
    let all_trail = env
        .audit(&format!("action=sessions.ended&target_id={id}"))
        .await;
    assert_eq!(all_trail.len(), 1, "ending no session records nothing");
}

/// The OpenAPI 3.1 document lists every route; every documented operation answers (401
/// without a token) and names its admin scope; Swagger UI is served. With `admin_api`
/// disabled there is no API.
async fn documented_routes_answer(db: TestDatabase) {
    let env = start_env(db, |_| {}).await;
    let doc = env.get("/admin/v1/openapi.json", "").await;
    assert_eq!(doc.status, 200);
    assert_eq!(doc.body["openapi"], "3.1.0");
    assert_eq!(
        doc.body["components"]["securitySchemes"]["admin"]["flows"]["clientCredentials"]["tokenUrl"],
        format!("{}/token", env.issuer.url)
    );
    let mut operations = 0;
    for (path, item) in doc.body["paths"].as_object().unwrap() {
        let concrete = path
            .split('/')
            .map(|seg| if seg.starts_with('{') { "x" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        for method in item.as_object().unwrap().keys() {
            let m: Method = method.to_uppercase().parse().unwrap();
            let a = env
                .send(env.http.request(m.clone(), env.url(&concrete)))
                .await;
            assert_problem(&a, 401, "unauthorized");
            assert!(
                item[method]["security"][0]["admin"][0]
                    .as_str()
                    .unwrap()
                    .starts_with("admin:"),
                "{method} {path} names its scope"
            );
            operations += 1;
        }
    }
    assert_eq!(
        operations, 12,
        "every route of the table is in the document"
    );
    let page = env.http.get(env.url("/admin/docs")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui-bundle.js"));
    assert!(!doc.body.to_string().contains("password_hash"));
}

/// `admin_api.enabled: false`: the admin listener serves no API (metrics stay).
async fn disabled_api_is_absent(db: TestDatabase) {
    let idp = start(db, |_| {}).await;
    let res = reqwest::get(format!("{}/admin/v1/users", idp.admin))
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = reqwest::get(format!("{}/admin/v1/openapi.json", idp.admin))
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert!(idp.metrics().await.contains("idp_"));
}

/// `idp users … --url`: every command against a running idp through its admin API, with
/// a token from the client credentials grant, printing what the local commands print.
async fn cli_drives_a_remote_idp(db: TestDatabase) {
    let env = start_env(db, |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_owned();
    let file = |name: &str, content: &str| {
        let path = d.join(name);
        std::fs::write(&path, content).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let secret = file("ops.secret", &format!("{OPS_SECRET}\n"));
    let password = file("password", PASSWORD);
    let new_password = file("new-password", "another fine password");
    let token_url = format!("{}/token", env.issuer.url);
    let remote = |secret: &str| {
        vec![
            "--url".to_owned(),
            env.idp.admin.clone(),
            "--client-id".to_owned(),
            "ops".to_owned(),
            "--client-secret-file".to_owned(),
            secret.to_owned(),
            "--token-url".to_owned(),
            token_url.clone(),
        ]
    };
    let run = |args: &[&str], secret: &str| {
        let mut all: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        all.extend(remote(secret));
        let d = d.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let args: Vec<&str> = all.iter().map(String::as_str).collect();
                crate::users::idp_env(&d, &args, None, &[])
            })
            .await
            .unwrap()
        }
    };
    let stdout = |out: &std::process::Output| {
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout.clone()).unwrap()
    };

    let created = crate::users::ok_json(
        &run(
            &[
                "users",
                "create",
                "--username",
                "Carl",
                "--email",
                "carl@example.com",
                "--name",
                "Carl",
                "--locale",
                "de",
                "--password-file",
                &password,
                "--json",
            ],
            &secret,
        )
        .await,
    );
    let id = created["id"].as_str().unwrap().to_owned();
    let local = |u: &idp::users::User| idp::cli::user_json(u);
    assert_eq!(created, local(&env.idp.users.get(&id).await.unwrap()));
    let listed = crate::users::ok_json(&run(&["users", "list", "--json"], &secret).await);
    assert_eq!(listed, json!([created]));
    let text = stdout(&run(&["users", "list"], &secret).await);
    assert_eq!(text, format!("{id}  carl  carl@example.com\n"));
    for key in [id.as_str(), "carl", "CARL@example.com"] {
        let shown = crate::users::ok_json(&run(&["users", "show", key, "--json"], &secret).await);
        assert_eq!(shown, created, "{key}");
    }
    let updated = crate::users::ok_json(
        &run(
            &[
                "users",
                "update",
                "carl",
                "--name",
                "Carl Remote",
                "--locale",
                "",
                "--json",
            ],
            &secret,
        )
        .await,
    );
    assert_eq!(updated["name"], "Carl Remote");
    assert_eq!(updated["locale"], Value::Null);
    assert_eq!(updated["email"], "carl@example.com", "other claims stay");
    assert_eq!(updated, local(&env.idp.users.get(&id).await.unwrap()));

    let disabled = stdout(&run(&["users", "disable", "carl"], &secret).await);
    assert!(
        disabled.starts_with(&format!("{id}  carl  carl@example.com  (disabled)\n")),
        "{disabled}"
    );
    assert!(env.idp.users.get(&id).await.unwrap().disabled);
    let enabled = stdout(&run(&["users", "enable", "carl"], &secret).await);
    assert_eq!(enabled, format!("{id}  carl  carl@example.com\n"));
    let set = stdout(
        &run(
            &[
                "users",
                "set-password",
                "carl",
                "--password-file",
                &new_password,
            ],
            &secret,
        )
        .await,
    );
    assert_eq!(set, "password set for carl\n");
    assert!(
        env.idp
            .users
            .authenticate("carl", "another fine password".into())
            .await
            .unwrap()
            .is_some()
    );
    env.idp
        .users
        .set_password(&id, PASSWORD.into())
        .await
        .unwrap();
    env.sign_in("carl", "cli1").await;
    let signed_out = stdout(&run(&["users", "sign-out", "carl"], &secret).await);
    assert_eq!(signed_out, "ended 1 idp session(s) of carl\n");

    let missing = run(&["users", "show", "nobody"], &secret).await;
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("no user nobody"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
    let wrong = file("wrong.secret", "not-the-secret");
    let refused = run(&["users", "list"], &wrong).await;
    assert_ne!(refused.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("invalid_client"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    let d2 = d.clone();
    let incomplete = tokio::task::spawn_blocking(move || {
        crate::users::idp_env(
            &d2,
            &[
                "users",
                "list",
                "--url",
                "http://127.0.0.1:9",
                "--client-id",
                "ops",
            ],
            None,
            &[],
        )
    })
    .await
    .unwrap();
    assert_eq!(incomplete.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&incomplete.stderr).contains("--token-url"),
        "{}",
        String::from_utf8_lossy(&incomplete.stderr)
    );

    let deleted = stdout(&run(&["users", "delete", "carl"], &secret).await);
    assert!(deleted.starts_with("deleted carl\n"), "{deleted}");
    assert!(env.idp.users.by_id(&id).await.unwrap().is_none());
    let trail = env
        .audit(&format!("target_id={id}&actor_id=ops&outcome=success"))
        .await;
    let actions: Vec<&str> = trail
        .iter()
        .rev()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "user.created",
            "user.updated",
            "user.disabled",
            "user.enabled",
            "user.password_set",
            "sessions.ended",
            "user.deleted",
        ]
    );
}

storage::backend_tests!(idp::MIGRATIONS;
    cli_drives_a_remote_idp,
    users_lifecycle_with_etags_and_audit,
    listing_pages_and_searches,
    tokens_are_checked_with_rfc_6750_challenges,
    bad_bodies_name_the_field,
    sessions_are_listed_and_ended,
    documented_routes_answer,
    disabled_api_is_absent,
);
