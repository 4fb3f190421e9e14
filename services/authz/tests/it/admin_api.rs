//! The admin REST API on the admin listener (issue 18), through the in-process server on
//! SQLite and PostgreSQL: tokens from authz's own token endpoint (client credentials with
//! admin scopes), RFC 6750 refusals as RFC 9457 problems, ETag/If-Match, paging, body caps,
//! unknown fields, deleting a client kills its tokens, concurrent replaces.

use std::sync::Arc;

use authz::clients::{Client, Clients, NewClient};
use authz::{Addresses, Application, AuthzConfig};
use domain::basic::encode as basic;
use domain::{ClientId, GrantType, ScopeSet};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use runtime::{GrpcListenConfig, ListenConfig, Shutdown};
use serde_json::{Value, json};
use storage::testing::TestDatabase;

const SECRET: &str = "admin-test-secret";
const ALL: &str = "admin:clients:read admin:clients:write admin:keys:read admin:keys:write \
                   admin:users:read admin:users:write admin:audit:read";

struct Env {
    addrs: Addresses,
    clients: Arc<Clients>,
    http: reqwest::Client,
    shutdown: Shutdown,
    _running: tokio::task::JoinHandle<Result<(), authz::AuthzError>>,
}

impl Drop for Env {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

fn config(db: &TestDatabase) -> AuthzConfig {
    let mut c = AuthzConfig {
        http: ListenConfig::loopback(0),
        grpc: GrpcListenConfig::loopback(0),
        admin: ListenConfig::loopback(0),
        database: db.config().clone(),
        ..AuthzConfig::default()
    };
    c.keys.encryption_key = Some(config::Secret::new(crate::cli::TEST_KEK.to_owned()));
    c
}

fn machine(id: &str, scope: &str) -> NewClient {
    let mut c = Client::new(ClientId::parse(id).unwrap(), id.to_owned());
    c.grant_types = vec![GrantType::ClientCredentials];
    c.scopes = ScopeSet::parse(scope).unwrap();
    NewClient {
        client: c,
        secret: Some(SECRET.to_owned()),
    }
}

async fn start(db: &TestDatabase) -> Env {
    let shutdown = Shutdown::new();
    let app = Application::build(config(db), shutdown.clone())
        .await
        .unwrap();
    let clients = Arc::clone(app.clients());
    clients.create(machine("ops", ALL)).await.unwrap();
    clients
        .create(machine("reader", "admin:clients:read"))
        .await
        .unwrap();
    let mut rs = machine("rs", "read");
    rs.client.can_introspect = true;
    clients.create(rs).await.unwrap();
    Env {
        addrs: app.addresses(),
        clients,
        http: reqwest::Client::new(),
        _running: tokio::spawn(app.run()),
        shutdown,
    }
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Env {
    fn admin(&self, path: &str) -> String {
        format!("http://{}{path}", self.addrs.admin)
    }

    async fn token_for(&self, id: &str, scope: &str) -> String {
        let res = self
            .http
            .post(format!("http://{}/token", self.addrs.http))
            .header("authorization", basic(id, SECRET))
            .form(&[("grant_type", "client_credentials"), ("scope", scope)])
            .send()
            .await
            .unwrap();
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    async fn token(&self) -> String {
        self.token_for("ops", ALL).await
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Answer {
        let res = req.send().await.unwrap();
        let (status, headers) = (res.status(), res.headers().clone());
        let text = res.text().await.unwrap();
        Answer {
            status,
            headers,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
        }
    }

    async fn get(&self, path: &str, token: &str) -> Answer {
        self.send(self.http.get(self.admin(path)).bearer_auth(token))
            .await
    }
}

/// An RFC 9457 problem with `status` and type `urn:problem-type:admin:<kind>`.
fn assert_problem(a: &Answer, status: u16, kind: &str) {
    assert_eq!(a.status.as_u16(), status, "{}", a.body);
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

async fn listing_pages_and_filters(db: TestDatabase) {
    let env = start(&db).await;
    let token = env.token().await;
    for i in 0..5 {
        let mut new = machine(&format!("svc-{i}"), "read");
        if i % 2 == 0 {
            new.client.first_party = true;
        }
        env.clients.create(new).await.unwrap();
    }
    let first = env.get("/admin/v1/clients?limit=3", &token).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.headers["cache-control"], "no-store");
    let ids = |a: &Answer| -> Vec<String> {
        a.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["client_id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&first), ["ops", "reader", "rs"]);
    assert!(first.body["items"][0].get("client_secret").is_none());
    let cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
    let second = env
        .get(
            &format!("/admin/v1/clients?limit=3&cursor={cursor}"),
            &token,
        )
        .await;
    assert_eq!(ids(&second), ["svc-0", "svc-1", "svc-2"]);
    let cursor = second.body["next_cursor"].as_str().unwrap().to_owned();
    let last = env
        .get(
            &format!("/admin/v1/clients?limit=3&cursor={cursor}"),
            &token,
        )
        .await;
    assert_eq!(ids(&last), ["svc-3", "svc-4"]);
    assert!(last.body.get("next_cursor").is_none(), "{}", last.body);

    let first_party = env.get("/admin/v1/clients?first_party=true", &token).await;
    assert_eq!(ids(&first_party), ["svc-0", "svc-2", "svc-4"]);
    let grant = env
        .get("/admin/v1/clients?grant_type=authorization_code", &token)
        .await;
    assert_eq!(ids(&grant), Vec::<String>::new());

    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=many", "limit"),
        ("cursor=%21%21", "cursor"),
        ("sort=name", "sort"),
    ] {
        let a = env.get(&format!("/admin/v1/clients?{query}"), &token).await;
        assert_problem(&a, 400, "invalid-query");
        assert_eq!(a.body["field"], field, "{query}");
    }
}

async fn tokens_are_checked_with_rfc_6750_challenges(db: TestDatabase) {
    let env = start(&db).await;
    let none = env.send(env.http.get(env.admin("/admin/v1/clients"))).await;
    assert_problem(&none, 401, "unauthorized");
    assert_eq!(
        none.headers["www-authenticate"],
        r#"Bearer realm="authz-admin""#
    );

    let forged = env.get("/admin/v1/clients", "a.b.c").await;
    assert_problem(&forged, 401, "invalid-token");
    assert!(
        none.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer realm"),
    );
    assert!(
        forged.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains(r#"error="invalid_token""#)
    );

    let reader = env.token_for("reader", "admin:clients:read").await;
    assert_eq!(env.get("/admin/v1/clients", &reader).await.status, 200);
    let denied = env
        .send(
            env.http
                .post(env.admin("/admin/v1/clients"))
                .bearer_auth(&reader)
                .json(&json!({"client_name": "x"})),
        )
        .await;
    assert_problem(&denied, 403, "insufficient-scope");
    let challenge = denied.headers["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains(r#"error="insufficient_scope""#),
        "{challenge}"
    );
    assert!(
        challenge.contains(r#"scope="admin:clients:write""#),
        "{challenge}"
    );
    assert_eq!(
        env.send(
            env.http
                .get(env.admin("/admin/v1/clients?access_token=x"))
                .bearer_auth(&reader)
        )
        .await
        .status,
        400
    );

    let unknown = env.get("/admin/v1/nothing", &reader).await;
    assert_problem(&unknown, 404, "not-found");
}

impl Env {
    async fn write(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        if_match: Option<&str>,
        body: Value,
    ) -> Answer {
        let mut req = self
            .http
            .request(method, self.admin(path))
            .bearer_auth(token)
            .json(&body);
        if let Some(tag) = if_match {
            req = req.header("if-match", tag);
        }
        self.send(req).await
    }

    async fn active(&self, token: &str) -> bool {
        let res = self
            .http
            .post(format!("http://{}/introspect", self.addrs.http))
            .header("authorization", basic("rs", SECRET))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        body["active"].as_bool().unwrap()
    }
}

async fn client_writes_with_etags(db: TestDatabase) {
    use reqwest::Method;
    let env = start(&db).await;
    let token = env.token().await;
    let created = env
        .write(
            Method::POST,
            "/admin/v1/clients",
            &token,
            None,
            json!({"client_id": "billing", "client_name": "Billing", "scope": "read write",
                   "grant_types": ["client_credentials"]}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.headers["location"], "/admin/v1/clients/billing");
    let secret = created.body["client_secret"].as_str().unwrap().to_owned();
    assert!(secret.len() >= 43);
    let tag = created.headers["etag"].to_str().unwrap().to_owned();
    assert_eq!(tag, format!("\"{}\"", created.body["revision"]));

    // The secret is never shown again, and it works at the token endpoint.
    let read = env.get("/admin/v1/clients/billing", &token).await;
    assert_eq!(read.status, 200);
    assert!(read.body.get("client_secret").is_none(), "{}", read.body);
    assert!(!read.body.to_string().contains(&secret));
    assert_eq!(read.headers["etag"].to_str().unwrap(), tag);
    assert_eq!(read.body["secrets"].as_array().unwrap().len(), 1);
    let res = env
        .http
        .post(format!("http://{}/token", env.addrs.http))
        .header("authorization", basic("billing", &secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let again = env
        .write(
            Method::POST,
            "/admin/v1/clients",
            &token,
            None,
            json!({"client_id": "billing", "client_name": "Other"}),
        )
        .await;
    assert_problem(&again, 409, "conflict");

    let replace = json!({"client_name": "Billing v2", "scope": "read",
                         "grant_types": ["client_credentials"]});
    let unconditional = env
        .write(
            Method::PUT,
            "/admin/v1/clients/billing",
            &token,
            None,
            replace.clone(),
        )
        .await;
    assert_problem(&unconditional, 428, "precondition-required");
    assert_eq!(unconditional.body["field"], "If-Match");
    let stale = env
        .write(
            Method::PUT,
            "/admin/v1/clients/billing",
            &token,
            Some("\"999\""),
            replace.clone(),
        )
        .await;
    assert_problem(&stale, 412, "precondition-failed");
    let replaced = env
        .write(
            Method::PUT,
            "/admin/v1/clients/billing",
            &token,
            Some(&tag),
            replace.clone(),
        )
        .await;
    assert_eq!(replaced.status, 200, "{}", replaced.body);
    assert_eq!(replaced.body["client_name"], "Billing v2");
    assert_eq!(replaced.body["scope"], "read");
    let new_tag = replaced.headers["etag"].to_str().unwrap().to_owned();
    assert_ne!(new_tag, tag);
    // The old tag is stale now.
    let late = env
        .write(
            Method::PUT,
            "/admin/v1/clients/billing",
            &token,
            Some(&tag),
            replace.clone(),
        )
        .await;
    assert_problem(&late, 412, "precondition-failed");
    let renamed = env
        .write(
            Method::PUT,
            "/admin/v1/clients/billing",
            &token,
            Some(&new_tag),
            json!({"client_id": "other", "client_name": "x"}),
        )
        .await;
    assert_problem(&renamed, 400, "invalid-value");
    assert_eq!(renamed.body["field"], "client_id");
    let missing = env
        .write(
            Method::PUT,
            "/admin/v1/clients/nobody",
            &token,
            Some("*"),
            replace,
        )
        .await;
    assert_problem(&missing, 404, "not-found");

    // Rotation: the new secret works, the old one stops with grace 0; the ETag moves.
    let rotated = env
        .write(
            Method::POST,
            "/admin/v1/clients/billing/secret",
            &token,
            None,
            json!({"grace": 0}),
        )
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let fresh = rotated.body["client_secret"].as_str().unwrap();
    assert_ne!(fresh, secret);
    assert_ne!(rotated.headers["etag"].to_str().unwrap(), new_tag);
    for (s, want) in [(fresh, 200), (secret.as_str(), 401)] {
        let res = env
            .http
            .post(format!("http://{}/token", env.addrs.http))
            .header("authorization", basic("billing", s))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), want);
    }
    let too_long = env
        .write(
            Method::POST,
            "/admin/v1/clients/billing/secret",
            &token,
            None,
            json!({"grace": 99_999_999}),
        )
        .await;
    assert_problem(&too_long, 400, "invalid-value");
    assert_eq!(too_long.body["field"], "grace");

    // Every write is in the audit trail: who, what, target, outcome.
    let trail = env
        .get(
            "/admin/v1/audit?target_kind=client&target_id=billing",
            &token,
        )
        .await;
    assert_eq!(trail.status, 200, "{}", trail.body);
    let events: Vec<(String, String, String)> = trail.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e["actor_kind"], "admin_client");
            assert_eq!(e["actor_id"], "ops");
            assert_eq!(e["address"], "127.0.0.1");
            (
                e["action"].as_str().unwrap().to_owned(),
                e["outcome"].as_str().unwrap().to_owned(),
                e["reason"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let has = |action: &str, outcome: &str, reason: &str| {
        events
            .iter()
            .any(|e| e.0 == action && e.1 == outcome && e.2 == reason)
    };
    assert!(has("client.created", "success", ""), "{events:?}");
    assert!(has("client.created", "failure", "conflict"), "{events:?}");
    assert!(has("client.updated", "success", ""), "{events:?}");
    assert!(
        has("client.updated", "failure", "precondition-failed"),
        "{events:?}"
    );
    assert!(
        has("client.updated", "failure", "precondition-required"),
        "{events:?}"
    );
    assert!(has("client.secret_rotated", "success", ""), "{events:?}");
    let only = env
        .get(
            "/admin/v1/audit?action=client.secret_rotated&outcome=success",
            &token,
        )
        .await;
    assert_eq!(
        only.body["items"].as_array().unwrap().len(),
        1,
        "{}",
        only.body
    );
    let bad = env.get("/admin/v1/audit?action=client.eaten", &token).await;
    assert_problem(&bad, 400, "invalid-query");
    assert_eq!(bad.body["field"], "action");
    let reader = env.token_for("reader", "admin:clients:read").await;
    assert_problem(
        &env.get("/admin/v1/audit", &reader).await,
        403,
        "insufficient-scope",
    );
}

async fn bad_bodies_name_the_field(db: TestDatabase) {
    let env = start(&db).await;
    let token = env.token().await;
    let post = |body: reqwest::Body, content_type: &'static str| {
        env.http
            .post(env.admin("/admin/v1/clients"))
            .bearer_auth(&token)
            .header("content-type", content_type)
            .body(body)
    };
    let malformed = env
        .send(post("{\"client_name\":".into(), "application/json"))
        .await;
    assert_problem(&malformed, 400, "invalid-body");
    for (body, field) in [
        (json!({"client_name": 7}), "client_name"),
        (
            json!({"client_name": "a", "redirect_uris": ["https://a/cb", 3]}),
            "redirect_uris[1]",
        ),
        (json!({"client_name": "a", "colour": "red"}), "colour"),
        (
            json!({"client_name": "a", "token_exchange": {"audiences": [], "x": 1}}),
            "token_exchange.x",
        ),
        (json!({"scope": "read"}), "client_name"),
    ] {
        let a = env
            .send(post(body.to_string().into(), "application/json"))
            .await;
        assert_problem(&a, 400, "invalid-body");
        assert_eq!(a.body["field"], field, "{body}");
    }
    for (body, field) in [
        (
            json!({"client_name": "a", "redirect_uris": ["https://a/cb#x"]}),
            "redirect_uris[0]",
        ),
        (
            json!({"client_name": "a", "grant_types": ["password"]}),
            "grant_types[0]",
        ),
        (
            json!({"client_name": "a", "access_token_ttl": 0}),
            "access_token_ttl",
        ),
        (
            json!({"client_name": "a", "token_endpoint_auth_method": "none"}),
            "grant_types",
        ),
        (
            json!({"client_name": "a", "allowed_origins": ["https://a/path"]}),
            "allowed_origins[0]",
        ),
    ] {
        let a = env
            .send(post(body.to_string().into(), "application/json"))
            .await;
        assert_problem(&a, 400, "invalid-value");
        assert_eq!(a.body["field"], field, "{body}");
    }
    let form = env
        .send(post(
            "client_name=a".into(),
            "application/x-www-form-urlencoded",
        ))
        .await;
    assert_problem(&form, 415, "unsupported-media-type");
    let big = json!({"client_name": "a".repeat(70 * 1024)}).to_string();
    let oversized = env.send(post(big.into(), "application/json")).await;
    assert_problem(&oversized, 413, "body-too-large");
    // Nothing was stored by any of them.
    let list = env.get("/admin/v1/clients", &token).await;
    assert_eq!(
        list.body["items"].as_array().unwrap().len(),
        3,
        "{}",
        list.body
    );
}

async fn deleting_a_client_kills_its_tokens(db: TestDatabase) {
    use reqwest::Method;
    let env = start(&db).await;
    let token = env.token().await;
    for format in ["opaque", "jwt"] {
        let id = format!("doomed-{format}");
        let created = env
            .write(
                Method::POST,
                "/admin/v1/clients",
                &token,
                None,
                json!({"client_id": id, "client_name": "Doomed", "access_token_format": format}),
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.body);
        let secret = created.body["client_secret"].as_str().unwrap();
        let res = env
            .http
            .post(format!("http://{}/token", env.addrs.http))
            .header("authorization", basic(&id, secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        let issued: Value = res.json().await.unwrap();
        let access = issued["access_token"].as_str().unwrap().to_owned();
        assert!(env.active(&access).await, "{format}");
        let stale = env
            .send(
                env.http
                    .delete(env.admin(&format!("/admin/v1/clients/{id}")))
                    .bearer_auth(&token)
                    .header("if-match", "\"999\""),
            )
            .await;
        assert_problem(&stale, 412, "precondition-failed");
        let deleted = env
            .send(
                env.http
                    .delete(env.admin(&format!("/admin/v1/clients/{id}")))
                    .bearer_auth(&token),
            )
            .await;
        assert_eq!(deleted.status, 204);
        assert!(
            !env.active(&access).await,
            "{format} token dies with its client"
        );
        let gone = env.get(&format!("/admin/v1/clients/{id}"), &token).await;
        assert_problem(&gone, 404, "not-found");
        let twice = env
            .send(
                env.http
                    .delete(env.admin(&format!("/admin/v1/clients/{id}")))
                    .bearer_auth(&token),
            )
            .await;
        assert_problem(&twice, 404, "not-found");
    }
}

async fn concurrent_replaces_one_wins(db: TestDatabase) {
    use reqwest::Method;
    let env = start(&db).await;
    let token = env.token().await;
    let read = env.get("/admin/v1/clients/rs", &token).await;
    let tag = read.headers["etag"].to_str().unwrap().to_owned();
    let body = |name: &str| json!({"client_name": name, "scope": "read", "introspect": true});
    let (a, b) = tokio::join!(
        env.write(
            Method::PUT,
            "/admin/v1/clients/rs",
            &token,
            Some(&tag),
            body("A")
        ),
        env.write(
            Method::PUT,
            "/admin/v1/clients/rs",
            &token,
            Some(&tag),
            body("B")
        ),
    );
    let mut statuses = [a.status.as_u16(), b.status.as_u16()];
    statuses.sort();
    assert_eq!(statuses, [200, 412], "{} / {}", a.body, b.body);
    let (winner, loser) = if a.status == 200 { (&a, &b) } else { (&b, &a) };
    assert_problem(loser, 412, "precondition-failed");
    let after = env.get("/admin/v1/clients/rs", &token).await;
    assert_eq!(after.body["client_name"], winner.body["client_name"]);
    assert_eq!(after.headers["etag"], winner.headers["etag"]);
    assert_eq!(
        after.body["revision"].as_i64().unwrap(),
        read.body["revision"].as_i64().unwrap() + 1
    );
}

async fn keys_and_user_grants(db: TestDatabase) {
    use reqwest::Method;
    let env = start(&db).await;
    let token = env.token().await;
    let keys = env.get("/admin/v1/keys", &token).await;
    assert_eq!(keys.status, 200, "{}", keys.body);
    let before = keys.body.as_array().unwrap().len();
    assert!(before >= 1);
    assert!(keys.body[0].get("private_key").is_none());
    assert!(keys.body[0]["public_jwk"]["kty"].is_string());
    let rotated = env
        .write(
            Method::POST,
            "/admin/v1/keys",
            &token,
            None,
            json!({"alg": "ES256"}),
        )
        .await;
    assert_eq!(rotated.status, 201, "{}", rotated.body);
    let kid = rotated.body["kid"].as_str().unwrap().to_owned();
    let bad = env
        .write(
            Method::POST,
            "/admin/v1/keys",
            &token,
            None,
            json!({"alg": "none"}),
        )
        .await;
    assert_problem(&bad, 400, "invalid-value");
    assert_eq!(bad.body["field"], "alg");
    let retire = format!("/admin/v1/keys/{kid}/retire");
    let retired = env
        .write(Method::POST, &retire, &token, None, json!({}))
        .await;
    assert_eq!(retired.status, 200, "{}", retired.body);
    assert_eq!(retired.body["state"], "retired");
    let again = env
        .write(Method::POST, &retire, &token, None, json!({}))
        .await;
    assert_problem(&again, 409, "conflict");
    let unknown = env
        .write(
            Method::POST,
            "/admin/v1/keys/nope/retire",
            &token,
            None,
            json!({}),
        )
        .await;
    assert_problem(&unknown, 404, "not-found");
    // The admin token is still accepted: its key is kept.
    assert_eq!(env.get("/admin/v1/keys", &token).await.status, 200);

    let consents = env.get("/admin/v1/users/alice/consents", &token).await;
    assert_eq!(consents.status, 200);
    assert_eq!(consents.body, json!([]));
    let none = env
        .send(
            env.http
                .delete(env.admin("/admin/v1/users/alice/consents/rs"))
                .bearer_auth(&token),
        )
        .await;
    assert_problem(&none, 404, "not-found");
    let out = env
        .write(
            Method::POST,
            "/admin/v1/users/alice/sign-out",
            &token,
            None,
            json!({}),
        )
        .await;
    assert_eq!(out.status, 200, "{}", out.body);
    assert_eq!(out.body, json!({"grants": 0, "sessions": 0}));
    let reader = env.token_for("reader", "admin:clients:read").await;
    let denied = env.get("/admin/v1/keys", &reader).await;
    assert_problem(&denied, 403, "insufficient-scope");
}

/// Every operation of the served OpenAPI document answers (here: 401 without a token, so
/// it is routed), and Swagger UI is served offline under a CSP.
async fn documented_routes_answer(db: TestDatabase) {
    let env = start(&db).await;
    let doc = env.get("/admin/v1/openapi.json", "").await;
    assert_eq!(doc.status, 200);
    assert_eq!(doc.body["openapi"], "3.1.0");
    let flows = &doc.body["components"]["securitySchemes"]["admin"]["flows"];
    assert!(
        flows["clientCredentials"]["tokenUrl"]
            .as_str()
            .unwrap()
            .ends_with("/token")
    );
    let mut operations = 0;
    for (path, item) in doc.body["paths"].as_object().unwrap() {
        let concrete = path
            .split('/')
            .map(|seg| if seg.starts_with('{') { "x" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        for method in item.as_object().unwrap().keys() {
            let method: reqwest::Method = method.to_uppercase().parse().unwrap();
            let a = env
                .send(env.http.request(method.clone(), env.admin(&concrete)))
                .await;
            assert_problem(&a, 401, "unauthorized");
            assert!(
                item[method.as_str().to_lowercase()]["security"][0]["admin"][0]
                    .as_str()
                    .unwrap()
                    .starts_with("admin:"),
                "{method} {path} names its scope"
            );
            operations += 1;
        }
    }
    assert_eq!(
        operations, 19,
        "every route of the table is in the document"
    );
    let page = env.http.get(env.admin("/admin/docs")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );
    for asset in [
        "swagger-ui-bundle.js",
        "swagger-ui-standalone-preset.js",
        "swagger-ui.css",
        "init.js",
    ] {
        let res = env
            .http
            .get(env.admin(&format!("/admin/docs/{asset}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{asset}");
        assert!(html.contains(asset), "{asset}");
    }
}

/// `serve --demo` seeds demo-admin: its client credentials token carries every admin scope
/// and works on the admin API, and the admin listener's origin may call the token endpoint
/// from Swagger UI (CORS).
async fn demo_admin_drives_the_api(db: TestDatabase) {
    use authz::demo_seed::{self, ADMIN_CLIENT_ID, ADMIN_CLIENT_SECRET, Demo};
    let env = start(&db).await;
    let lines = demo_seed::seed_admin(&env.clients, Demo::Seed, env.addrs.admin)
        .await
        .unwrap();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains("demo-admin / demo-admin-secret"),
        "{lines:?}"
    );
    let again = demo_seed::seed_admin(&env.clients, Demo::Seed, env.addrs.admin)
        .await
        .unwrap();
    assert!(again.is_empty(), "{again:?}");
    let origin = format!("http://127.0.0.1:{}", env.addrs.admin.port());
    // Swagger UI's token request is preflighted (Basic credentials, X-Requested-With).
    let preflight = env
        .http
        .request(
            reqwest::Method::OPTIONS,
            format!("http://{}/token", env.addrs.http),
        )
        .header("origin", &origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type,x-requested-with",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        origin.as_str()
    );
    let allowed = preflight.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for header in ["authorization", "content-type", "x-requested-with"] {
        assert!(allowed.contains(header), "{header} in {allowed}");
    }
    let res = env
        .http
        .post(format!("http://{}/token", env.addrs.http))
        .header("authorization", basic(ADMIN_CLIENT_ID, ADMIN_CLIENT_SECRET))
        .header("origin", &origin)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        origin.as_str()
    );
    let body: Value = res.json().await.unwrap();
    let granted = body["scope"].as_str().unwrap();
    for (scope, _) in admin_api::scopes::ALL {
        assert!(
            granted.split(' ').any(|s| s == *scope),
            "{scope} in {granted}"
        );
    }
    let token = body["access_token"].as_str().unwrap();
    let list = env.get("/admin/v1/clients", token).await;
    assert_eq!(list.status, 200);
    assert!(list.body.to_string().contains(ADMIN_CLIENT_ID));
    assert_eq!(env.get("/admin/v1/keys", token).await.status, 200);
}

storage::backend_tests!(authz::MIGRATIONS;
    demo_admin_drives_the_api,
    listing_pages_and_filters,
    tokens_are_checked_with_rfc_6750_challenges,
    client_writes_with_etags,
    bad_bodies_name_the_field,
    deleting_a_client_kills_its_tokens,
    concurrent_replaces_one_wins,
    keys_and_user_grants,
    documented_routes_answer,
    registration_tokens_through_the_api,
    admin_writes_commit_with_their_audit_event,
    oversized_chunked_bodies_get_413_problems,
    cli_url_drives_a_running_authz,
);

// audit trail (issue 18, idpadmin): GET /admin/v1/audit.

/// The trail is listed newest first, filtered and paged; it needs `admin:audit:read`
/// (401/403 with RFC 6750 challenges); a bad filter, cursor, limit or unknown parameter is
/// a 400 problem naming the parameter.
async fn audit_listing_filters_pages_and_refuses_bad_queries(db: TestDatabase) {
    let env = start(&db).await;
    let pool = storage::Database::connect(db.config(), &authz::MIGRATIONS)
        .await
        .unwrap();
    // Distinct times, so "newest first" is well defined.
    let now = audit::unix_ms(std::time::SystemTime::now());
    for (i, id) in (1..).zip(["a", "b", "c"]) {
        audit::record(
            &pool,
            &audit::AuditEvent::new(
                audit::Actor::Client(audit::Ident::new(id)),
                audit::Action::TokenRevoked,
            )
            .at(now + i * 10)
            .target(audit::TargetKind::Client, id)
            .failed("other_client"),
        )
        .await
        .unwrap();
    }
    let none = env.send(env.http.get(env.admin("/admin/v1/audit"))).await;
    assert_problem(&none, 401, "unauthorized");
    assert!(none.headers.contains_key("www-authenticate"));
    let reader = env.token_for("reader", "admin:clients:read").await;
    let denied = env.get("/admin/v1/audit", &reader).await;
    assert_problem(&denied, 403, "insufficient-scope");
    let challenge = denied.headers["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains(r#"scope="admin:audit:read""#),
        "{challenge}"
    );

    let token = env.token_for("ops", "admin:audit:read").await;
    let all = env.get("/admin/v1/audit", &token).await;
    assert_eq!(all.status, 200, "{}", all.body);
    assert_eq!(all.headers["cache-control"], "no-store");
    let items = all.body["items"].as_array().unwrap();
    let keys = env
        .get(
            "/admin/v1/audit?action=key.rotated&since=2000-01-01T00:00:00Z",
            &token,
        )
        .await;
    let made = keys.body["items"].as_array().unwrap().len();
    assert!(made >= 4, "a key per configured algorithm: {}", keys.body);
    // The keys made at start (system) and the three revocations.
    assert_eq!(items.len(), made + 3, "{}", all.body);
    assert_eq!(items[0]["action"], "token.revoked");
    assert_eq!(items[0]["actor_id"], "c", "newest first");

    let mut seen = Vec::new();
    let mut path = "/admin/v1/audit?action=token.revoked&outcome=failure&limit=2".to_owned();
    loop {
        let page = env.get(&path, &token).await;
        assert_eq!(page.status, 200, "{}", page.body);
        for item in page.body["items"].as_array().unwrap() {
            seen.push(item["actor_id"].as_str().unwrap().to_owned());
            assert_eq!(item["reason"], "other_client");
        }
        match page.body["next_cursor"].as_str() {
            Some(c) => {
                path = format!(
                    "/admin/v1/audit?action=token.revoked&outcome=failure&limit=2&cursor={c}"
                )
            }
            None => break,
        }
    }
    assert_eq!(seen, ["c", "b", "a"]);
    let by_target = env
        .get("/admin/v1/audit?target_kind=client&target_id=b", &token)
        .await;
    assert_eq!(by_target.body["items"].as_array().unwrap().len(), 1);
    let future = env
        .get("/admin/v1/audit?since=2999-01-01T00:00:00Z", &token)
        .await;
    assert_eq!(future.body["items"].as_array().unwrap().len(), 0);

    for (query, field) in [
        ("action=nope", Some("action")),
        ("target_kind=planet", Some("target_kind")),
        ("outcome=maybe", Some("outcome")),
        ("since=yesterday", Some("since")),
        ("cursor=garbage", Some("cursor")),
        ("limit=0", Some("limit")),
        ("limit=many", None),
        ("colour=red", None),
    ] {
        let bad = env.get(&format!("/admin/v1/audit?{query}"), &token).await;
        assert_problem(&bad, 400, "invalid-query");
        if let Some(field) = field {
            assert_eq!(bad.body["field"], field, "{query}: {}", bad.body);
        }
    }
}

storage::backend_tests!(authz::MIGRATIONS;
    audit_listing_filters_pages_and_refuses_bad_queries,
);

// admin2: initial access tokens (RFC 7591 §3) through the admin API, audit in the write's
// transaction, 413 for chunked bodies over the cap.

/// Audit events of `action` (newest first) as the audit route lists them.
async fn audit_of(env: &Env, token: &str, action: &str) -> Vec<Value> {
    let a = env
        .get(&format!("/admin/v1/audit?action={action}"), token)
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    a.body["items"].as_array().unwrap().clone()
}

async fn registration_tokens_through_the_api(db: TestDatabase) {
    use reqwest::Method;
    let env = start(&db).await;
    let token = env.token().await;
    let created = env
        .write(
            Method::POST,
            "/admin/v1/registration-tokens",
            &token,
            None,
            json!({"expires_in": 3600, "uses": 2, "scope": "openid profile", "description": "team a"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.headers["cache-control"], "no-store");
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created.headers["location"],
        format!("/admin/v1/registration-tokens/{id}").as_str()
    );
    assert_eq!(created.body["uses_left"], 2);
    assert_eq!(created.body["scope"], "openid profile");
    let value = created.body["token"].as_str().unwrap().to_owned();
    assert!(value.len() >= 32, "{value}");

    // Listed without its value; a reader may list.
    let reader = env.token_for("reader", "admin:clients:read").await;
    let list = env.get("/admin/v1/registration-tokens", &reader).await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert_eq!(list.body.as_array().unwrap().len(), 1);
    assert_eq!(list.body[0]["id"], id.as_str());
    assert_eq!(list.body[0]["description"], "team a");
    assert!(list.body[0].get("token").is_none());
    assert!(!list.body.to_string().contains(&value));

    // The token registers a client at POST /register (RFC 7591 §3).
    let register = |bearer: String| {
        env.http
            .post(format!("http://{}/register", env.addrs.http))
            .bearer_auth(bearer)
            .json(&json!({
                "client_name": "Dynamic",
                "redirect_uris": ["https://dyn.example.test/cb"],
                "grant_types": ["authorization_code"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "client_secret_basic",
                "scope": "openid"
            }))
    };
    let registered = env.send(register(value.clone())).await;
    assert_eq!(registered.status, 201, "{}", registered.body);
    let listed = env.get("/admin/v1/registration-tokens", &token).await;
    assert_eq!(listed.body[0]["uses_left"], 1, "{}", listed.body);

    // Writes need admin:clients:write.
    let denied = env
        .write(
            Method::POST,
            "/admin/v1/registration-tokens",
            &reader,
            None,
            json!({"expires_in": 60}),
        )
        .await;
    assert_problem(&denied, 403, "insufficient-scope");
    assert!(
        denied.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("insufficient_scope")
    );
    let anonymous = env
        .send(env.http.get(env.admin("/admin/v1/registration-tokens")))
        .await;
    assert_problem(&anonymous, 401, "unauthorized");

    // Bad bodies name the field.
    for (body, kind, field) in [
        (json!({"expires_in": 0}), "invalid-value", "expires_in"),
        (
            json!({"expires_in": 60, "uses": 0}),
            "invalid-value",
            "uses",
        ),
        (
            json!({"expires_in": 60, "scope": "a\"b"}),
            "invalid-value",
            "scope",
        ),
        (json!({"expires_in": "soon"}), "invalid-body", "expires_in"),
        (
            json!({"expires_in": 60, "colour": "red"}),
            "invalid-body",
            "colour",
        ),
        (json!({"uses": 3}), "invalid-body", "expires_in"),
    ] {
        let a = env
            .write(
                Method::POST,
                "/admin/v1/registration-tokens",
                &token,
                None,
                body.clone(),
            )
            .await;
        assert_problem(&a, 400, kind);
        assert_eq!(a.body["field"], field, "{body}: {}", a.body);
    }
    assert_eq!(
        env.get("/admin/v1/registration-tokens", &token)
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        1,
        "nothing stored by the refused ones"
    );

    // Revoked at once: the token registers nothing more.
    let path = format!("/admin/v1/registration-tokens/{id}");
    let revoked = env
        .send(env.http.delete(env.admin(&path)).bearer_auth(&token))
        .await;
    assert_eq!(revoked.status, 204, "{}", revoked.body);
    let refused = env.send(register(value.clone())).await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert_eq!(refused.body["error"], "invalid_token", "{}", refused.body);
    let again = env
        .send(env.http.delete(env.admin(&path)).bearer_auth(&token))
        .await;
    assert_problem(&again, 404, "not-found");
    assert_eq!(
        env.get("/admin/v1/registration-tokens", &token).await.body,
        json!([])
    );

    // The audit trail: who minted and revoked which token; the failed revocation too.
    let minted = audit_of(&env, &token, "registration_token.created").await;
    assert_eq!(minted.len(), 1 + 6, "one success, six refusals: {minted:?}");
    let ok: Vec<&Value> = minted
        .iter()
        .filter(|e| e["outcome"] == "success")
        .collect();
    assert_eq!(ok.len(), 1);
    assert_eq!(ok[0]["target_id"], id.as_str());
    assert_eq!(ok[0]["actor_id"], "ops");
    let revocations = audit_of(&env, &token, "registration_token.revoked").await;
    assert_eq!(revocations.len(), 2, "{revocations:?}");
    for e in &revocations {
        assert_eq!(e["target_id"], id.as_str(), "{e}");
    }
    let mut outcomes: Vec<(&str, &str)> = revocations
        .iter()
        .map(|e| {
            (
                e["outcome"].as_str().unwrap(),
                e["reason"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    outcomes.sort_unstable();
    assert_eq!(outcomes, [("failure", "not-found"), ("success", "")]);
}

/// An admin write and its audit event are one transaction: with the audit table gone, the
/// write fails and changes nothing (before, the change committed and only its record was
/// lost). With it, every write's row names the admin client, the action and the target.
async fn admin_writes_commit_with_their_audit_event(db: TestDatabase) {
    use reqwest::Method;
    use storage::diesel_async::RunQueryDsl;
    let env = start(&db).await;
    let token = env.token().await;
    let created = env
        .write(
            Method::POST,
            "/admin/v1/clients",
            &token,
            None,
            json!({"client_id": "audited", "client_name": "Audited"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let tag = created.headers["etag"].to_str().unwrap().to_owned();
    let updated = env
        .write(
            Method::PUT,
            "/admin/v1/clients/audited",
            &token,
            Some(&tag),
            json!({"client_name": "Audited 2"}),
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    let stale = env
        .write(
            Method::PUT,
            "/admin/v1/clients/audited",
            &token,
            Some(&tag),
            json!({"client_name": "Audited 3"}),
        )
        .await;
    assert_problem(&stale, 412, "precondition-failed");
    for (action, outcomes) in [
        ("client.created", vec!["success"]),
        ("client.updated", vec!["failure", "success"]),
    ] {
        let events = audit_of(&env, &token, action).await;
        let mut got: Vec<&str> = events
            .iter()
            .map(|e| e["outcome"].as_str().unwrap())
            .collect();
        got.sort_unstable();
        assert_eq!(got, outcomes, "{action}: {events:?}");
        for e in &events {
            assert_eq!(e["actor_kind"], "admin_client", "{e}");
            assert_eq!(e["actor_id"], "ops", "{e}");
            assert_eq!(e["target_kind"], "client", "{e}");
            assert_eq!(e["target_id"], "audited", "{e}");
        }
    }

    // The audit table goes away: every write fails whole.
    let pool = storage::Database::connect(db.config(), &authz::MIGRATIONS)
        .await
        .unwrap();
    let mut conn = pool.get().await.unwrap();
    storage::with_conn!(&mut conn, |c| diesel::sql_query(
        "ALTER TABLE audit_events RENAME TO audit_events_away"
    )
    .execute(c)
    .await)
    .unwrap();
    let keys_before = env.get("/admin/v1/keys", &token).await.body;
    let refused = env
        .write(
            Method::POST,
            "/admin/v1/clients",
            &token,
            None,
            json!({"client_id": "unrecorded", "client_name": "Unrecorded"}),
        )
        .await;
    assert!(refused.status.is_server_error(), "{}", refused.body);
    assert_eq!(refused.headers["content-type"], "application/problem+json");
    assert_problem(
        &env.get("/admin/v1/clients/unrecorded", &token).await,
        404,
        "not-found",
    );
    let kept = env
        .send(
            env.http
                .delete(env.admin("/admin/v1/clients/audited"))
                .bearer_auth(&token),
        )
        .await;
    assert!(kept.status.is_server_error(), "{}", kept.body);
    assert_eq!(
        env.get("/admin/v1/clients/audited", &token).await.body["client_name"],
        "Audited 2"
    );
    let rotated = env
        .write(
            Method::POST,
            "/admin/v1/keys",
            &token,
            None,
            json!({"alg": "ES256"}),
        )
        .await;
    assert!(rotated.status.is_server_error(), "{}", rotated.body);
    assert_eq!(env.get("/admin/v1/keys", &token).await.body, keys_before);
    let minted = env
        .write(
            Method::POST,
            "/admin/v1/registration-tokens",
            &token,
            None,
            json!({"expires_in": 60}),
        )
        .await;
    assert!(minted.status.is_server_error(), "{}", minted.body);

    storage::with_conn!(&mut conn, |c| diesel::sql_query(
        "ALTER TABLE audit_events_away RENAME TO audit_events"
    )
    .execute(c)
    .await)
    .unwrap();
    assert_eq!(
        env.get("/admin/v1/registration-tokens", &token).await.body,
        json!([])
    );
    assert!(audit_of(&env, &token, "client.deleted").await.is_empty());
    let deleted = env
        .send(
            env.http
                .delete(env.admin("/admin/v1/clients/audited"))
                .bearer_auth(&token),
        )
        .await;
    assert_eq!(deleted.status, 204);
    let events = audit_of(&env, &token, "client.deleted").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["outcome"], "success");
    assert_eq!(events[0]["target_id"], "audited");
}

/// RFC 9110 §15.5.14: a body over the cap is refused with 413 as a problem (RFC 9457)
/// naming the limit, also when it comes chunked (no Content-Length to check up front).
async fn oversized_chunked_bodies_get_413_problems(db: TestDatabase) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let env = start(&db).await;
    let token = env.token().await;
    let mut stream = tokio::net::TcpStream::connect(env.addrs.admin)
        .await
        .unwrap();
    let head = format!(
        "POST /admin/v1/clients HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        env.addrs.admin
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = "a".repeat(16 * 1024);
    let mut answer = Vec::new();
    // Up to 80 KiB in 16 KiB chunks (the server may answer and close before the end).
    let mut sent = stream
        .write_all(b"10\r\n{\"client_name\":\"\r\n")
        .await
        .is_ok();
    for _ in 0..5 {
        if !sent {
            break;
        }
        sent = stream
            .write_all(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes())
            .await
            .is_ok();
    }
    if sent {
        let _ = stream.write_all(b"2\r\n\"}\r\n0\r\n\r\n").await;
    }
    let _ = stream.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    let lower = text.to_ascii_lowercase();
    assert!(
        lower.contains("content-type: application/problem+json"),
        "{text}"
    );
    assert!(
        text.contains("urn:problem-type:admin:body-too-large"),
        "{text}"
    );
    assert!(text.contains("65536"), "the limit is named: {text}");
    // Nothing was stored.
    let list = env.get("/admin/v1/clients", &token).await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 3);
}

/// `authz --url …` (the real binary) drives this running authz through the admin API with
/// the admin client's credentials, printing what the local commands print.
async fn cli_url_drives_a_running_authz(db: TestDatabase) {
    let env = start(&db).await;
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let url = format!("http://{}", env.addrs.admin);
    let token_url = format!("http://{}/token", env.addrs.http);
    let secret_path = secret_file.to_str().unwrap().to_owned();
    let run = |args: Vec<String>, remote: bool| {
        let dir = dir.path().to_owned();
        let mut all: Vec<String> = Vec::new();
        if remote {
            all.extend([
                "--url".into(),
                url.clone(),
                "--token-url".into(),
                token_url.clone(),
                "--client-id".into(),
                "ops".into(),
                "--client-secret-file".into(),
                secret_path.clone(),
            ]);
        }
        all.extend(args);
        async move {
            // The binary blocks: off the runtime that serves it.
            tokio::task::spawn_blocking(move || {
                let args: Vec<&str> = all.iter().map(String::as_str).collect();
                crate::cli::authz_in(&dir, &args, &[])
            })
            .await
            .unwrap()
        }
    };
    let args = |a: &str| a.split(' ').map(str::to_owned).collect::<Vec<_>>();
    let ok = |out: &std::process::Output| -> String {
        assert_eq!(
            out.status.code(),
            Some(0),
            "stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };

    let list = ok(&run(args("clients list"), true).await);
    let ids: Vec<&str> = list
        .lines()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(ids, ["ops", "reader", "rs"], "{list}");
    let created: Value = serde_json::from_str(&ok(&run(
        args("clients create --id remote-made --name Remote --grant-type client_credentials --scope read --json"),
        true,
    )
    .await))
    .unwrap();
    assert_eq!(created["client_id"], "remote-made");
    assert_eq!(created["scope"], "read");
    assert!(created["client_secret"].as_str().unwrap().len() >= 32);
    let token = env.token().await;
    assert_eq!(
        env.get("/admin/v1/clients/remote-made", &token)
            .await
            .status,
        200
    );
    let shown: Value =
        serde_json::from_str(&ok(
            &run(args("clients show remote-made --json"), true).await
        ))
        .unwrap();
    assert_eq!(shown["client_name"], "Remote");
    assert_eq!(shown["secrets"].as_array().unwrap().len(), 1, "{shown}");
    // update: read with its ETag, replace with If-Match; rotate-secret with a grace.
    let updated: Value = serde_json::from_str(&ok(&run(
        args("clients update remote-made --name Renamed --scope read --json"),
        true,
    )
    .await))
    .unwrap();
    assert_eq!(updated["client_name"], "Renamed");
    let got = env.get("/admin/v1/clients/remote-made", &token).await;
    assert_eq!(got.body["client_name"], "Renamed", "{}", got.body);
    let rotated: Value = serde_json::from_str(&ok(&run(
        args("clients rotate-secret remote-made --grace 1h --json"),
        true,
    )
    .await))
    .unwrap();
    assert_eq!(rotated["previous_valid_for"], 3600);
    let new_secret = rotated["client_secret"].as_str().unwrap().to_owned();
    assert!(new_secret.len() >= 32);
    assert_ne!(new_secret, created["client_secret"].as_str().unwrap());
    let shown: Value =
        serde_json::from_str(&ok(
            &run(args("clients show remote-made --json"), true).await
        ))
        .unwrap();
    assert_eq!(shown["secrets"].as_array().unwrap().len(), 2, "{shown}");
    assert_eq!(
        ok(&run(args("clients delete remote-made"), true).await).trim(),
        "deleted remote-made"
    );
    let again = run(args("clients delete remote-made"), true).await;
    assert_eq!(again.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert_eq!(
        stderr.lines().last(),
        Some("error: 404 Not found: no client remote-made"),
        "{stderr}"
    );

    // consents: the users routes.
    assert_eq!(
        ok(&run(args("consents list --subject alice"), true).await).trim(),
        "no remembered consents for alice"
    );
    assert_eq!(
        ok(&run(args("consents list --subject alice --json"), true).await).trim(),
        "[]"
    );
    let none = run(args("consents revoke --subject alice --client rs"), true).await;
    assert_eq!(none.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&none.stderr);
    assert!(
        stderr
            .lines()
            .last()
            .is_some_and(|l| l.starts_with("error: 404 ")),
        "{stderr}"
    );

    let keys: Value =
        serde_json::from_str(&ok(&run(args("keys list --json"), true).await)).unwrap();
    let before = keys.as_array().unwrap().len();
    assert!(before >= 1);
    let made: Value =
        serde_json::from_str(&ok(
            &run(args("keys generate --alg ES256 --json"), true).await
        ))
        .unwrap();
    let kid = made[0]["kid"].as_str().unwrap().to_owned();
    assert_eq!(made[0]["alg"], "ES256");
    let retired: Value = serde_json::from_str(&ok(&run(
        vec!["keys".into(), "retire".into(), kid.clone(), "--json".into()],
        true,
    )
    .await))
    .unwrap();
    assert_eq!(retired[0]["state"], "retired");
    assert_eq!(retired[0]["kid"], kid.as_str());

    let minted: Value = serde_json::from_str(&ok(&run(
        args("registration-tokens create --expires 1h --uses 3 --json"),
        true,
    )
    .await))
    .unwrap();
    assert_eq!(minted["uses_left"], 3);
    assert!(minted["token"].as_str().unwrap().len() >= 32);
    let id = minted["id"].as_str().unwrap().to_owned();
    let listed = ok(&run(args("registration-tokens list"), true).await);
    assert!(listed.starts_with(&id), "{listed}");
    assert_eq!(
        ok(&run(
            vec!["registration-tokens".into(), "revoke".into(), id.clone()],
            true
        )
        .await)
        .trim(),
        format!("revoked {id}")
    );

    // Every write above is in the audit trail as the admin client's.
    for action in [
        "client.created",
        "client.deleted",
        "key.rotated",
        "key.retired",
        "registration_token.created",
        "registration_token.revoked",
    ] {
        let events = audit_of(&env, &token, action).await;
        assert!(
            events
                .iter()
                .any(|e| e["actor_id"] == "ops" && e["outcome"] == "success"),
            "{action}: {events:?}"
        );
    }

    // Missing credentials: one line naming the flag, exit 2; a wrong secret: exit 1.
    let missing = run(
        vec!["--url".into(), url.clone(), "clients".into(), "list".into()],
        false,
    )
    .await;
    assert_eq!(missing.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("config error: --token-url:"), "{stderr}");
    let wrong_file = dir.path().join("wrong");
    std::fs::write(&wrong_file, "not-the-secret").unwrap();
    let wrong = run(
        vec![
            "--url".into(),
            url.clone(),
            "--token-url".into(),
            token_url.clone(),
            "--client-id".into(),
            "ops".into(),
            "--client-secret-file".into(),
            wrong_file.to_str().unwrap().into(),
            "clients".into(),
            "list".into(),
        ],
        false,
    )
    .await;
    assert_eq!(wrong.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(stderr.contains("invalid_client"), "{stderr}");
    assert!(!stderr.contains("not-the-secret"), "{stderr}");
}
