//! The login and consent pages in a real headless Chromium (Debian's `chromium`, which
//! `.ci/run` installs): it renders both pages, saves screenshots, types into the form,
//! presses the buttons and lands at the client's redirect URI with a code.
//!
//! authz is the fake `LoginFlow` here: its `AcceptLogin` answer sends the browser to the
//! consent page and its `AcceptConsent` answer to a callback listener of the test, as the
//! real authz would after issuing a code. Chromium is driven over the DevTools protocol on
//! `--remote-debugging-pipe` (NUL-separated JSON on file descriptors 3 and 4), which needs
//! no websocket client. Without Chromium the test says so and passes.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use proto::authz::v1::{ConsentRequest, LoginRequest};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::fake_authz::{Call, client};
use crate::harness::{PASSWORD, start};

const STEP: Duration = Duration::from_secs(30);

fn find_chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let dirs = std::env::var_os("PATH")?;
    std::env::split_paths(&dirs)
        .flat_map(|d| {
            ["chromium", "chromium-browser", "google-chrome"]
                .into_iter()
                .map(move |n| d.join(n))
        })
        .find(|p| p.is_file())
}

/// A Chromium process and its DevTools pipe.
struct Chromium {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl Chromium {
    async fn launch(binary: &Path, log: &Path) -> Self {
        let profile = tempfile::tempdir().unwrap();
        // fd 3: commands to Chromium, fd 4: its answers; the shell wires the pipes there.
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#"exec "$0" "$@" 3<&0 4>&1 0</dev/null 1>&2"#)
            .arg(binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--mute-audio",
                "--remote-debugging-pipe",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).unwrap())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let input = child.stdin.take().unwrap();
        let output = BufReader::new(child.stdout.take().unwrap());
        Self {
            child,
            input,
            output,
            next_id: 0,
            _profile: profile,
        }
    }

    /// Sends one command (to the page `session`, or the browser) and waits for its answer,
    /// skipping events.
    async fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = session {
            message["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&message).unwrap();
        bytes.push(0);
        self.input.write_all(&bytes).await.unwrap();
        let deadline = Instant::now() + STEP;
        loop {
            let mut buf = Vec::new();
            tokio::time::timeout_at(deadline.into(), self.output.read_until(0, &mut buf))
                .await
                .unwrap_or_else(|_| panic!("{method}: no answer from Chromium"))
                .unwrap();
            assert!(!buf.is_empty(), "{method}: Chromium closed the pipe");
            buf.pop();
            let answer: Value = serde_json::from_slice(&buf).unwrap();
            if answer["id"] == json!(id) {
                assert!(answer.get("error").is_none(), "{method}: {answer}");
                return answer["result"].clone();
            }
        }
    }

    async fn close(mut self) {
        let _ = self.call(None, "Browser.close", json!({})).await;
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}

/// One tab.
struct Tab<'a> {
    chromium: &'a mut Chromium,
    session: String,
}

impl Tab<'_> {
    async fn call(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.chromium.call(Some(&session), method, params).await
    }

    async fn eval(&mut self, expression: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expression, "returnByValue": true }),
            )
            .await;
        assert!(r.get("exceptionDetails").is_none(), "{expression}: {r}");
        r["result"]["value"].clone()
    }

    /// Polls `expression` until it is truthy (the page loads and navigates on its own).
    async fn wait_for(&mut self, expression: &str) -> Value {
        let deadline = Instant::now() + STEP;
        loop {
            let v = self.eval(expression).await;
            if !(v.is_null() || v == json!(false) || v == json!("")) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {expression}; at {}",
                self.eval("location.href").await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn viewport(&mut self, width: u32, height: u32, mobile: bool) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile }),
        )
        .await;
    }

    async fn screenshot(&mut self, path: &Path) {
        let shot = self
            .call("Page.captureScreenshot", json!({ "format": "png" }))
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        assert!(png.len() > 5_000, "a rendered page, not a blank one");
        std::fs::write(path, png).unwrap();
        println!("screenshot: {}", path.display());
    }

    /// A real click in the middle of the element.
    async fn click(&mut self, selector: &str) {
        let rect = self
            .wait_for(&format!(
                "(() => {{ const e = document.querySelector({selector:?}); if (!e) return null; \
                 e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect(); \
                 return {{x: r.x + r.width / 2, y: r.y + r.height / 2}}; }})()"
            ))
            .await;
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({ "type": kind, "x": rect["x"], "y": rect["y"], "button": "left", "clickCount": 1 }),
            )
            .await;
        }
    }

    /// Focuses the field and types `text` as keyboard input.
    async fn type_into(&mut self, selector: &str, text: &str) {
        self.click(selector).await;
        self.call("Input.insertText", json!({ "text": text })).await;
    }
}

/// Serves the client's redirect URI: records each request line, answers a small page.
async fn callback_listener() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && head.len() < 16_384 {
                    if stream.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head);
                log.lock()
                    .unwrap()
                    .push(head.lines().next().unwrap_or_default().to_owned());
                let body = "<!doctype html><title>Demo App</title><h1>Signed in to Demo App</h1>";
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    (base, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_and_consent_in_chromium() {
    let Some(binary) = find_chromium() else {
        println!(
            "SKIPPED login_and_consent_in_chromium: Chromium not found on PATH \
             (install Debian's `chromium`, as .ci/run does, or set CHROMIUM=/path/to/chrome)"
        );
        return;
    };
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("idp-browser");
    std::fs::create_dir_all(&shots).unwrap();

    let db = storage::testing::TestDatabase::sqlite(&idp::MIGRATIONS)
        .await
        .unwrap();
    let idp = start(db, |_| {}).await;
    let demo = idp.user("demo").await;
    let (client_base, requests) = callback_listener().await;
    let scopes: Vec<String> = ["openid", "profile", "email"].map(String::from).into();
    idp.authz.add_login(
        LoginRequest {
            challenge: "browser-login".into(),
            client: client("Demo App"),
            requested_scopes: scopes.clone(),
            ..LoginRequest::default()
        },
        &format!("{}/consent?consent_challenge=browser-consent", idp.url),
    );
    let redirect = format!("{client_base}/callback?code=SplxlOBeZQQYbYS6WxSbIA&state=af0ifjsldkj");
    idp.authz.add_consent(
        ConsentRequest {
            challenge: "browser-consent".into(),
            client: client("Demo App"),
            subject: demo.id.clone(),
            requested_scopes: scopes,
            ..ConsentRequest::default()
        },
        &redirect,
    );

    let mut chromium = Chromium::launch(&binary, &shots.join("chromium.log")).await;
    let target = chromium
        .call(None, "Target.createTarget", json!({ "url": "about:blank" }))
        .await;
    let attached = chromium
        .call(
            None,
            "Target.attachToTarget",
            json!({ "targetId": target["targetId"], "flatten": true }),
        )
        .await;
    let mut tab = Tab {
        session: attached["sessionId"].as_str().unwrap().to_owned(),
        chromium: &mut chromium,
    };

    // The login page, on a desktop and a phone-sized screen.
    tab.viewport(1024, 720, false).await;
    tab.call(
        "Page.navigate",
        json!({ "url": format!("{}/login?login_challenge=browser-login", idp.url) }),
    )
    .await;
    tab.wait_for("document.readyState === 'complete' && !!document.getElementById('password')")
        .await;
    assert_eq!(tab.eval("document.title").await, json!("Sign in"));
    assert_eq!(tab.eval("document.documentElement.lang").await, json!("en"));
    assert_eq!(
        tab.eval("document.activeElement.id").await,
        json!("username"),
        "the username field has the focus"
    );
    tab.screenshot(&shots.join("login.png")).await;
    tab.viewport(390, 844, true).await;
    assert_eq!(
        tab.eval("document.documentElement.scrollWidth <= 390")
            .await,
        json!(true),
        "no horizontal scrolling on a phone"
    );
    tab.screenshot(&shots.join("login-mobile.png")).await;
    tab.viewport(1024, 720, false).await;

    // Type and press "Sign in": the consent page comes next.
    tab.type_into("#username", "demo").await;
    tab.type_into("#password", PASSWORD).await;
    tab.click("button[value=login]").await;
    tab.wait_for(
        "location.pathname === '/consent' && document.readyState === 'complete' \
         && !!document.querySelector('button[value=allow]')",
    )
    .await;
    let text = tab.eval("document.body.innerText").await;
    let text = text.as_str().unwrap();
    assert!(text.contains("Demo App"), "{text}");
    assert!(text.contains("See your email address"), "{text}");
    assert!(text.contains("Signed in as demo"), "{text}");
    tab.screenshot(&shots.join("consent.png")).await;

    // The session cookie as the browser keeps it.
    let cookies = tab
        .chromium
        .call(None, "Storage.getCookies", json!({}))
        .await;
    let session = cookies["cookies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "idp_session")
        .expect("an idp_session cookie");
    assert_eq!(session["httpOnly"], json!(true));
    assert_eq!(session["sameSite"], json!("Lax"));
    assert_eq!(session["path"], json!("/"));

    // Remember, Allow: back at the client's redirect URI with the code.
    tab.click("#remember").await;
    assert_eq!(
        tab.eval("document.getElementById('remember').checked")
            .await,
        json!(true)
    );
    tab.click("button[value=allow]").await;
    let landed = tab
        .wait_for(&format!(
            "location.href.startsWith('{client_base}/callback') && document.readyState === 'complete' && location.href"
        ))
        .await;
    assert_eq!(landed, json!(redirect));
    tab.screenshot(&shots.join("client-callback.png")).await;
    chromium.close().await;

    assert!(
        requests
            .lock()
            .unwrap()
            .iter()
            .any(|r| r.starts_with("GET /callback?code=SplxlOBeZQQYbYS6WxSbIA&state=af0ifjsldkj ")),
        "{:?}",
        requests.lock().unwrap()
    );
    let calls = idp.authz.calls();
    assert!(
        matches!(&calls[0], Call::AcceptLogin(a) if a.subject == demo.id && a.amr == ["pwd"]),
        "{calls:?}"
    );
    assert!(
        matches!(&calls[1], Call::AcceptConsent(a) if a.remember && a.granted_scopes.len() == 3),
        "{calls:?}"
    );
    println!("screenshots in {}", shots.display());
}
