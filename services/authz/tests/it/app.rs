//! The authz application booted in-process on port 0, on SQLite and PostgreSQL.

use authz::{Application, AuthzConfig, MIGRATIONS};
use runtime::{GrpcListenConfig, ListenConfig, Shutdown};
use storage::testing::TestDatabase;

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

async fn admin_endpoints_and_graceful_stop(db: TestDatabase) {
    let shutdown = Shutdown::new();
    let app = Application::build(config(&db), shutdown.clone())
        .await
        .unwrap();
    let addrs = app.addresses();
    assert_ne!(addrs.http.port(), 0);
    let running = tokio::spawn(app.run());
    let client = reqwest::Client::new();
    let admin = format!("http://{}", addrs.admin);

    let health = client.get(format!("{admin}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = client.get(format!("{admin}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.headers()["cache-control"], "no-store");

    let missing = client
        .get(format!("http://{}/no/such/path", addrs.http))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let metrics = client
        .get(format!("{admin}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"http_requests_total{method="GET",route="unmatched",status="404"}"#),
        "{metrics}"
    );

    shutdown.trigger();
    tokio::time::timeout(std::time::Duration::from_secs(5), running)
        .await
        .expect("stopped within 5 s")
        .unwrap()
        .unwrap();
    assert!(
        client.get(format!("{admin}/healthz")).send().await.is_err(),
        "admin listener closed after stop"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmigrated_database_stops_the_start_unless_migrating_on_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&TestDatabase::sqlite(&MIGRATIONS).await.unwrap());
    cfg.database =
        storage::DatabaseConfig::with_url(format!("sqlite://{}/fresh.db", dir.path().display()));
    cfg.database.migrate_on_start = false;
    let err = Application::build(cfg.clone(), Shutdown::new())
        .await
        .err()
        .unwrap();
    let pending = crate::cli::migration_count();
    assert_eq!(
        err.to_string(),
        format!(
            "migrations: {pending} pending and database.migrate_on_start is false: run `authz migrate` first"
        )
    );
    authz::migrate(&cfg).await.unwrap();
    let shutdown = Shutdown::new();
    let app = Application::build(cfg, shutdown.clone()).await.unwrap();
    let admin = format!("http://{}", app.addresses().admin);
    let running = tokio::spawn(app.run());
    let ready = reqwest::get(format!("{admin}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);
    shutdown.trigger();
    running.await.unwrap().unwrap();
}

storage::backend_tests!(authz::MIGRATIONS; admin_endpoints_and_graceful_stop);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_port_fails_the_start_naming_the_listener() {
    let db = TestDatabase::sqlite(&MIGRATIONS).await.unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut cfg = config(&db);
    cfg.grpc = GrpcListenConfig::loopback(taken.local_addr().unwrap().port());
    let err = Application::build(cfg, Shutdown::new())
        .await
        .err()
        .unwrap();
    assert!(
        err.to_string().starts_with("grpc: cannot listen on"),
        "{err}"
    );
}
