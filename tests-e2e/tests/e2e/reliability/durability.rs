//! An acknowledged opaque token survives a crash (issue 15): clients fetch opaque
//! client_credentials tokens as fast as they can, authz's whole process group gets SIGKILL
//! the moment enough answers have arrived (so more requests are in flight), and a fresh
//! authz on the same database must find every token a client received active.
//!
//! What makes it hold: the opaque-token writer (`services/authz/src/tokens/writer.rs`)
//! answers a request only after the transaction holding its row has committed. SQLite runs
//! in WAL mode, where a committed transaction is in the WAL file before `COMMIT` returns
//! (with `synchronous = NORMAL` a power loss may lose the newest commits, a process crash
//! cannot); PostgreSQL acknowledges a commit after its WAL record is flushed
//! (`synchronous_commit = on`, the default).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use storage::testing::TestDatabase;

use crate::code_flow::{cli, migrate};
use crate::harness::{Service, TEST_KEK};

/// Concurrent clients fetching tokens.
const CLIENTS: usize = 16;
/// Answers to wait for before the kill.
const ACKNOWLEDGED: usize = 300;

async fn acknowledged_tokens_survive_kill(db_url: String) {
    let data = tempfile::tempdir().unwrap();
    let env = vec![
        ("AUTHZ__DATABASE__URL".to_owned(), db_url),
        ("AUTHZ__CLIENTS__CACHE_TTL".to_owned(), "0s".to_owned()),
        (
            "AUTHZ__KEYS__ENCRYPTION_KEY".to_owned(),
            TEST_KEK.to_owned(),
        ),
    ];
    migrate("authz", &env);
    let caller = cli(
        "authz",
        &env,
        &[
            "clients",
            "create",
            "--id",
            "opaque-caller",
            "--name",
            "Opaque caller",
            "--scope",
            "items:read",
            "--token-format",
            "opaque",
            "--json",
        ],
    );
    let checker = cli(
        "authz",
        &env,
        &[
            "clients",
            "create",
            "--id",
            "checker",
            "--name",
            "Checker",
            "--introspect",
            "true",
            "--json",
        ],
    );
    let secret = caller["client_secret"].as_str().unwrap().to_owned();
    let checker_secret = checker["client_secret"].as_str().unwrap().to_owned();

    let authz = Service::start("authz", data.path(), &env).await;
    let token_url = format!("{}/token", authz.url("http"));
    let received: Arc<Mutex<Vec<String>>> = Arc::default();
    let enough = Arc::new(tokio::sync::Notify::new());
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (url, secret) = (token_url.clone(), secret.clone());
        let (received, enough) = (Arc::clone(&received), Arc::clone(&enough));
        clients.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            loop {
                let sent = http
                    .post(&url)
                    .basic_auth("opaque-caller", Some(&secret))
                    .form(&[("grant_type", "client_credentials")])
                    .send()
                    .await;
                // The process is gone: this client's run ends.
                let Ok(res) = sent else { return };
                let Ok(body) = res.json::<Value>().await else {
                    return;
                };
                let token = body["access_token"]
                    .as_str()
                    .unwrap_or_else(|| panic!("no access token in {body}"))
                    .to_owned();
                let mut list = received.lock().unwrap();
                list.push(token);
                if list.len() >= ACKNOWLEDGED {
                    enough.notify_one();
                }
            }
        }));
    }
    enough.notified().await;
    // SIGKILL to authz's process group (Drop), with other requests still in flight.
    drop(authz);
    for client in clients {
        tokio::time::timeout(Duration::from_secs(20), client)
            .await
            .expect("clients stop once authz is gone")
            .unwrap();
    }
    let tokens = std::mem::take(&mut *received.lock().unwrap());
    assert!(tokens.len() >= ACKNOWLEDGED);

    let authz = Service::start("authz", data.path(), &env).await;
    let http = reqwest::Client::new();
    let mut inactive = 0;
    for token in &tokens {
        let answer: Value = http
            .post(format!("{}/introspect", authz.url("http")))
            .basic_auth("checker", Some(&checker_secret))
            .form(&[("token", token.as_str())])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if answer["active"] != Value::Bool(true) {
            inactive += 1;
        }
    }
    assert_eq!(
        inactive,
        0,
        "of {} acknowledged opaque tokens, {inactive} were lost by kill -9",
        tokens.len()
    );
}

mod acknowledged_opaque_tokens_survive_kill_9 {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        let data = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/authz.db", data.path().display());
        acknowledged_tokens_survive_kill(url).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        let Some(db) = TestDatabase::postgres(&authz::MIGRATIONS).await.unwrap() else {
            eprintln!(
                "skipped: {} is not set",
                storage::testing::TEST_POSTGRES_URL
            );
            return;
        };
        acknowledged_tokens_survive_kill(db.config().url.expose().to_owned()).await;
    }
}
