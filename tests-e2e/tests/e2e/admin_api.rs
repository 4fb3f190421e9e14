//! The admin REST APIs of authz and idp (issue 18) through the real processes, with one
//! access token from authz: `demo-admin` (seeded by `authz serve --demo`) gets it by client
//! credentials, lists authz's clients, creates a user on idp, who signs in to a relying
//! party in a browser; idp's admin API lists and ends the user's sessions, then deletes the
//! user, after which the user's refresh token is inactive at authz's introspection (the
//! deletion's revocation reached authz over gRPC).

use std::time::{Duration, Instant};

use demo::browser::Browser;
use reqwest::Url;
use serde_json::{Value, json};

use crate::code_flow::{pairs, random, sha256_b64};
use crate::harness::Service;
use crate::pair::{self, REDIRECT_URI, SCOPE};

const PASSWORD: &str = "correct horse battery staple";
const ADMIN_SCOPES: &str = "admin:clients:read admin:users:read admin:users:write \
                            admin:sessions:read admin:sessions:write admin:audit:read";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_authz_token_drives_both_admin_apis() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    let pair = pair::prepare(dir);
    let (issuer, rp_secret, introspector) = (&pair.issuer, &pair.rp_secret, &pair.introspector);
    let authz = Service::start_with(
        "authz",
        &["serve".to_owned(), "--demo".to_owned()],
        dir,
        &pair.authz_env,
    )
    .await;
    let mut idp_env = pair.idp_env.clone();
    idp_env.extend(pairs(&[("IDP__ADMIN_API__ISSUER", issuer)]));
    let idp = Service::start("idp", dir, &idp_env).await;
    let http = reqwest::Client::new();

    // 1. demo-admin's client credentials token (a JWT for the issuer).
    let res = http
        .post(format!("{issuer}/token"))
        .basic_auth("demo-admin", Some("demo-admin-secret"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", ADMIN_SCOPES),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(token.split('.').count(), 3, "a JWT access token");

    // 2. authz's admin API lists its clients.
    let clients: Value = http
        .get(format!("{}/admin/v1/clients?limit=500", authz.url("admin")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = clients["items"]
        .as_array()
        .unwrap_or_else(|| panic!("{clients}"))
        .iter()
        .map(|c| c["client_id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"rp") && ids.contains(&"demo-admin"),
        "{ids:?}"
    );

    // 3. idp's admin API creates a user (idp loads authz's keys at start; until then 503).
    let idp_admin = idp.url("admin");
    let deadline = Instant::now() + Duration::from_secs(30);
    let created = loop {
        let res = http
            .post(format!("{idp_admin}/admin/v1/users"))
            .bearer_auth(&token)
            .json(&json!({
                "username": "bob",
                "password": PASSWORD,
                "email": "bob@example.test",
                "email_verified": true,
                "name": "Bob Example",
            }))
            .send()
            .await
            .unwrap();
        if res.status() != 503 {
            assert_eq!(res.status(), 201);
            assert!(res.headers().contains_key("location"));
            break res.json::<Value>().await.unwrap();
        }
        assert!(Instant::now() < deadline, "idp never loaded authz's keys");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let sub = created["id"].as_str().unwrap().to_owned();

    // 4. The user signs in to the relying party in a browser.
    let mut browser = Browser::new(
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    );
    let (state, verifier) = (random(), random());
    let url = Url::parse_with_params(
        &format!("{issuer}/authorize"),
        [
            ("response_type", "code"),
            ("client_id", "rp"),
            ("redirect_uri", REDIRECT_URI),
            ("scope", SCOPE),
            ("state", &state),
            ("nonce", &random()),
            ("code_challenge", &sha256_b64(verifier.as_bytes())),
            ("code_challenge_method", "S256"),
        ],
    )
    .unwrap();
    let first = browser.get(&url).await.unwrap();
    let (to, _) = browser
        .through_login(first, REDIRECT_URI, "bob", PASSWORD)
        .await
        .unwrap();
    let code = to
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no code in {to}"));
    let tokens: Value = http
        .post(format!("{issuer}/token"))
        .basic_auth("rp", Some(&rp_secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", &verifier),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let refresh = tokens["refresh_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{tokens}"))
        .to_owned();
    let active = async |token: &str| -> bool {
        let res: Value = http
            .post(format!("{issuer}/introspect"))
            .basic_auth("introspector", Some(&introspector))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        res["active"].as_bool().unwrap()
    };
    assert!(active(&refresh).await, "alive before");

    // 5. idp's admin API lists the user's session and ends them all.
    let sessions: Value = http
        .get(format!("{idp_admin}/admin/v1/users/{sub}/sessions"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sessions["items"].as_array().unwrap().len(), 1, "{sessions}");
    let ended: Value = http
        .delete(format!("{idp_admin}/admin/v1/users/{sub}/sessions"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ended["ended"].as_array().unwrap().len(), 1, "{ended}");

    // 6. Deleting the user revokes its grants at authz: the refresh token dies.
    let res = http
        .delete(format!("{idp_admin}/admin/v1/users/{sub}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let deadline = Instant::now() + Duration::from_secs(30);
    while active(&refresh).await {
        assert!(Instant::now() < deadline, "the refresh token stayed active");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // 7. idp's audit trail names demo-admin for each write.
    let trail: Value = http
        .get(format!(
            "{idp_admin}/admin/v1/audit?target_id={sub}&actor_id=demo-admin"
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = trail["items"]
        .as_array()
        .unwrap_or_else(|| panic!("{trail}"))
        .iter()
        .rev()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["user.created", "sessions.ended", "user.deleted"]);
}
