//! The demo data of `authz serve --demo` / `--reset-demo`: the seed through the library on
//! SQLite and PostgreSQL (what it registers, that a second seed changes nothing, that a
//! reset kills what was issued to the demo clients), and the flags through the real binary
//! (seed lines, the warning, the refusal of a non-local issuer).

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use authz::clients::{Client, Clients, Secret};
use authz::demo_seed::{self, Demo};
use domain::{AccessTokenFormat, GrantType, ScopeSet, TokenEndpointAuthMethod};
use reqwest::StatusCode;
use serde_json::Value;
use storage::Database;
use storage::testing::TestDatabase;

use crate::cli::TEST_KEK;
use crate::flow_env::*;

const SCOPES: &str = "openid profile email offline_access items:read items:write";
const REGISTERED: [&str; 4] = [
    "demo: registered client demo-client / demo-secret",
    "demo: registered public client demo-spa (PKCE, no secret)",
    "demo: registered client demo-rs / demo-rs-secret (may introspect)",
    "demo: registered public client demo-tv (device flow, no secret)",
];
// admin API (issue 18): serve --demo also seeds demo-admin, after the others.
const ADMIN_REGISTERED: &str = "demo: registered admin client demo-admin / demo-admin-secret \
     (every admin scope; Swagger UI at /admin/docs on the admin port)";
const ADMIN_DELETED: &str =
    "demo: deleted client demo-admin with its tokens, codes, consents and grants";
const DELETED: [&str; 4] = [
    "demo: deleted client demo-client with its tokens, codes, consents and grants",
    "demo: deleted client demo-spa with its tokens, codes, consents and grants",
    "demo: deleted client demo-rs with its tokens, codes, consents and grants",
    "demo: deleted client demo-tv with its tokens, codes, consents and grants",
];
const NOTHING: &str =
    "demo: clients demo-client, demo-spa, demo-rs and demo-tv are registered; nothing seeded";

/// A registry over the test database on the server's clock, without a cache.
async fn registry(db: &TestDatabase, env: &Env) -> Clients {
    let pool = Database::connect(db.config(), &authz::MIGRATIONS)
        .await
        .unwrap();
    Clients::new(pool, Arc::new(env.clock.clone()), Duration::ZERO)
}

async fn stored(clients: &Clients, id: &str) -> (Client, Vec<Secret>) {
    clients
        .get(id)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no client {id}"))
}

/// A client_credentials token for `id:secret`.
async fn client_credentials(env: &Env, id: &str, secret: &str) -> (StatusCode, Value) {
    let (status, _, body) = env
        .token(
            Some((id, secret)),
            &[
                ("grant_type", "client_credentials"),
                ("scope", "items:read"),
            ],
        )
        .await;
    (status, body)
}

/// RFC 7662 introspection of `token` as `id:secret`: (status, body).
async fn introspect_as(env: &Env, id: &str, secret: &str, token: &str) -> (StatusCode, Value) {
    let res = env
        .http
        .post(format!("http://{}/introspect", env.addrs.http))
        .header("authorization", basic(id, secret))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn first_seed_registers_the_documented_clients_and_a_second_changes_nothing(
    db: TestDatabase,
) {
    let env = start(&db).await;
    let clients = registry(&db, &env).await;
    let seeded_at = env.now();

    assert_eq!(
        demo_seed::seed(&clients, Demo::Seed, None).await.unwrap(),
        REGISTERED
    );

    let scopes = ScopeSet::parse(SCOPES).unwrap();
    let (web, web_secrets) = stored(&clients, "demo-client").await;
    assert_eq!(web.name, "Demo web app");
    assert_eq!(web.auth_method, TokenEndpointAuthMethod::ClientSecretBasic);
    assert_eq!(web.redirect_uris, ["http://localhost:3000/callback"]);
    assert_eq!(web.post_logout_redirect_uris, ["http://localhost:3000/"]);
    assert_eq!(
        web.grant_types,
        [
            GrantType::AuthorizationCode,
            GrantType::RefreshToken,
            GrantType::ClientCredentials
        ]
    );
    assert_eq!(web.scopes, scopes);
    assert_eq!(web.audiences, ["http://localhost:8082"]);
    assert_eq!(web.access_token_format, AccessTokenFormat::Jwt);
    assert!(!web.can_introspect && !web.first_party);
    assert_eq!(web.created_at, seeded_at);
    assert_eq!(web_secrets.len(), 1);

    let (spa, spa_secrets) = stored(&clients, "demo-spa").await;
    assert_eq!(spa.name, "Demo single-page app");
    assert_eq!(spa.auth_method, TokenEndpointAuthMethod::None);
    assert!(spa_secrets.is_empty(), "a public client has no secret");
    assert_eq!(spa.redirect_uris, ["http://localhost:3000/spa/callback"]);
    assert_eq!(spa.post_logout_redirect_uris, ["http://localhost:3000/"]);
    assert_eq!(
        spa.grant_types,
        [GrantType::AuthorizationCode, GrantType::RefreshToken]
    );
    assert_eq!(spa.scopes, scopes);
    assert_eq!(spa.audiences, ["http://localhost:8082"]);
    assert!(!spa.can_introspect);

    let (rs, rs_secrets) = stored(&clients, "demo-rs").await;
    assert_eq!(rs.name, "Demo resource server (rs)");
    assert_eq!(rs.auth_method, TokenEndpointAuthMethod::ClientSecretBasic);
    assert_eq!(
        rs.grant_types,
        [GrantType::ClientCredentials, GrantType::TokenExchange]
    );
    assert!(rs.can_introspect);
    assert_eq!(
        rs.token_exchange.audiences,
        ["http://localhost:8082/downstream"]
    );
    assert_eq!(rs.token_exchange.scopes.to_string(), "items:read");
    assert!(!rs.token_exchange.impersonate);
    assert_eq!(rs_secrets.len(), 1);

    // The documented credentials work: demo-client gets a token for rs, demo-rs may
    // introspect it; a wrong secret does not authenticate.
    let (status, body) = client_credentials(&env, "demo-client", "demo-secret").await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap().to_owned();
    let (status, info) = introspect_as(&env, "demo-rs", "demo-rs-secret", &token).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(info["client_id"], "demo-client");
    assert_eq!(info["aud"], serde_json::json!(["http://localhost:8082"]));
    assert_eq!(
        client_credentials(&env, "demo-client", "wrong-secret")
            .await
            .0,
        401
    );
    assert_eq!(
        introspect_as(&env, "demo-rs", "wrong-secret", &token)
            .await
            .0,
        401
    );

    // A second seed, later and after an operator changed a demo client, leaves every
    // client exactly as it is.
    let mut renamed = web.clone();
    renamed.name = "Renamed by the operator".into();
    clients.update(renamed).await.unwrap();
    let before = [
        stored(&clients, "demo-client").await,
        stored(&clients, "demo-spa").await,
        stored(&clients, "demo-rs").await,
    ];
    env.clock.advance(60);
    assert_eq!(
        demo_seed::seed(&clients, Demo::Seed, None).await.unwrap(),
        [NOTHING]
    );
    let after = [
        stored(&clients, "demo-client").await,
        stored(&clients, "demo-spa").await,
        stored(&clients, "demo-rs").await,
    ];
    assert_eq!(before, after, "a second seed changed a client");
    assert_eq!(after[0].0.name, "Renamed by the operator");
    assert_eq!(after[0].0.created_at, seeded_at);
    assert_eq!(
        introspect_as(&env, "demo-rs", "demo-rs-secret", &token)
            .await
            .1["active"],
        true
    );
    // Off seeds nothing.
    assert!(
        demo_seed::seed(&clients, Demo::Off, None)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Authorize demo-client for `scope` in `browser` as `subject`, consenting when asked;
/// returns the code, the PKCE verifier and whether consent was asked.
async fn demo_code(env: &Env, browser: &mut Browser, scope: &str) -> (String, String, bool) {
    let (verifier, challenge) = pkce();
    let mut seen = browser
        .authorize(&code_request(
            demo_seed::CLIENT_ID,
            demo_seed::REDIRECT_URI,
            scope,
            &challenge,
            &[],
        ))
        .await;
    if let Some(l) = seen.location()
        && l.starts_with(&format!("{IDP_URL}/login?"))
    {
        let challenge = seen.params()["login_challenge"].clone();
        let back = env
            .accept_login(&challenge, "alice", "idp-session-1", env.now())
            .await
            .unwrap();
        seen = browser.get(&back).await;
    }
    let mut consent_asked = false;
    if let Some(l) = seen.location()
        && l.starts_with(&format!("{IDP_URL}/consent?"))
    {
        consent_asked = true;
        let challenge = seen.params()["consent_challenge"].clone();
        let scopes: Vec<&str> = scope.split(' ').collect();
        let back = env.accept_consent(&challenge, &scopes, true).await.unwrap();
        seen = browser.get(&back).await;
    }
    let params = seen.redirected_to(demo_seed::REDIRECT_URI);
    (params["code"].clone(), verifier, consent_asked)
}

async fn redeem_demo(env: &Env, code: &str, verifier: &str) -> (StatusCode, Value) {
    let (status, _, body) = env
        .token(
            Some((demo_seed::CLIENT_ID, demo_seed::CLIENT_SECRET)),
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", demo_seed::REDIRECT_URI),
                ("code_verifier", verifier),
            ],
        )
        .await;
    (status, body)
}

async fn reset_deletes_what_was_issued_to_the_demo_clients_and_registers_them_afresh(
    db: TestDatabase,
) {
    let env = start(&db).await;
    let clients = registry(&db, &env).await;
    let first = env.now();
    assert_eq!(
        demo_seed::seed(&clients, Demo::Seed, None).await.unwrap(),
        REGISTERED
    );
    let scope = "openid offline_access items:read";

    // Before the reset: a redeemed code (access and refresh token), remembered consent, and
    // a code not yet redeemed.
    let mut browser = Browser::new(&env);
    let (code, verifier, asked) = demo_code(&env, &mut browser, scope).await;
    assert!(asked, "the first authorization asks for consent");
    let (status, tokens) = redeem_demo(&env, &code, &verifier).await;
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    assert!(env.active(&access).await);
    let (pending, pending_verifier, asked) = demo_code(&env, &mut browser, scope).await;
    assert!(!asked, "consent is remembered");
    let (_, old_secrets) = stored(&clients, "demo-client").await;
    // A client_credentials JWT is recorded nowhere; introspection still refuses it once its
    // client is registered afresh (the token predates the new registration).
    let (status, m2m) = client_credentials(&env, "demo-client", "demo-secret").await;
    assert_eq!(status, 200, "{m2m}");
    let m2m = m2m["access_token"].as_str().unwrap().to_owned();
    assert!(env.active(&m2m).await);

    env.clock.advance(60);
    let lines = demo_seed::seed(&clients, Demo::Reset, None).await.unwrap();
    let expected: Vec<&str> = DELETED.iter().chain(&REGISTERED).copied().collect();
    assert_eq!(lines, expected);

    // Registered afresh: new creation time, new secret row, same documented secret.
    let (web, secrets) = stored(&clients, "demo-client").await;
    assert_eq!(web.created_at, first + 60);
    assert_eq!(secrets.len(), 1);
    assert_ne!(secrets[0].id, old_secrets[0].id);
    assert_eq!(secrets[0].digest, old_secrets[0].digest);
    assert_eq!(stored(&clients, "demo-rs").await.0.created_at, first + 60);
    assert_eq!(stored(&clients, "demo-spa").await.0.created_at, first + 60);

    // Everything issued before is dead: the access token is inactive, the refresh token
    // and the unredeemed code are refused, the remembered consent is gone.
    assert!(
        !env.active(&access).await,
        "access token survived the reset"
    );
    assert!(
        !env.active(&m2m).await,
        "client_credentials token survived the reset"
    );
    let (status, _, body) = env
        .token(
            Some((demo_seed::CLIENT_ID, demo_seed::CLIENT_SECRET)),
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await;
    assert_eq!(
        (status.as_u16(), &body["error"]),
        (400, &"invalid_grant".into())
    );
    let (status, body) = redeem_demo(&env, &pending, &pending_verifier).await;
    assert_eq!(
        (status.as_u16(), &body["error"]),
        (400, &"invalid_grant".into())
    );
    let (code, verifier, asked) = demo_code(&env, &mut browser, scope).await;
    assert!(asked, "consent was remembered across the reset");

    // The fresh clients work.
    let (status, tokens) = redeem_demo(&env, &code, &verifier).await;
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    let (status, info) = introspect_as(&env, "demo-rs", "demo-rs-secret", access).await;
    assert_eq!(
        (status.as_u16(), &info["active"]),
        (200, &true.into()),
        "{info}"
    );
    // Other clients were not touched.
    assert_eq!(stored(&clients, "web").await.0.created_at, first);
}

storage::backend_tests!(authz::MIGRATIONS;
    first_seed_registers_the_documented_clients_and_a_second_changes_nothing,
    reset_deletes_what_was_issued_to_the_demo_clients_and_registers_them_afresh,
);

/// `authz serve` of the real binary in `dir` (SQLite under it, every port 0), with `args`
/// and `env`.
fn serve(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_authz"));
    cmd.current_dir(dir)
        .arg("serve")
        .args(args)
        .env("AUTHZ__KEYS__ENCRYPTION_KEY", TEST_KEK)
        .env(
            "AUTHZ__DATABASE__URL",
            format!("sqlite://{}/authz.db", dir.display()),
        )
        .env("AUTHZ__HTTP__PORT", "0")
        .env("AUTHZ__GRPC__PORT", "0")
        .env("AUTHZ__ADMIN__PORT", "0")
        .env("AUTHZ__KEYS__ALGORITHMS", "[ES256]")
        .env("AUTHZ__KEYS__DEFAULT_ALG", "ES256")
        .env("AUTHZ__TELEMETRY__LOG_FORMAT", "json")
        .env("AUTHZ__SHUTDOWN__GRACE_PERIOD", "1s")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs `authz serve ARGS` until it is ready (seeding is over), then stops it with SIGTERM;
/// returns its stdout lines and stderr.
async fn serve_until_ready(dir: &std::path::Path, args: &[&str]) -> (Vec<String>, String) {
    runtime::testing::serve_until_ready("authz", serve(dir, args, &[]))
        .await
        .unwrap()
}

fn demo_lines(out: &[String]) -> Vec<&str> {
    out.iter()
        .map(String::as_str)
        .filter(|l| l.starts_with("demo: "))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_demo_seeds_before_serving_once_and_reset_demo_again() {
    let dir = tempfile::tempdir().unwrap();
    let warning = "demo data: public demo credentials are seeded; never use --demo in production";

    let (out, stderr) = serve_until_ready(dir.path(), &["--demo"]).await;
    let registered: Vec<&str> = REGISTERED
        .iter()
        .chain([&ADMIN_REGISTERED])
        .copied()
        .collect();
    assert_eq!(demo_lines(&out), registered, "{out:?}");
    assert_eq!(
        stderr.lines().filter(|l| l.contains(warning)).count(),
        1,
        "{stderr}"
    );
    assert!(
        stderr
            .lines()
            .filter(|l| l.contains(warning))
            .all(|l| l.contains("\"level\":\"WARN\"")),
        "{stderr}"
    );

    let (out, _) = serve_until_ready(dir.path(), &["--demo"]).await;
    assert_eq!(demo_lines(&out), [NOTHING], "{out:?}");

    let (out, _) = serve_until_ready(dir.path(), &["--reset-demo"]).await;
    let expected: Vec<&str> = DELETED
        .iter()
        .chain(&REGISTERED)
        .chain([&ADMIN_DELETED, &ADMIN_REGISTERED])
        .copied()
        .collect();
    assert_eq!(demo_lines(&out), expected, "{out:?}");

    // Without the flag: no demo lines, no warning.
    let (out, stderr) = serve_until_ready(dir.path(), &[]).await;
    assert!(demo_lines(&out).is_empty(), "{out:?}");
    assert!(!stderr.contains(warning), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_flags_refuse_an_issuer_others_can_reach() {
    for flag in ["--demo", "--reset-demo"] {
        for issuer in ["https://id.example.com", "https://10.0.0.1:8443"] {
            let dir = tempfile::tempdir().unwrap();
            let child = serve(dir.path(), &[flag], &[("AUTHZ__ISSUER", issuer)])
                .spawn()
                .unwrap();
            let out = child.wait_with_output().await.unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{flag} {issuer}: {stderr}");
            let lines: Vec<&str> = stderr.lines().collect();
            assert_eq!(lines.len(), 1, "one line: {stderr}");
            assert!(
                lines[0].starts_with(
                    "error: --demo and --reset-demo seed publicly known credentials, so they \
                     need the issuer on localhost or a loopback IP"
                ),
                "{}",
                lines[0]
            );
            assert!(lines[0].contains(&format!("{issuer:?}")), "{}", lines[0]);
            assert!(out.stdout.is_empty(), "nothing started");
            assert!(
                !dir.path().join("authz.db").exists(),
                "the database was touched"
            );
        }
    }
}
