//! `make demo` end to end: `deployments/demo.sh` itself on a temporary data directory,
//! then `authz demo --json` against it; stopped with SIGTERM and started again on the same
//! directory, it keeps the data, seeds nothing twice and the demo still passes; started with
//! `--reset-demo`, it seeds everything from scratch.
//!
//! The demo listens on its documented fixed ports (8080-8082, 50051-50052, 9080-9082):
//! this is the only e2e test that uses them (every other one binds port 0), so it cannot
//! collide with another test; it does collide with a `make demo` running on this machine,
//! and says so.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::harness::workspace;

/// Build, seed and start: a cold build may take minutes.
const START_TIMEOUT: Duration = Duration::from_secs(600);
const READY_LINE: &str = "All three services are ready.";

/// A running `deployments/demo.sh`, in its own process group (killed on drop).
struct Demo {
    child: Child,
    /// What demo.sh printed up to its ready line.
    output: Vec<String>,
}

impl Demo {
    async fn start(data: &Path, args: &[&str]) -> Self {
        for port in [8080, 8081, 8082, 9080, 9081, 9082, 50051, 50052] {
            assert!(
                std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(),
                "port {port} is in use (is `make demo` running?): the demo test needs it"
            );
        }
        let mut child = Command::new("bash")
            .arg(workspace().join("deployments/demo.sh"))
            .args(args)
            .current_dir(workspace())
            .env("DEMO_DATA", data)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .expect("spawn demo.sh");
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let mut output = Vec::new();
        let ready = tokio::time::timeout(START_TIMEOUT, async {
            while let Some(line) = lines.next_line().await.expect("read demo.sh output") {
                let done = line.contains(READY_LINE);
                output.push(line);
                if done {
                    return true;
                }
            }
            false
        })
        .await;
        assert!(
            matches!(ready, Ok(true)),
            "demo.sh did not get ready:\n{}",
            output.join("\n")
        );
        // Keep draining stdout so the services can never block on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self { child, output }
    }

    /// The seeding lines demo.sh printed (`demo: created …`, `demo: registered …`).
    fn seeded(&self) -> Vec<&String> {
        self.output
            .iter()
            .filter(|l| l.starts_with("demo: created") || l.starts_with("demo: registered"))
            .collect()
    }

    /// SIGTERM to the whole group, as ctrl-c does; demo.sh must stop everything and exit.
    async fn stop(mut self) {
        let pid = self.child.id().expect("demo.sh still running");
        let sent = std::process::Command::new("kill")
            .args(["-TERM", "--", &format!("-{pid}")])
            .status()
            .expect("run kill");
        assert!(sent.success());
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("demo.sh stops within 30s")
            .expect("wait for demo.sh");
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .status();
        }
    }
}

/// `authz demo --json` against the running demo: every step must pass.
fn walk_the_demo() {
    let out = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(workspace())
        .args(["run", "--quiet", "-p", "authz", "--", "demo", "--json"])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "authz demo --json printed no JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let steps = report["steps"].as_array().unwrap();
    let failed: Vec<&Value> = steps.iter().filter(|s| s["ok"] != true).collect();
    assert!(failed.is_empty(), "failed steps: {failed:?}");
    assert_eq!(report["ok"], true, "{report}");
    assert!(out.status.success(), "{report}");
    let names: Vec<&str> = steps.iter().map(|s| s["name"].as_str().unwrap()).collect();
    for name in ["client_credentials", "browser_login", "refresh", "logout"] {
        assert!(names.contains(&name), "no step {name}: {names:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn make_demo_runs_a_second_start_keeps_its_data_and_reset_starts_over() {
    let data = tempfile::tempdir().unwrap();

    let demo = Demo::start(data.path(), &[]).await;
    assert!(
        demo.seeded()
            .iter()
            .any(|l| l.contains("created user demo")),
        "{:?}",
        demo.output
    );
    tokio::task::spawn_blocking(walk_the_demo).await.unwrap();
    demo.stop().await;

    let demo = Demo::start(data.path(), &[]).await;
    assert!(
        demo.seeded().is_empty(),
        "a second start seeded again: {:?}",
        demo.seeded()
    );
    tokio::task::spawn_blocking(walk_the_demo).await.unwrap();
    demo.stop().await;

    // --reset-demo starts from scratch: everything is seeded again.
    let demo = Demo::start(data.path(), &["--reset-demo"]).await;
    assert!(
        demo.seeded().len() >= 9,
        "--reset-demo did not seed from scratch: {:?}",
        demo.output
    );
    tokio::task::spawn_blocking(walk_the_demo).await.unwrap();
    demo.stop().await;
}
