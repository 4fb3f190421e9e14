//! `make demo` end to end: `deployments/demo.sh` itself on a temporary data directory,
//! then `authz demo --json` against it; stopped with SIGTERM and started again on the same
//! directory, it keeps the data, seeds nothing twice and the demo still passes; started with
//! `--reset-demo`, authz and idp delete their demo data and seed all of it again. The demo
//! data is seeded by the services (`serve --demo`), which print `[authz] demo: …` and
//! `[idp] demo: …` lines before they serve; demo.sh itself only creates the wiring (KEK,
//! generated secrets, idp's LoginFlow client).
//!
//! The demo listens on its documented fixed ports (8080-8082, 50051-50052, 9080-9082):
//! this is the only e2e test that uses them (every other one binds port 0), so it cannot
//! collide with another test; it does collide with a `make demo` running on this machine,
//! and says so.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use authz::demo::browser::{Browser, Page, forms};
use reqwest::{StatusCode, Url};
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

    /// Every line saying that something was created or registered, by demo.sh itself
    /// (`demo: created …`: the KEK and generated secrets; `demo: registered client idp …`)
    /// or by authz and idp seeding their demo data (`[authz] demo: registered …`,
    /// `[idp] demo: created …`).
    fn seeded(&self) -> Vec<&str> {
        self.output
            .iter()
            .map(|l| unprefixed(l))
            .filter(|l| l.starts_with("demo: created") || l.starts_with("demo: registered"))
            .collect()
    }

    /// What authz and idp said about their demo data (`serve --demo` / `--reset-demo`),
    /// without the `[svc] ` prefix, sorted (the two start concurrently).
    fn demo_data(&self) -> Vec<&str> {
        let mut lines: Vec<&str> = self
            .output
            .iter()
            .filter_map(|l| {
                l.strip_prefix("[authz] ")
                    .or_else(|| l.strip_prefix("[idp] "))
            })
            .filter(|l| l.starts_with("demo: "))
            .collect();
        lines.sort_unstable();
        lines
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

/// A line of demo.sh's output without the `[svc] ` prefix of a service's line.
fn unprefixed(line: &str) -> &str {
    line.strip_prefix("[authz] ")
        .or_else(|| line.strip_prefix("[idp] "))
        .or_else(|| line.strip_prefix("[rs] "))
        .unwrap_or(line)
}

/// What authz and idp print when they seed their demo data.
const SEEDED: [&str; 4] = [
    "demo: created user demo / demo-password",
    "demo: registered client demo-client / demo-secret",
    "demo: registered client demo-rs / demo-rs-secret (may introspect)",
    "demo: registered public client demo-spa (PKCE, no secret)",
];
/// What they print when their demo data is there already.
const NOTHING_SEEDED: [&str; 2] = [
    "demo: clients demo-client, demo-spa and demo-rs are registered; nothing seeded",
    "demo: user demo exists; nothing seeded",
];
/// What they print when --reset-demo deletes their demo data.
const DELETED: [&str; 4] = [
    "demo: deleted client demo-client with its tokens, codes, consents and grants",
    "demo: deleted client demo-rs with its tokens, codes, consents and grants",
    "demo: deleted client demo-spa with its tokens, codes, consents and grants",
    "demo: deleted user demo with its sessions",
];

fn sorted<'a>(lines: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut v: Vec<&str> = lines.into_iter().collect();
    v.sort_unstable();
    v
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

const APP: &str = "http://localhost:3000/";

/// Submits the form of `page` that posts to `path` (with hidden `what` = `value` when
/// given), expects the app's 303 back to its home page, and returns that page.
async fn click(browser: &mut Browser, page: &Page, path: &str, what: Option<&str>) -> Page {
    let form = forms(&page.url, &page.body)
        .unwrap()
        .into_iter()
        .find(|f| f.action.path() == path && (what.is_none() || f.field("what") == what))
        .unwrap_or_else(|| panic!("no form to {path} {what:?} on\n{}", page.body));
    let res = browser.submit(&form, &[]).await.unwrap();
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{res:?}");
    assert_eq!(res.location.as_ref().map(Url::path), Some("/"), "{res:?}");
    browser.get(&Url::parse(APP).unwrap()).await.unwrap()
}

/// Signs in on the demo app's home page `page` with the button for `client` (`web` or
/// `spa`) through idp's pages, and returns the app's home page afterwards and the idp
/// forms filled on the way.
async fn sign_in(browser: &mut Browser, page: &Page, client: &str) -> (Page, Vec<&'static str>) {
    let form = forms(&page.url, &page.body)
        .unwrap()
        .into_iter()
        .find(|f| f.action.path() == "/login" && f.field("client") == Some(client))
        .unwrap_or_else(|| panic!("no sign-in button for {client} on\n{}", page.body));
    let res = browser.submit(&form, &[]).await.unwrap();
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{res:?}");
    let callback = if client == "spa" {
        "spa/callback"
    } else {
        "callback"
    };
    let (to, filled) = browser
        .through_login(res, &format!("{APP}{callback}?"), "demo", "demo-password")
        .await
        .unwrap();
    let back = browser.get(&to).await.unwrap();
    assert_eq!(back.location.as_ref().map(Url::path), Some("/"), "{back:?}");
    (
        browser.get(&Url::parse(APP).unwrap()).await.unwrap(),
        filled,
    )
}

/// What a newcomer does with the URL `make demo` prints: the demo app's home page, sign in
/// through authz and idp, rs and userinfo with the access token, a refresh, RP-initiated
/// logout back to the app, then a sign-in as the public client, which must log in again.
async fn visit_the_demo_app() {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // The health check answers without making a session.
    let health = http.get(format!("{APP}healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert!(health.headers().get("set-cookie").is_none());
    let mut browser = Browser::new(http);
    let home = Url::parse(APP).unwrap();
    let page = browser.get(&home).await.unwrap();
    assert_eq!(page.status, StatusCode::OK);
    assert!(browser.has("demo_app"), "no session cookie");
    assert!(page.body.contains("demo-password"), "{}", page.body);

    // A form without the session's CSRF token is refused.
    let forged = browser
        .post(
            &home.join("/login").unwrap(),
            &[
                ("csrf".into(), "forged".into()),
                ("client".into(), "web".into()),
            ],
        )
        .await
        .unwrap();
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    let (page, filled) = sign_in(&mut browser, &page, "web").await;
    assert!(filled.contains(&"login"), "{filled:?}");
    assert!(
        page.body.contains("Signed in as Demo User"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("demo@example.com"),
        "ID token claims: {}",
        page.body
    );
    assert!(
        page.body.contains("Access token claims (a JWT"),
        "{}",
        page.body
    );

    let page = click(&mut browser, &page, "/call", Some("me")).await;
    assert!(
        page.body.contains("GET http://localhost:8082/api/v1/me"),
        "{}",
        page.body
    );
    assert!(page.body.contains("200 OK"), "{}", page.body);
    let page = click(&mut browser, &page, "/call", Some("userinfo")).await;
    assert!(
        page.body.contains("200 OK") && page.body.contains("email_verified"),
        "{}",
        page.body
    );
    let page = click(&mut browser, &page, "/refresh", None).await;
    assert!(page.body.contains("refreshed 1 time(s)"), "{}", page.body);
    let page = click(&mut browser, &page, "/call", Some("items")).await;
    assert!(
        page.body.contains("200 OK"),
        "the refreshed access token works: {}",
        page.body
    );

    // Sign out: the app sends the browser to authz's end_session_endpoint, which ends the
    // authz and idp sessions and comes back to the app with the app's state.
    let form = forms(&page.url, &page.body)
        .unwrap()
        .into_iter()
        .find(|f| f.action.path() == "/logout")
        .unwrap();
    let mut res = browser.submit(&form, &[]).await.unwrap();
    for _ in 0..4 {
        let Some(to) = res.location.clone() else {
            break;
        };
        res = browser.get(&to).await.unwrap();
        if to.as_str().starts_with(APP) {
            break;
        }
    }
    assert!(res.body.contains("Signed out of authz and idp."), "{res:?}");

    // The public client: idp's session ended, so the login form comes again.
    let (page, filled) = sign_in(&mut browser, &res, "spa").await;
    assert!(
        filled.contains(&"login"),
        "logout left a session behind: {filled:?}"
    );
    assert!(
        page.body.contains("Signed in as Demo User"),
        "{}",
        page.body
    );
    assert!(page.body.contains("<code>demo-spa</code>"), "{}", page.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn make_demo_runs_a_second_start_keeps_its_data_and_reset_starts_over() {
    let data = tempfile::tempdir().unwrap();

    // First start: demo.sh creates the KEK and the generated secrets and registers idp's
    // LoginFlow client; authz and idp seed every piece of demo data.
    let demo = Demo::start(data.path(), &[]).await;
    assert_eq!(demo.demo_data(), SEEDED, "{:#?}", demo.output);
    let wiring: Vec<&str> = demo
        .seeded()
        .into_iter()
        .filter(|l| !SEEDED.contains(l))
        .collect();
    assert_eq!(wiring.len(), 5, "KEK, 3 secrets, client idp: {wiring:#?}");
    assert!(
        wiring
            .iter()
            .any(|l| l.starts_with("demo: registered client idp ")),
        "{wiring:#?}"
    );
    tokio::task::spawn_blocking(walk_the_demo).await.unwrap();
    visit_the_demo_app().await;
    demo.stop().await;

    // Second start: nothing is created or registered, and both services say so.
    let demo = Demo::start(data.path(), &[]).await;
    assert!(
        demo.seeded().is_empty(),
        "a second start seeded again: {:#?}",
        demo.seeded()
    );
    assert_eq!(demo.demo_data(), NOTHING_SEEDED, "{:#?}", demo.output);
    tokio::task::spawn_blocking(walk_the_demo).await.unwrap();
    demo.stop().await;

    // --reset-demo: the services delete their demo data and seed all of it again; the
    // wiring (KEK, secrets, client idp) stays as it is.
    let demo = Demo::start(data.path(), &["--reset-demo"]).await;
    assert_eq!(
        demo.demo_data(),
        sorted(DELETED.into_iter().chain(SEEDED)),
        "{:#?}",
        demo.output
    );
    assert_eq!(sorted(demo.seeded()), SEEDED, "{:#?}", demo.output);
    tokio::task::spawn_blocking(walk_the_demo).await.unwrap();
    demo.stop().await;
}
