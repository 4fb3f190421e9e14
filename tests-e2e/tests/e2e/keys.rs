//! Signing keys across real authz processes: JWKS served by the binary, and two replicas on
//! one PostgreSQL database rotating exactly once per period.

use std::time::{Duration, Instant};

use storage::testing::TestDatabase;

use crate::harness::Service;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Two authz processes share one PostgreSQL database (the scale-out store).
mod two_processes_rotate_once_per_period {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        let Some(db) = TestDatabase::postgres(&authz::MIGRATIONS).await.unwrap() else {
            eprintln!(
                "skipped: {} is not set",
                storage::testing::TEST_POSTGRES_URL
            );
            return;
        };
        let data = tempfile::tempdir().unwrap();
        // A 4 s period, keys published 2 s ahead, checked every 200 ms.
        let settings = env(&[
            ("AUTHZ__DATABASE__URL", db.config().url.expose()),
            ("AUTHZ__KEYS__ALGORITHMS", "[ES256]"),
            ("AUTHZ__KEYS__DEFAULT_ALG", "ES256"),
            ("AUTHZ__KEYS__ROTATION_PERIOD", "4s"),
            ("AUTHZ__KEYS__PUBLISH_AHEAD", "2s"),
            ("AUTHZ__KEYS__JWKS_MAX_AGE", "1s"),
            ("AUTHZ__KEYS__RETIRED_RETENTION", "60s"),
            ("AUTHZ__KEYS__CHECK_INTERVAL", "200ms"),
        ]);
        let began = Instant::now();
        let a = Service::start("authz", data.path(), &settings).await;
        let b_dir = tempfile::tempdir().unwrap();
        let b = Service::start("authz", b_dir.path(), &settings).await;
        let started = Instant::now();
        // Keys are created at about 0, 2, 6 and 10 s: look at 8 s, between two creations.
        tokio::time::sleep(Duration::from_millis(8_000)).await;

        // What both replicas publish: the same keys.
        let jwks = |s: &Service| {
            let url = format!("{}/.well-known/jwks.json", s.url("http"));
            async move {
                let body: serde_json::Value =
                    reqwest::get(url).await.unwrap().json().await.unwrap();
                let mut kids: Vec<String> = body["keys"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|k| k["kid"].as_str().unwrap().to_owned())
                    .collect();
                kids.sort();
                kids
            }
        };
        // Each replica reloads the key table every check_interval (200 ms), so right after
        // one of them creates a key the other may publish it a moment later: they must
        // agree within a few intervals, not at every instant.
        let (mut ka, mut kb) = (jwks(&a).await, jwks(&b).await);
        let converge = Instant::now();
        while ka != kb && converge.elapsed() < Duration::from_secs(2) {
            tokio::time::sleep(Duration::from_millis(100)).await;
            (ka, kb) = (jwks(&a).await, jwks(&b).await);
        }
        assert_eq!(
            ka, kb,
            "replicas still disagree on the published keys after 2 s"
        );

        let listed = std::process::Command::new(crate::harness::binary("authz"))
            .current_dir(crate::harness::workspace())
            .args(["keys", "list", "--json"])
            .envs(settings.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("AUTHZ__KEYS__ENCRYPTION_KEY", crate::harness::TEST_KEK)
            .output()
            .unwrap();
        assert!(
            listed.status.success(),
            "{}",
            String::from_utf8_lossy(&listed.stderr)
        );
        let mut keys: Vec<serde_json::Value> = serde_json::from_slice(&listed.stdout).unwrap();
        keys.sort_by_key(|k| k["generation"].as_i64().unwrap());
        let elapsed = began.elapsed().as_secs_f64();
        let generations: Vec<i64> = keys
            .iter()
            .map(|k| k["generation"].as_i64().unwrap())
            .collect();
        let activations: Vec<i64> = keys
            .iter()
            .map(|k| k["activates_at"].as_i64().unwrap())
            .collect();
        // One generation per 4 s period since the first start, plus the successor created
        // 2 s ahead and the first key: never a duplicate, never a skipped period.
        assert!(
            generations.windows(2).all(|w| w[1] == w[0] + 1),
            "{generations:?}"
        );
        let newest = *generations.last().unwrap() as f64;
        assert!(
            newest >= (started.elapsed().as_secs_f64() / 4.0).floor()
                && newest <= elapsed / 4.0 + 2.0,
            "{generations:?} after {elapsed:.1}s"
        );
        assert!(
            activations.windows(2).all(|w| w[1] - w[0] == 4),
            "activations {activations:?} not one period apart"
        );
        let stored: Vec<&str> = keys.iter().map(|k| k["kid"].as_str().unwrap()).collect();
        assert!(
            ka.iter().all(|kid| stored.contains(&kid.as_str())),
            "published keys {ka:?} are not all stored {stored:?}"
        );
        drop((a, b));
    }
}
