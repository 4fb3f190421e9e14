//! `make demo` end to end: `deployments/demo.sh` itself on a temporary data directory,
//! then `demo walk --json` against it; stopped with SIGTERM and started again on the same
//! directory, it keeps the data, seeds nothing twice and the walk still passes; started with
//! `--reset-demo`, authz and idp delete their demo data and seed all of it again. The demo
//! data is seeded by the services (`serve --demo`), which print `[authz] demo: …` and
//! `[idp] demo: …` lines before they serve; demo.sh itself only creates the wiring (KEK,
//! generated secrets, idp's LoginFlow client). With idp stopped, the walk reports the steps
//! that need it as failed or skipped, passes the others and exits 1; a malformed `--issuer`
//! exits 2. The device grant (RFC 8628) runs too: `demo device` signs in through idp's
//! `/device` page driven by the scripted browser.
//!
//! demo.sh runs on free ports the test picks (`DEMO_*_PORT`), not on the documented 8080-8082,
//! 9080-9082, 50051-50052 and 3000, so `make test` passes while a developer runs `make demo`:
//! the test holds 127.0.0.1:8080 itself while it runs to prove it (when 8080 is taken
//! already, that is the same situation).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use demo::browser::{Browser, Page, forms};
use reqwest::{StatusCode, Url};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::harness::workspace;

/// The ports of one demo run, every one free when picked.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ports {
    authz: u16,
    authz_grpc: u16,
    authz_admin: u16,
    idp: u16,
    idp_grpc: u16,
    idp_admin: u16,
    rs: u16,
    rs_admin: u16,
    app: u16,
    /// "Demo Corp SSO", the second pair: authz (http, gRPC, admin), idp (same).
    sso: [u16; 6],
}

impl Ports {
    /// Fifteen distinct loopback ports that were free a moment ago (bound together, then
    /// released for demo.sh's services).
    pub(crate) fn pick() -> Self {
        let probes: Vec<std::net::TcpListener> = (0..15)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind a probe"))
            .collect();
        let p: Vec<u16> = probes
            .iter()
            .map(|l| l.local_addr().expect("probe address").port())
            .collect();
        Self {
            authz: p[0],
            authz_grpc: p[1],
            authz_admin: p[2],
            idp: p[3],
            idp_grpc: p[4],
            idp_admin: p[5],
            rs: p[6],
            rs_admin: p[7],
            app: p[8],
            sso: [p[9], p[10], p[11], p[12], p[13], p[14]],
        }
    }

    /// demo.sh's environment for these ports.
    fn env(&self) -> Vec<(&'static str, String)> {
        [
            ("DEMO_AUTHZ_PORT", self.authz),
            ("DEMO_AUTHZ_GRPC_PORT", self.authz_grpc),
            ("DEMO_AUTHZ_ADMIN_PORT", self.authz_admin),
            ("DEMO_IDP_PORT", self.idp),
            ("DEMO_IDP_GRPC_PORT", self.idp_grpc),
            ("DEMO_IDP_ADMIN_PORT", self.idp_admin),
            ("DEMO_RS_PORT", self.rs),
            ("DEMO_RS_ADMIN_PORT", self.rs_admin),
            ("DEMO_APP_PORT", self.app),
            ("DEMO_SSO_AUTHZ_PORT", self.sso[0]),
            ("DEMO_SSO_AUTHZ_GRPC_PORT", self.sso[1]),
            ("DEMO_SSO_AUTHZ_ADMIN_PORT", self.sso[2]),
            ("DEMO_SSO_IDP_PORT", self.sso[3]),
            ("DEMO_SSO_IDP_GRPC_PORT", self.sso[4]),
            ("DEMO_SSO_IDP_ADMIN_PORT", self.sso[5]),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.to_string()))
        .collect()
    }

    pub(crate) fn issuer(&self) -> String {
        format!("http://localhost:{}", self.authz)
    }

    fn rs_url(&self) -> String {
        format!("http://localhost:{}", self.rs)
    }

    /// The demo app's home page URL (`/` included).
    pub(crate) fn app_url(&self) -> String {
        format!("http://localhost:{}/", self.app)
    }
}

/// Build, seed and start: a cold build may take minutes.
const START_TIMEOUT: Duration = Duration::from_secs(600);
const READY_LINE: &str = "All three services are ready.";

/// A running `deployments/demo.sh`, in its own process group (killed on drop).
pub(crate) struct Demo {
    child: Child,
    /// What demo.sh printed up to its ready line.
    output: Vec<String>,
}

impl Demo {
    pub(crate) async fn start(data: &Path, ports: &Ports, args: &[&str]) -> Self {
        let mut child = Command::new("bash")
            .arg(workspace().join("deployments/demo.sh"))
            .args(args)
            .current_dir(workspace())
            .env("DEMO_DATA", data)
            .envs(ports.env())
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

    /// The process id demo.sh recorded for `name` (`authz`, `idp`, `rs`, `app`) in
    /// `<data>/demo.pids`.
    fn pid_of(data: &Path, name: &str) -> u32 {
        let pids = std::fs::read_to_string(data.join("demo.pids")).expect("demo.pids");
        pids.lines()
            .filter_map(|l| l.split_once(' '))
            .find(|(n, _)| *n == name)
            .and_then(|(_, pid)| pid.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in demo.pids:\n{pids}"))
    }

    /// SIGTERM to the whole group, as ctrl-c does; demo.sh must stop everything and exit.
    pub(crate) async fn stop(mut self) {
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
const SEEDED: [&str; 6] = [
    "demo: created user demo / demo-password",
    "demo: registered admin client demo-admin / demo-admin-secret (every admin scope; Swagger UI at /admin/docs on the admin port)",
    "demo: registered client demo-client / demo-secret",
    "demo: registered client demo-rs / demo-rs-secret (may introspect)",
    "demo: registered public client demo-spa (PKCE, no secret)",
    "demo: registered public client demo-tv (device flow, no secret)",
];
/// What they print when their demo data is there already.
const NOTHING_SEEDED: [&str; 2] = [
    "demo: clients demo-client, demo-spa, demo-rs and demo-tv are registered; nothing seeded",
    "demo: user demo exists; nothing seeded",
];
/// What they print when --reset-demo deletes their demo data.
const DELETED: [&str; 6] = [
    "demo: deleted client demo-admin with its tokens, codes, consents and grants",
    "demo: deleted client demo-client with its tokens, codes, consents and grants",
    "demo: deleted client demo-rs with its tokens, codes, consents and grants",
    "demo: deleted client demo-spa with its tokens, codes, consents and grants",
    "demo: deleted client demo-tv with its tokens, codes, consents and grants",
    "demo: deleted user demo with its sessions",
];

fn sorted<'a>(lines: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut v: Vec<&str> = lines.into_iter().collect();
    v.sort_unstable();
    v
}

/// `demo walk` with `args` against the demo on `ports`: its exit code, stdout and stderr.
fn walk(ports: &Ports, args: &[&str]) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(crate::harness::binary("demo"))
        .current_dir(workspace())
        .args(["walk"])
        .args(if args.contains(&"--issuer") {
            Vec::new()
        } else {
            vec!["--issuer".to_owned(), ports.issuer()]
        })
        .args(["--rs", &ports.rs_url(), "--app", &ports.app_url()])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `demo walk --json`: its exit code and report.
fn walk_json(ports: &Ports) -> (Option<i32>, Value) {
    let (code, stdout, stderr) = walk(ports, &["--json"]);
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("demo walk --json printed no JSON ({e}): {stdout}\n{stderr}"));
    (code, report)
}

/// `demo walk --json` against the running demo: every step must pass.
fn walk_the_demo(ports: Ports) {
    let (code, report) = walk_json(&ports);
    let steps = report["steps"].as_array().unwrap();
    let failed: Vec<&Value> = steps.iter().filter(|s| s["ok"] != true).collect();
    assert!(failed.is_empty(), "failed steps: {failed:?}");
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["passed"], steps.len(), "{report}");
    assert_eq!(report["failed"], 0, "{report}");
    assert_eq!(code, Some(0), "{report}");
    let names: Vec<&str> = steps.iter().map(|s| s["name"].as_str().unwrap()).collect();
    for name in [
        "client_credentials",
        "browser_login",
        "rs_delegate",
        "refresh",
        "device_login",
        "logout",
    ] {
        assert!(names.contains(&name), "no step {name}: {names:?}");
    }
    // rs runs in hybrid mode in the demo: after the revoke step it refuses the revoked
    // grant's access token.
    let revoke = steps.iter().find(|s| s["name"] == "revoke").unwrap();
    assert!(
        revoke["detail"]
            .as_str()
            .unwrap()
            .contains("rs: HTTP 401 for its access token"),
        "{revoke}"
    );
}

/// The steps that need no idp: they pass while it is down.
const WITHOUT_IDP: [&str; 5] = [
    "discovery",
    "jwks",
    "client_credentials",
    "rs_items",
    "introspection",
];
/// The steps after the browser login: they need its code, so they cannot run without idp.
const AFTER_LOGIN: [&str; 8] = [
    "code_exchange",
    "userinfo",
    "rs_me",
    "rs_delegate",
    "refresh",
    "revoke",
    "device_login",
    "logout",
];

/// With idp stopped: the browser login fails, the steps that need its code are skipped,
/// every other step still runs and passes, and the walk exits 1, in JSON and in lines.
fn walk_without_idp(ports: Ports) {
    let (code, report) = walk_json(&ports);
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(report["ok"], false, "{report}");
    let status = |name: &str| -> (String, String) {
        let step = report["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no step {name}: {report}"));
        (
            step["status"].as_str().unwrap().to_owned(),
            step["detail"].as_str().unwrap().to_owned(),
        )
    };
    for name in WITHOUT_IDP {
        assert_eq!(status(name).0, "passed", "{name}: {report}");
    }
    let (login, why) = status("browser_login");
    assert_eq!(login, "failed", "{report}");
    assert!(
        why.contains(&format!("localhost:{}", ports.idp)),
        "the failure names idp's page: {why}"
    );
    assert!(
        why.contains("Connection refused") && !why.contains("login_challenge"),
        "the failure says why, without the pending request's handle: {why}"
    );
    for name in AFTER_LOGIN {
        let (state, detail) = status(name);
        assert_eq!(state, "skipped", "{name}: {report}");
        assert!(detail.starts_with("skipped: needs "), "{name}: {detail}");
    }
    assert!(status("code_exchange").1.contains("browser_login"));
    assert_eq!(report["passed"], WITHOUT_IDP.len(), "{report}");
    assert_eq!(report["failed"], 1 + AFTER_LOGIN.len(), "{report}");
    assert_eq!(report["skipped"], AFTER_LOGIN.len(), "{report}");

    let (code, stdout, _) = walk(&ports, &[]);
    assert_eq!(code, Some(1), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.len(),
        1 + WITHOUT_IDP.len() + 1 + AFTER_LOGIN.len(),
        "{stdout}"
    );
    assert!(lines[0].starts_with("ok      discovery "), "{stdout}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("FAILED  browser_login ")),
        "{stdout}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("SKIPPED logout ")),
        "{stdout}"
    );
    assert_eq!(
        lines.last().copied(),
        Some("5 passed, 9 failed (8 of them skipped: a step they need failed)"),
        "{stdout}"
    );
}

/// A malformed URL argument is a usage error: exit 2 and one line, before any request.
fn walk_with_a_bad_issuer(ports: Ports) {
    let (code, stdout, stderr) = walk(&ports, &["--issuer", "localhost:8080"]);
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: --issuer "), "{stderr}");
}

/// Submits the form of `page` that posts to `path` (with hidden `what` = `value` when
/// given), expects the app's 303 back to its home page, and returns that page.
async fn click(
    browser: &mut Browser,
    app: &str,
    page: &Page,
    path: &str,
    what: Option<&str>,
) -> Page {
    let form = forms(&page.url, &page.body)
        .unwrap()
        .into_iter()
        .find(|f| f.action.path() == path && (what.is_none() || f.field("what") == what))
        .unwrap_or_else(|| panic!("no form to {path} {what:?} on\n{}", page.body));
    let res = browser.submit(&form, &[]).await.unwrap();
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{res:?}");
    assert_eq!(res.location.as_ref().map(Url::path), Some("/"), "{res:?}");
    browser.get(&Url::parse(app).unwrap()).await.unwrap()
}

/// Signs in on the demo app's home page `page` with the button for `client` (`web` or
/// `spa`) through idp's pages, and returns the app's home page afterwards and the idp
/// forms filled on the way.
pub(crate) async fn sign_in(
    browser: &mut Browser,
    app: &str,
    page: &Page,
    client: &str,
) -> (Page, Vec<&'static str>) {
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
        .through_login(res, &format!("{app}{callback}?"), "demo", "demo-password")
        .await
        .unwrap();
    let back = browser.get(&to).await.unwrap();
    assert_eq!(back.location.as_ref().map(Url::path), Some("/"), "{back:?}");
    (
        browser.get(&Url::parse(app).unwrap()).await.unwrap(),
        filled,
    )
}

/// What a newcomer does with the URL `make demo` prints: the demo app's home page, sign in
/// through authz and idp, rs and userinfo with the access token, a refresh, RP-initiated
/// logout back to the app, then a sign-in as the public client, which must log in again.
async fn visit_the_demo_app(ports: Ports) {
    let app = ports.app_url();
    let app = app.as_str();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // The health check answers without making a session.
    let health = http.get(format!("{app}healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert!(health.headers().get("set-cookie").is_none());
    let mut browser = Browser::new(http);
    let home = Url::parse(app).unwrap();
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

    let (page, filled) = sign_in(&mut browser, app, &page, "web").await;
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

    let page = click(&mut browser, app, &page, "/call", Some("me")).await;
    assert!(
        page.body
            .contains(&format!("GET {}/api/v1/me", ports.rs_url())),
        "{}",
        page.body
    );
    assert!(page.body.contains("200 OK"), "{}", page.body);
    let page = click(&mut browser, app, &page, "/call", Some("userinfo")).await;
    assert!(
        page.body.contains("200 OK") && page.body.contains("email_verified"),
        "{}",
        page.body
    );
    let page = click(&mut browser, app, &page, "/refresh", None).await;
    assert!(page.body.contains("refreshed 1 time(s)"), "{}", page.body);
    let page = click(&mut browser, app, &page, "/call", Some("items")).await;
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
        if to.as_str().starts_with(app) {
            break;
        }
    }
    assert!(res.body.contains("Signed out of authz and idp."), "{res:?}");

    // The public client: idp's session ended, so the login form comes again.
    let (page, filled) = sign_in(&mut browser, app, &res, "spa").await;
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

    // logout: signing out at idp's own logout page reaches the demo app over the back
    // channel (idp → LoginFlow.SessionEnded → authz → POST /backchannel-logout, a logout
    // token the app verifies against the JWKS), and the app's page says its session ended.
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
        if to.as_str().starts_with(app) {
            break;
        }
    }
    let (page, _) = sign_in(&mut browser, app, &res, "web").await;
    assert!(
        page.body.contains("<code>demo-client</code>"),
        "{}",
        page.body
    );
    let idp_logout = Url::parse(&format!("http://localhost:{}/logout", ports.idp)).unwrap();
    let confirm = browser.get(&idp_logout).await.unwrap();
    let form = forms(&confirm.url, &confirm.body)
        .unwrap()
        .into_iter()
        .find(|f| f.action.path().ends_with("/logout"))
        .unwrap_or_else(|| panic!("no sign-out form on\n{}", confirm.body));
    let done = browser.submit(&form, &[]).await.unwrap();
    assert_eq!(done.status, StatusCode::OK, "{done:?}");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let page = browser.get(&Url::parse(app).unwrap()).await.unwrap();
        if page.body.contains("back-channel logout token arrived") {
            assert!(!page.body.contains("Signed in as"), "{}", page.body);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the demo app was not told: {}",
            page.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn make_demo_runs_a_second_start_keeps_its_data_and_reset_starts_over() {
    // What `make demo` would hold: the test must not need it.
    let _authz_default_port = std::net::TcpListener::bind(("127.0.0.1", 8080));
    let data = tempfile::tempdir().unwrap();
    let ports = Ports::pick();

    // First start: demo.sh creates the KEK and the generated secrets and registers idp's
    // LoginFlow client; authz and idp seed every piece of demo data.
    let demo = Demo::start(data.path(), &ports, &[]).await;
    assert_eq!(demo.demo_data(), SEEDED, "{:#?}", demo.output);
    let wiring: Vec<&str> = demo
        .seeded()
        .into_iter()
        .filter(|l| !SEEDED.contains(l))
        .collect();
    assert_eq!(
        wiring.len(),
        17,
        "KEK, 3 secrets, the demo CA, 3 TLS certificates, client idp; Demo Corp SSO's KEK, \
         4 secrets, clients idp and demo-idp, user carol: {wiring:#?}"
    );
    for svc in ["authz", "idp", "rs"] {
        assert!(
            wiring.iter().any(|l| l.starts_with("demo: created")
                && l.ends_with(&format!(
                    "/pki/{svc}/fullchain.pem (TLS certificate of {svc})"
                ))),
            "{wiring:#?}"
        );
    }
    assert!(
        wiring
            .iter()
            .any(|l| l.starts_with("demo: registered client idp ")),
        "{wiring:#?}"
    );
    tokio::task::spawn_blocking(move || walk_the_demo(ports))
        .await
        .unwrap();
    visit_the_demo_app(ports).await;
    sign_in_through_demo_corp_sso(ports).await;
    device_login(ports).await;
    demo.stop().await;

    // Second start: nothing is created or registered, and both services say so.
    let demo = Demo::start(data.path(), &ports, &[]).await;
    assert!(
        demo.seeded().is_empty(),
        "a second start seeded again: {:#?}",
        demo.seeded()
    );
    assert_eq!(demo.demo_data(), NOTHING_SEEDED, "{:#?}", demo.output);
    tokio::task::spawn_blocking(move || walk_the_demo(ports))
        .await
        .unwrap();
    demo.stop().await;

    // --reset-demo: the services delete their demo data and seed all of it again; the
    // wiring (KEK, secrets, client idp) stays as it is.
    let demo = Demo::start(data.path(), &ports, &["--reset-demo"]).await;
    assert_eq!(
        demo.demo_data(),
        sorted(DELETED.into_iter().chain(SEEDED)),
        "{:#?}",
        demo.output
    );
    assert_eq!(sorted(demo.seeded()), SEEDED, "{:#?}", demo.output);
    tokio::task::spawn_blocking(move || walk_the_demo(ports))
        .await
        .unwrap();
    tokio::task::spawn_blocking(move || walk_with_a_bad_issuer(ports))
        .await
        .unwrap();

    // idp stopped: the walk goes on without it and says what failed.
    stop_idp(data.path(), &ports).await;
    tokio::task::spawn_blocking(move || walk_without_idp(ports))
        .await
        .unwrap();
    demo.stop().await;
}

/// "Sign in with Demo Corp SSO" on the demo as a newcomer would: the demo app's button, the
/// first idp's login page, the second pair's own login page (carol / carol-password, the
/// user demo.sh seeds there), its consent page, the first-login setup step, the first pair's
/// consent page, and the demo app signed in as the new local account.
async fn sign_in_through_demo_corp_sso(ports: Ports) {
    let app = ports.app_url();
    let app = app.as_str();
    let idp = format!("http://localhost:{}", ports.idp);
    let sso_issuer = format!("http://127.0.0.1:{}", ports.sso[0]);
    let callback = format!("{idp}/upstream/corp/callback");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut browser = Browser::new(http);
    let page = browser.get(&Url::parse(app).unwrap()).await.unwrap();
    let form = forms(&page.url, &page.body)
        .unwrap()
        .into_iter()
        .find(|f| f.action.path() == "/login" && f.field("client") == Some("web"))
        .unwrap_or_else(|| panic!("no sign-in button on\n{}", page.body));
    let res = browser.submit(&form, &[]).await.unwrap();
    let res = browser.get(res.location.as_ref().unwrap()).await.unwrap();
    let to = res.location.clone().unwrap_or_else(|| panic!("{res:?}"));
    assert!(to.as_str().starts_with(&format!("{idp}/login?")), "{to}");
    let login = browser.get(&to).await.unwrap();
    assert!(
        login.body.contains("Sign in with Demo Corp SSO"),
        "{}",
        login.body
    );
    let button = forms(&login.url, &login.body)
        .unwrap()
        .into_iter()
        .find(|f| f.action.path() == "/upstream/start")
        .unwrap_or_else(|| panic!("no upstream button on\n{}", login.body));
    let at_sso = browser
        .submit(&button, &[("provider", "corp")])
        .await
        .unwrap();
    let to = at_sso
        .location
        .clone()
        .unwrap_or_else(|| panic!("{at_sso:?}"));
    assert!(
        to.as_str().starts_with(&format!("{sso_issuer}/authorize?")),
        "{to}"
    );
    let res = browser.get(&to).await.unwrap();
    let (back, filled) = browser
        .through_login(res, &callback, "carol", "carol-password")
        .await
        .unwrap();
    assert_eq!(filled[0], "login", "Demo Corp SSO's own login page");
    let res = browser.get(&back).await.unwrap();
    let setup = res.location.clone().unwrap_or_else(|| panic!("{res:?}"));
    assert!(
        setup
            .as_str()
            .starts_with(&format!("{idp}/upstream/setup?pending=")),
        "{setup}"
    );
    let page = browser.get(&setup).await.unwrap();
    assert!(page.body.contains("carol@corp.example"), "{}", page.body);
    let form = forms(&page.url, &page.body)
        .unwrap()
        .into_iter()
        .find(|f| f.action.path() == "/upstream/setup")
        .unwrap_or_else(|| panic!("no setup form on\n{}", page.body));
    let done = browser
        .submit(&form, &[("username", "carol"), ("action", "create")])
        .await
        .unwrap();
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{done:?}");
    let res = browser.get(done.location.as_ref().unwrap()).await.unwrap();
    let (to, filled) = browser
        .through_login(res, &format!("{app}callback?"), "", "")
        .await
        .unwrap();
    assert_eq!(filled, vec!["consent"]);
    let back = browser.get(&to).await.unwrap();
    assert_eq!(back.location.as_ref().map(Url::path), Some("/"), "{back:?}");
    let home = browser.get(&Url::parse(app).unwrap()).await.unwrap();
    assert!(home.body.contains("Signed in as"), "{}", home.body);
    assert!(home.body.contains("carol"), "{}", home.body);
}

/// The device authorization grant (RFC 8628) across the real authz and idp: `demo device`
/// (the TV) prints the URL and the code; the scripted browser opens
/// `verification_uri_complete` at idp, confirms the code, signs in as the demo user and
/// allows; the TV's polling ends in tokens whose claims it prints (verified against the
/// JWKS). A second device authorization is denied in the browser and its poll says
/// `access_denied`; its device code, approved or not, never gives tokens twice.
async fn device_login(ports: Ports) {
    use demo::device::{self, Poll};
    use tokio::io::AsyncReadExt;

    let mut tv = Command::new(crate::harness::binary("demo"))
        .current_dir(workspace())
        .args(["device"])
        .args(["--issuer", &ports.issuer()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(tv.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    let complete = loop {
        let line = tokio::time::timeout(Duration::from_secs(120), stdout.next_line())
            .await
            .expect("demo device prints the URL")
            .unwrap()
            .expect("demo device ended early");
        printed.push(line.clone());
        if let Some(url) = line
            .strip_prefix("(or open ")
            .and_then(|l| l.strip_suffix(')'))
        {
            break url.to_owned();
        }
    };
    let idp = format!("http://localhost:{}/device", ports.idp);
    assert_eq!(
        printed[0],
        format!("To sign in, visit {idp}"),
        "{printed:?}"
    );
    let code = printed[1]
        .strip_prefix("and enter the code ")
        .unwrap()
        .to_owned();
    assert!(
        code.len() == 9 && code.as_bytes()[4] == b'-',
        "XXXX-XXXX: {code}"
    );
    assert_eq!(complete, format!("{idp}?user_code={code}"));

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut browser = Browser::new(http.clone());
    let filled = browser
        .through_device(&complete, "demo", "demo-password")
        .await
        .unwrap();
    assert_eq!(filled, ["code", "login", "allow"]);

    let mut rest = String::new();
    let status = tokio::time::timeout(Duration::from_secs(60), async {
        stdout.into_inner().read_to_string(&mut rest).await.unwrap();
        tv.wait().await.unwrap()
    })
    .await
    .expect("demo device ends once approved");
    let mut stderr = String::new();
    if let Some(mut e) = tv.stderr.take() {
        e.read_to_string(&mut stderr).await.unwrap();
    }
    assert!(status.success(), "{rest}\n{stderr}");
    assert!(
        rest.contains("signed in: scope \"items:read offline_access openid profile\""),
        "{rest}"
    );
    assert!(rest.contains("access token claims"), "{rest}");
    assert!(rest.contains("\"client_id\": \"demo-tv\""), "{rest}");
    assert!(rest.contains("ID token claims:"), "{rest}");
    assert!(rest.contains("\"preferred_username\": \"demo\""), "{rest}");
    assert!(rest.contains("a refresh token was issued too"), "{rest}");

    // Denied in the browser (already signed in: straight to the confirmation).
    let endpoints = device::endpoints(&http, &ports.issuer()).await.unwrap();
    let codes = device::start(&http, &endpoints, "demo-tv", "openid")
        .await
        .unwrap();
    assert_eq!(codes.interval, 5);
    let poll = |code: String| {
        let (http, endpoints) = (http.clone(), endpoints.clone());
        async move {
            device::poll(&http, &endpoints, "demo-tv", &code)
                .await
                .unwrap()
        }
    };
    assert_eq!(poll(codes.device_code.clone()).await, Poll::Pending);
    assert_eq!(poll(codes.device_code.clone()).await, Poll::SlowDown);
    let page = browser
        .get(&Url::parse(&codes.verification_uri_complete).unwrap())
        .await
        .unwrap();
    let form = forms(&page.url, &page.body).unwrap().remove(0);
    let confirm = browser
        .submit(
            &form,
            &[("user_code", &codes.user_code), ("action", "submit")],
        )
        .await
        .unwrap();
    assert!(confirm.body.contains("Demo TV"), "{}", confirm.body);
    let form = forms(&confirm.url, &confirm.body).unwrap().remove(0);
    let denied = browser.submit(&form, &[("action", "deny")]).await.unwrap();
    assert!(
        denied.body.contains("Device not connected"),
        "{}",
        denied.body
    );
    match poll(codes.device_code.clone()).await {
        Poll::Failed(error, _) => assert_eq!(error, "access_denied"),
        other => panic!("{other:?}"),
    }
    // The code is answered: confirming it again shows that it is used up.
    let again = browser.submit(&form, &[("action", "allow")]).await.unwrap();
    assert_eq!(again.status, StatusCode::GONE, "{}", again.body);
}

/// SIGTERM to demo.sh's idp alone; returns once its public port refuses connections.
async fn stop_idp(data: &Path, ports: &Ports) {
    let pid = Demo::pid_of(data, "idp");
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(sent.success(), "kill idp ({pid})");
    let gone = tokio::time::timeout(Duration::from_secs(30), async {
        while tokio::net::TcpStream::connect(("127.0.0.1", ports.idp))
            .await
            .is_ok()
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(gone.is_ok(), "idp still answers 30 s after SIGTERM");
}
