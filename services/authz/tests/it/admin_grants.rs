//! admin2: a client's grants through the admin API (issue 18: "list/revoke a client's
//! grants"), on grants made by the real code flow: listed a page at a time, one revoked
//! (its tokens die, the others live), then all; each revocation in the audit trail.

use std::time::Duration;

use authz::clients::{Clients, NewClient};
use domain::{GrantType, ScopeSet};
use reqwest::StatusCode;
use serde_json::{Value, json};
use storage::Database;
use storage::testing::TestDatabase;

use crate::flow_env::*;

const ADMIN: &str = "admin:clients:read admin:clients:write admin:audit:read";

/// Registers `id` as an admin client with `scope` and returns a token of it.
async fn admin_token(env: &Env, db: &TestDatabase, id: &str, scope: &str) -> String {
    let pool = Database::connect(db.config(), &authz::MIGRATIONS)
        .await
        .unwrap();
    let clients = Clients::new(pool, std::sync::Arc::new(env.clock.clone()), Duration::ZERO);
    let mut c = client(id);
    c.grant_types = vec![GrantType::ClientCredentials];
    c.redirect_uris = vec![];
    // Admin tokens are for the issuer itself: no audiences of its own.
    c.audiences = vec![];
    c.scopes = ScopeSet::parse(scope).unwrap();
    clients
        .create(NewClient {
            client: c,
            secret: Some(SECRET.to_owned()),
        })
        .await
        .unwrap();
    let (status, _, body) = env
        .token(
            Some((id, SECRET)),
            &[("grant_type", "client_credentials"), ("scope", scope)],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

/// `method path` on the admin listener with `token`: status, content type and body.
async fn admin(
    env: &Env,
    method: reqwest::Method,
    path: &str,
    token: &str,
) -> (u16, String, Value) {
    let res = env
        .http
        .request(method, format!("http://{}{path}", env.addrs.admin))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let content_type = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = res.text().await.unwrap();
    (
        status,
        content_type,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

/// Signs `subject` in to `web` and redeems the code: (access token, refresh token).
async fn tokens_of(env: &Env, subject: &str, session: &str) -> (String, String) {
    let mut browser = Browser::new(env);
    let (code, verifier) = env
        .sign_in(
            &mut browser,
            "web",
            "openid offline_access",
            subject,
            session,
        )
        .await;
    let (status, _, tokens) = env.redeem("web", &code, &verifier).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    (
        tokens["access_token"].as_str().unwrap().to_owned(),
        tokens["refresh_token"].as_str().unwrap().to_owned(),
    )
}

async fn a_clients_grants_are_listed_and_revoked(db: TestDatabase) {
    use reqwest::Method;
    let env = start(&db).await;
    env.idp.session("s1", "alice");
    env.idp.session("s2", "bob");
    let token = admin_token(&env, &db, "ops", ADMIN).await;
    let reader = admin_token(&env, &db, "reader", "admin:clients:read").await;
    let (alice_access, alice_refresh) = tokens_of(&env, "alice", "s1").await;
    let (bob_access, bob_refresh) = tokens_of(&env, "bob", "s2").await;

    let (status, _, all) = admin(&env, Method::GET, "/admin/v1/clients/web/grants", &reader).await;
    assert_eq!(status, 200, "{all}");
    let items = all["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{all}");
    let mut subjects: Vec<&str> = items
        .iter()
        .map(|g| g["subject"].as_str().unwrap())
        .collect();
    subjects.sort_unstable();
    assert_eq!(subjects, ["alice", "bob"]);
    assert!(
        items[0]["scope"]
            .as_str()
            .unwrap()
            .contains("offline_access")
    );
    assert!(
        !all.to_string().contains(&alice_refresh),
        "no token in the listing"
    );
    let alice_grant = items.iter().find(|g| g["subject"] == "alice").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // One at a time, with a cursor.
    let (_, _, first) = admin(
        &env,
        Method::GET,
        "/admin/v1/clients/web/grants?limit=1",
        &reader,
    )
    .await;
    assert_eq!(first["items"].as_array().unwrap().len(), 1);
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, _, second) = admin(
        &env,
        Method::GET,
        &format!("/admin/v1/clients/web/grants?limit=1&cursor={cursor}"),
        &reader,
    )
    .await;
    assert_eq!(second["items"].as_array().unwrap().len(), 1);
    assert_ne!(second["items"][0]["id"], first["items"][0]["id"]);
    assert!(second.get("next_cursor").is_none(), "{second}");

    // Refusals: unknown client, bad query, missing scope, unknown grant.
    let (status, kind, body) =
        admin(&env, Method::GET, "/admin/v1/clients/nope/grants", &reader).await;
    assert_eq!(
        (status, kind.as_str()),
        (404, "application/problem+json"),
        "{body}"
    );
    let (status, _, body) = admin(
        &env,
        Method::GET,
        "/admin/v1/clients/web/grants?limit=0",
        &reader,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["field"], "limit");
    let one = format!("/admin/v1/clients/web/grants/{alice_grant}");
    let (status, _, body) = admin(&env, Method::DELETE, &one, &reader).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["type"], "urn:problem-type:admin:insufficient-scope");
    let (status, _, body) = admin(
        &env,
        Method::DELETE,
        "/admin/v1/clients/m2m/grants/x",
        &token,
    )
    .await;
    assert_eq!(status, 404, "{body}");
    // Another client's grant is not this client's to revoke.
    let (status, _, body) = admin(
        &env,
        Method::DELETE,
        &format!("/admin/v1/clients/opaque/grants/{alice_grant}"),
        &token,
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert!(env.active(&alice_access).await);

    // Alice's grant: her tokens die, Bob's live.
    let (status, _, body) = admin(&env, Method::DELETE, &one, &token).await;
    assert_eq!(status, 204, "{body}");
    assert!(
        !env.active(&alice_access).await,
        "access token of the revoked grant"
    );
    let (status, _, body) = env.refresh("web", &alice_refresh).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    assert!(env.active(&bob_access).await);
    let (status, _, body) = admin(&env, Method::DELETE, &one, &token).await;
    assert_eq!(status, 404, "revoked once: {body}");

    // All of them: Bob's too; the client stays.
    let (status, _, body) =
        admin(&env, Method::DELETE, "/admin/v1/clients/web/grants", &token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"grants": 1}));
    assert!(!env.active(&bob_access).await);
    let (status, _, body) = env.refresh("web", &bob_refresh).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (_, _, empty) = admin(&env, Method::GET, "/admin/v1/clients/web/grants", &token).await;
    assert_eq!(empty, json!({"items": []}));
    let (status, _, _) = admin(&env, Method::GET, "/admin/v1/clients/web", &token).await;
    assert_eq!(status, 200);
    let (status, _, again) =
        admin(&env, Method::DELETE, "/admin/v1/clients/web/grants", &token).await;
    assert_eq!((status, &again), (200, &json!({"grants": 0})));

    // The audit trail (compared as a set: events of one millisecond have no order), the
    // refusals with their problem type.
    let (_, _, audit) = admin(
        &env,
        Method::GET,
        "/admin/v1/audit?action=grants.revoked",
        &token,
    )
    .await;
    let mut events: Vec<(String, String, String, String)> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e["actor_id"], "ops", "{e}");
            (
                e["outcome"].as_str().unwrap().to_owned(),
                e["target_kind"].as_str().unwrap().to_owned(),
                e["target_id"].as_str().unwrap_or_default().to_owned(),
                e["reason"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    events.sort();
    let s = |a: &str, b: &str, c: &str, d: &str| {
        (a.to_owned(), b.to_owned(), c.to_owned(), d.to_owned())
    };
    let mut want = vec![
        s("success", "client", "web", ""),
        s("success", "client", "web", ""),
        s("failure", "grant", &alice_grant, "not-found"),
        s("success", "grant", &alice_grant, ""),
        s("failure", "grant", &alice_grant, "not-found"),
        s("failure", "grant", "x", "not-found"),
    ];
    want.sort();
    assert_eq!(events, want, "{audit}");
}

storage::backend_tests!(authz::MIGRATIONS;
    a_clients_grants_are_listed_and_revoked,
);
