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
    assert_eq!(ids(&first), ["ops", "reader", "svc-0"]);
    assert!(first.body["items"][0].get("client_secret").is_none());
    let cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
    let second = env
        .get(
            &format!("/admin/v1/clients?limit=3&cursor={cursor}"),
            &token,
        )
        .await;
    assert_eq!(ids(&second), ["svc-1", "svc-2", "svc-3"]);
    let cursor = second.body["next_cursor"].as_str().unwrap().to_owned();
    let last = env
        .get(
            &format!("/admin/v1/clients?limit=3&cursor={cursor}"),
            &token,
        )
        .await;
    assert_eq!(ids(&last), ["svc-4"]);
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

storage::backend_tests!(authz::MIGRATIONS;
    listing_pages_and_filters,
    tokens_are_checked_with_rfc_6750_challenges,
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
