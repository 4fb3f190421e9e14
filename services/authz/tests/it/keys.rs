//! `authz keys …` through the real binary, and key rotation through the running service.

use std::sync::Arc;
use std::time::Duration;

use authz::config::KeysConfig;
use authz::keys::KeyStore;
use authz::{Application, AuthzConfig, MIGRATIONS};
use base64::Engine;
use issuer::{Algorithm, Clock, Kek, KeyState, ManualClock, PrivateKey};
use runtime::{GrpcListenConfig, ListenConfig, Shutdown};
use storage::Database;
use storage::testing::TestDatabase;

use crate::cli::{TEST_KEK, authz_in};

fn json(out: &std::process::Output) -> serde_json::Value {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn keys_cli_lists_generates_imports_and_retires() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/authz.db", dir.path().display());
    let env = [("AUTHZ__DATABASE__URL", url.as_str())];
    let run = |args: &[&str]| authz_in(dir.path(), args, &env);

    // Only migrate (or serve) creates the database. Listing an empty database is
    // read-only; the first command that opens the keys creates one current key per
    // configured algorithm.
    assert_eq!(run(&["migrate"]).status.code(), Some(0));
    assert_eq!(
        json(&run(&["keys", "list", "--json"])),
        serde_json::json!([])
    );
    json(&run(&["keys", "rotate", "--alg", "RS256", "--json"]));
    let listed = json(&run(&["keys", "list", "--json"]));
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 5, "four current keys and the next RS256 one");
    assert_eq!(listed.iter().filter(|k| k["state"] == "current").count(), 4);
    let text = String::from_utf8_lossy(&run(&["keys", "list"]).stdout).into_owned();
    assert!(text.starts_with("KID"), "{text}");
    assert!(!text.contains("private"), "{text}");

    let generated = json(&run(&["keys", "generate", "--alg", "ES256", "--json"]));
    assert_eq!(generated[0]["state"], "next");
    assert_eq!(generated[0]["generation"], 2);

    // Import a PKCS#8 PEM made elsewhere; its kid is its RFC 7638 thumbprint.
    let key = PrivateKey::generate(Algorithm::EdDSA, 2048).unwrap();
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(key.pkcs8_der())
    );
    let file = dir.path().join("key.pem");
    std::fs::write(&file, pem).unwrap();
    let imported = json(&run(&[
        "keys",
        "import",
        file.to_str().unwrap(),
        "--now",
        "--json",
    ]));
    assert_eq!(imported[0]["kid"], key.kid());
    assert_eq!(imported[0]["alg"], "EdDSA");
    assert_eq!(imported[0]["state"], "current");
    // The same key twice is a conflict, exit 1.
    let again = run(&["keys", "import", file.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1));

    let out = run(&["keys", "retire", key.kid(), "--json"]);
    // The bound on when running servers stop signing with it: the configured interval
    // (on stderr, so that stdout stays JSON).
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!(
            "running authz servers stop signing with {} within keys.check_interval (30s)",
            key.kid()
        )),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let retired = json(&out);
    assert_eq!(retired[0]["state"], "retired");
    assert!(
        retired[0]["remove_after"].as_i64().unwrap() > retired[0]["retired_at"].as_i64().unwrap()
    );
    let unknown = run(&["keys", "retire", "no-such-kid"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no key with kid no-such-kid"));
    // RFC 7638 kids are base64url: one may start with `-` and is still a kid, not an option.
    let dash = run(&["keys", "retire", "-6Xq9kid", "--json"]);
    assert_eq!(dash.status.code(), Some(1), "{dash:?}");
    assert!(String::from_utf8_lossy(&dash.stderr).contains("no key with kid -6Xq9kid"));

    // Opening the database with another key-encryption key fails and yields nothing.
    let other = authz_in(
        dir.path(),
        &["keys", "rotate"],
        &[
            ("AUTHZ__DATABASE__URL", url.as_str()),
            (
                "AUTHZ__KEYS__ENCRYPTION_KEY",
                &Kek::generate_base64().unwrap(),
            ),
        ],
    );
    assert_eq!(other.status.code(), Some(1));
    assert!(other.stdout.is_empty());
    assert!(
        String::from_utf8_lossy(&other.stderr)
            .contains("wrong key-encryption key or tampered data")
    );
}

fn config(db: &TestDatabase) -> AuthzConfig {
    let mut c = AuthzConfig {
        issuer: "http://127.0.0.1:9/tenant-a".to_owned(),
        http: ListenConfig::loopback(0),
        grpc: GrpcListenConfig::loopback(0),
        admin: ListenConfig::loopback(0),
        database: db.config().clone(),
        ..AuthzConfig::default()
    };
    c.keys.encryption_key = Some(config::Secret::new(TEST_KEK.to_owned()));
    c
}

async fn get_json(url: &str) -> (reqwest::header::HeaderMap, serde_json::Value) {
    let res = reqwest::get(url).await.unwrap();
    assert_eq!(res.status(), 200, "{url}");
    let headers = res.headers().clone();
    (headers, res.json().await.unwrap())
}

fn kids(jwks: &serde_json::Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

async fn discovery_and_jwks_are_served_without_database_work(db: TestDatabase) {
    let shutdown = Shutdown::new();
    let app = Application::build(config(&db), shutdown.clone())
        .await
        .unwrap();
    let base = format!("http://{}", app.addresses().http);
    let database = app.database().clone();
    let running = tokio::spawn(app.run());

    let (headers, oidc) = get_json(&format!("{base}/.well-known/openid-configuration")).await;
    let (_, oauth) = get_json(&format!("{base}/.well-known/oauth-authorization-server")).await;
    assert_eq!(oidc, oauth);
    assert_eq!(
        oidc["issuer"], "http://127.0.0.1:9/tenant-a",
        "issuer exactly as configured"
    );
    assert_eq!(
        oidc["jwks_uri"],
        "http://127.0.0.1:9/tenant-a/.well-known/jwks.json"
    );
    assert_eq!(headers["access-control-allow-origin"], "*");

    let before = database.queries_started();
    for _ in 0..50 {
        let (headers, jwks) = get_json(&format!("{base}/.well-known/jwks.json")).await;
        assert_eq!(headers["cache-control"], "public, max-age=600");
        assert_eq!(headers["access-control-allow-origin"], "*");
        assert_eq!(headers["content-type"], "application/json");
        let keys = jwks["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 4);
        for key in keys {
            for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
                assert!(key.get(private).is_none());
            }
            assert_eq!(key["use"], "sig");
        }
    }
    for _ in 0..20 {
        get_json(&format!("{base}/.well-known/openid-configuration")).await;
    }
    // 70 requests: one query per request would start at least 70. The only queries allowed
    // are those of the background tasks `run` starts (the first purge runs at once, and on
    // a loaded machine it can still be running when the count starts: the key, grant,
    // audit, assertion and pushed-request purges and the write check). Half of 70 still
    // tells a per-request query from those.
    let started = database.queries_started() - before;
    assert!(
        started < 35,
        "JWKS and discovery ran database queries ({started} over 70 requests)"
    );

    shutdown.trigger();
    running.await.unwrap().unwrap();
}

async fn rotation_publishes_before_signing_and_keeps_retired_keys(db: TestDatabase) {
    let clock = ManualClock::new(1_800_000_000);
    let shutdown = Shutdown::new();
    let cfg = config(&db);
    let (ahead, retention) = (
        cfg.keys.publish_ahead.as_secs() as i64,
        cfg.keys.retired_retention.as_secs() as i64,
    );
    let app = Application::build_with_clock(cfg, shutdown.clone(), Arc::new(clock.clone()))
        .await
        .unwrap();
    let jwks_url = format!("http://{}/.well-known/jwks.json", app.addresses().http);
    let keys = Arc::clone(app.keys());
    let running = tokio::spawn(app.run());

    let first = keys
        .ring()
        .signer(Algorithm::ES256, clock.now())
        .unwrap()
        .kid()
        .to_owned();
    let next = keys.generate(Algorithm::ES256, false).await.unwrap();
    assert_eq!(next.state, KeyState::Next);
    let (_, jwks) = get_json(&jwks_url).await;
    assert!(kids(&jwks).contains(&next.kid), "published before it signs");
    assert_eq!(
        keys.ring()
            .signer(Algorithm::ES256, clock.now())
            .unwrap()
            .kid(),
        first
    );

    clock.advance(ahead);
    keys.maintain().await.unwrap();
    assert_eq!(
        keys.ring()
            .signer(Algorithm::ES256, clock.now())
            .unwrap()
            .kid(),
        next.kid
    );
    let (_, jwks) = get_json(&jwks_url).await;
    assert!(kids(&jwks).contains(&first), "retired key still published");

    clock.advance(retention);
    keys.maintain().await.unwrap();
    let (_, jwks) = get_json(&jwks_url).await;
    assert!(!kids(&jwks).contains(&first), "removed after retention");
    assert!(kids(&jwks).contains(&next.kid));

    shutdown.trigger();
    running.await.unwrap().unwrap();
}

async fn two_replicas_rotate_exactly_once_per_period(db: TestDatabase) {
    const PERIOD: i64 = 3600;
    let keys_config = KeysConfig {
        encryption_key: Some(config::Secret::new(TEST_KEK.to_owned())),
        algorithms: vec![Algorithm::ES256],
        default_alg: Algorithm::ES256,
        rotation_period: Duration::from_secs(PERIOD as u64),
        publish_ahead: Duration::from_secs(600),
        jwks_max_age: Duration::from_secs(60),
        retired_retention: Duration::from_secs(1200),
        check_interval: Duration::from_secs(30),
        ..KeysConfig::default()
    };
    let clock = ManualClock::new(1_800_000_000);
    let start = clock.now();
    let open = || async {
        let pool = Database::connect(db.config(), &MIGRATIONS).await.unwrap();
        KeyStore::open(
            pool,
            &keys_config,
            keys_config.kek().unwrap(),
            Arc::new(clock.clone()),
        )
        .await
        .unwrap()
    };
    let (a, b) = (open().await, open().await);
    // Five periods in 30 s steps, both replicas checking at the same instants.
    while clock.now() < start + 5 * PERIOD {
        clock.advance(30);
        let (ra, rb) = tokio::join!(a.maintain(), b.maintain());
        ra.unwrap();
        rb.unwrap();
    }
    let mut records = a.list().await.unwrap();
    records.sort_by_key(|r| r.generation);
    let generations: Vec<i64> = records.iter().map(|r| r.generation).collect();
    // Keys of generations 1-3 have been removed after their retention; what remains is the
    // last retired one, the current one and possibly the next.
    assert!(
        generations.windows(2).all(|w| w[1] == w[0] + 1),
        "{generations:?}"
    );
    let newest = *generations.last().unwrap();
    assert!(
        (5..=6).contains(&newest),
        "one rotation per period, got generation {newest}"
    );
    let activations: Vec<i64> = records.iter().map(|r| r.activates_at - start).collect();
    assert!(
        activations.windows(2).all(|w| w[1] - w[0] == PERIOD),
        "activations {activations:?} not one period apart"
    );
    // Both replicas sign with the same key.
    let now = clock.now();
    assert_eq!(
        a.ring().signer(Algorithm::ES256, now).unwrap().kid(),
        b.ring().signer(Algorithm::ES256, now).unwrap().kid()
    );
}

async fn wrong_kek_stops_the_start(db: TestDatabase) {
    let app = Application::build(config(&db), Shutdown::new())
        .await
        .unwrap();
    drop(app);
    let mut cfg = config(&db);
    cfg.keys.encryption_key = Some(config::Secret::new(Kek::generate_base64().unwrap()));
    let err = Application::build(cfg, Shutdown::new())
        .await
        .err()
        .unwrap();
    assert!(
        err.to_string()
            .contains("wrong key-encryption key or tampered data"),
        "{err}"
    );
}

/// `keys retire` on another process (here a second `KeyStore` on the same database, as the
/// CLI opens one): a running server stops signing with the retired key within
/// `keys.check_interval`, the bound the command prints.
async fn a_running_server_stops_signing_with_a_retired_key_within_check_interval(db: TestDatabase) {
    let check_interval = Duration::from_millis(200);
    let clock = ManualClock::new(1_800_000_000);
    let shutdown = Shutdown::new();
    let mut cfg = config(&db);
    cfg.keys.check_interval = check_interval;
    let keys_config = cfg.keys.clone();
    let app = Application::build_with_clock(cfg, shutdown.clone(), Arc::new(clock.clone()))
        .await
        .unwrap();
    let keys = Arc::clone(app.keys());
    let running = tokio::spawn(app.run());
    let signing = || {
        keys.ring()
            .signer(Algorithm::ES256, clock.now())
            .map(|s| s.kid().to_owned())
    };
    let first = signing().unwrap();

    let pool = Database::connect(db.config(), &MIGRATIONS).await.unwrap();
    let cli = KeyStore::open(
        pool,
        &keys_config,
        keys_config.kek().unwrap(),
        Arc::new(clock.clone()),
    )
    .await
    .unwrap();
    cli.retire(&first).await.unwrap();
    // Waiting out the documented bound is what is tested here (with a margin for a slow
    // machine): afterwards the server signs with another key.
    tokio::time::sleep(check_interval * 3).await;
    let now_signing = signing();
    assert!(now_signing.is_some(), "a replacement key signs");
    assert_ne!(now_signing.as_deref(), Some(first.as_str()));

    shutdown.trigger();
    running.await.unwrap().unwrap();
}

storage::backend_tests!(
    authz::MIGRATIONS;
    discovery_and_jwks_are_served_without_database_work,
    rotation_publishes_before_signing_and_keeps_retired_keys,
    two_replicas_rotate_exactly_once_per_period,
    wrong_kek_stops_the_start,
    a_running_server_stops_signing_with_a_retired_key_within_check_interval,
);
