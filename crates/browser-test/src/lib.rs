//! Headless Chromium for browser tests, driven over the DevTools protocol on
//! `--remote-debugging-pipe` (NUL-separated JSON on file descriptors 3 and 4), which needs
//! no websocket client and no port. A dev-dependency of the services' and tests-e2e's
//! test binaries only: no release build links it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), browser_test::Error> {
//! let Some(binary) = browser_test::find_chromium() else { return Ok(()) };
//! let mut chromium = browser_test::Chromium::launch(&binary, "/tmp/chromium.log".as_ref()).await?;
//! let mut tab = chromium.new_tab().await?;
//! tab.navigate("http://127.0.0.1:3000/").await?;
//! tab.wait_for_selector("#username").await?;
//! tab.type_into("#username", "demo").await?;
//! tab.click("button[type=submit]").await?;
//! tab.wait_for_text("Signed in").await?;
//! tab.screenshot("/tmp/signed-in.png".as_ref()).await?;
//! println!("{}", tab.url().await?);
//! chromium.close().await;
//! # Ok(()) }
//! ```
//!
//! Every wait polls the page (50 ms apart) up to [`Chromium::step`] (30 s unless set with
//! [`Chromium::set_step`]), then fails naming what it waited for and where the tab was.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// Why a browser step failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Chromium could not be started, or its pipe broke.
    #[error("chromium: {0}")]
    Io(#[from] std::io::Error),
    /// No answer or condition within the step's time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// Chromium closed the DevTools pipe.
    #[error("chromium closed the pipe during {0}")]
    Closed(String),
    /// A DevTools command answered with an error, or an unexpected shape.
    #[error("{0}")]
    Protocol(String),
    /// A page script threw.
    #[error("script {expression} threw: {details}")]
    Script {
        /// The expression.
        expression: String,
        /// Chromium's exception details.
        details: String,
    },
}

/// The Chromium binary: `$CHROMIUM`, else the first of `chromium`, `chromium-browser`,
/// `google-chrome` on `PATH`; `None` when there is none (tests then say so and pass).
pub fn find_chromium() -> Option<PathBuf> {
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

/// A headless Chromium process (own temporary profile, killed on drop) and its DevTools
/// pipe.
pub struct Chromium {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
    next_id: u64,
    step: Duration,
    _profile: tempfile::TempDir,
}

impl Chromium {
    /// Starts `binary` headless with a fresh profile, its stderr to `log`.
    pub async fn launch(binary: &Path, log: &Path) -> Result<Self, Error> {
        let profile = tempfile::tempdir()?;
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
            .stderr(std::fs::File::create(log)?)
            .kill_on_drop(true)
            .spawn()?;
        let (Some(input), Some(output)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(Error::Closed("launch".into()));
        };
        Ok(Self {
            child,
            input,
            output: BufReader::new(output),
            next_id: 0,
            step: Duration::from_secs(30),
            _profile: profile,
        })
    }

    /// How long one command or wait may take.
    pub fn step(&self) -> Duration {
        self.step
    }

    /// Sets [`Chromium::step`].
    pub fn set_step(&mut self, step: Duration) {
        self.step = step;
    }

    /// Sends one DevTools command (to the page `session`, or to the browser with `None`)
    /// and waits for its answer's `result`, skipping events.
    pub async fn call(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<Value, Error> {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = session {
            message["sessionId"] = json!(s);
        }
        let mut bytes =
            serde_json::to_vec(&message).map_err(|e| Error::Protocol(format!("{method}: {e}")))?;
        bytes.push(0);
        self.input.write_all(&bytes).await?;
        let deadline = Instant::now() + self.step;
        loop {
            let mut buf = Vec::new();
            tokio::time::timeout_at(deadline.into(), self.output.read_until(0, &mut buf))
                .await
                .map_err(|_| Error::Timeout(format!("{method}: no answer from Chromium")))??;
            if buf.pop() != Some(0) {
                return Err(Error::Closed(method.to_owned()));
            }
            let answer: Value = serde_json::from_slice(&buf)
                .map_err(|e| Error::Protocol(format!("{method}: unreadable answer: {e}")))?;
            if answer["id"] == json!(id) {
                if let Some(error) = answer.get("error") {
                    return Err(Error::Protocol(format!("{method}: {error}")));
                }
                return Ok(answer["result"].clone());
            }
        }
    }

    /// Opens a new tab (on `about:blank`) and attaches to it.
    pub async fn new_tab(&mut self) -> Result<Tab<'_>, Error> {
        let target = self
            .call(None, "Target.createTarget", json!({ "url": "about:blank" }))
            .await?;
        let attached = self
            .call(
                None,
                "Target.attachToTarget",
                json!({ "targetId": target["targetId"], "flatten": true }),
            )
            .await?;
        let session = attached["sessionId"]
            .as_str()
            .ok_or_else(|| Error::Protocol(format!("Target.attachToTarget: {attached}")))?
            .to_owned();
        Ok(Tab {
            chromium: self,
            session,
        })
    }

    /// Every cookie the browser holds (DevTools `Network.Cookie` objects: `name`,
    /// `value`, `domain`, `path`, `httpOnly`, `secure`, `sameSite`, …).
    pub async fn cookies(&mut self) -> Result<Vec<Value>, Error> {
        let all = self.call(None, "Storage.getCookies", json!({})).await?;
        Ok(all["cookies"].as_array().cloned().unwrap_or_default())
    }

    /// Closes the browser and waits (briefly) for the process to end.
    pub async fn close(mut self) {
        // Best effort: the process is killed on drop anyway.
        let _ = self.call(None, "Browser.close", json!({})).await;
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}

/// One tab of a [`Chromium`].
pub struct Tab<'a> {
    chromium: &'a mut Chromium,
    session: String,
}

impl Tab<'_> {
    /// The browser of this tab (for browser-level commands such as [`Chromium::cookies`]).
    pub fn browser(&mut self) -> &mut Chromium {
        self.chromium
    }

    /// Sends one DevTools command to this tab.
    pub async fn call(&mut self, method: &str, params: Value) -> Result<Value, Error> {
        let session = self.session.clone();
        self.chromium.call(Some(&session), method, params).await
    }

    /// Evaluates a JavaScript expression in the page and returns its value (JSON).
    pub async fn eval(&mut self, expression: &str) -> Result<Value, Error> {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expression, "returnByValue": true }),
            )
            .await?;
        if let Some(details) = r.get("exceptionDetails") {
            return Err(Error::Script {
                expression: expression.to_owned(),
                details: details.to_string(),
            });
        }
        Ok(r["result"]["value"].clone())
    }

    /// Navigates to `url` (the page loads on its own: wait for what should appear).
    pub async fn navigate(&mut self, url: &str) -> Result<(), Error> {
        let r = self.call("Page.navigate", json!({ "url": url })).await?;
        match r.get("errorText").and_then(Value::as_str) {
            Some(e) if !e.is_empty() => Err(Error::Protocol(format!("navigate to {url}: {e}"))),
            _ => Ok(()),
        }
    }

    /// The tab's current URL (`location.href`).
    pub async fn url(&mut self) -> Result<String, Error> {
        Ok(self
            .eval("location.href")
            .await?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// Polls `expression` until it is truthy and returns its value; the page may be
    /// loading or navigating meanwhile (evaluation errors then count as not yet: a script
    /// that throws, and Chromium refusing the evaluation, e.g. "Execution context was
    /// destroyed" when the page navigates in between).
    pub async fn wait_for(&mut self, expression: &str) -> Result<Value, Error> {
        let deadline = Instant::now() + self.chromium.step;
        let mut refused = None;
        loop {
            match self.eval(expression).await {
                Ok(v) if !(v.is_null() || v == json!(false) || v == json!("") || v == json!(0)) => {
                    return Ok(v);
                }
                Ok(_) | Err(Error::Script { .. }) => {}
                // Chromium's error answer (a JSON object), not our own failures to talk to it.
                Err(Error::Protocol(m)) if m.starts_with("Runtime.evaluate: {") => {
                    refused = Some(m);
                }
                Err(e) => return Err(e),
            }
            if Instant::now() >= deadline {
                let at = self.url().await.unwrap_or_default();
                let last = refused
                    .map(|m| format!("; last refusal: {m}"))
                    .unwrap_or_default();
                return Err(Error::Timeout(format!(
                    "waiting for {expression}; at {at}{last}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the loaded page has an element matching the CSS `selector`.
    pub async fn wait_for_selector(&mut self, selector: &str) -> Result<(), Error> {
        self.wait_for(&format!(
            "document.readyState === 'complete' && !!document.querySelector({})",
            js_string(selector)
        ))
        .await
        .map(drop)
    }

    /// Waits until the loaded page's visible text contains `text`.
    pub async fn wait_for_text(&mut self, text: &str) -> Result<(), Error> {
        self.wait_for(&format!(
            "document.readyState === 'complete' && !!document.body \
             && document.body.innerText.includes({})",
            js_string(text)
        ))
        .await
        .map(drop)
    }

    /// The page's visible text (`document.body.innerText`).
    pub async fn text(&mut self) -> Result<String, Error> {
        Ok(self
            .eval("document.body ? document.body.innerText : ''")
            .await?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// Sets the viewport (CSS pixels; `mobile` emulates a phone).
    pub async fn viewport(&mut self, width: u32, height: u32, mobile: bool) -> Result<(), Error> {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile }),
        )
        .await
        .map(drop)
    }

    /// Saves a PNG screenshot of the viewport to `path`; fails on a blank page (a PNG
    /// under 5 kB).
    pub async fn screenshot(&mut self, path: &Path) -> Result<(), Error> {
        let shot = self
            .call("Page.captureScreenshot", json!({ "format": "png" }))
            .await?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap_or_default())
            .map_err(|e| Error::Protocol(format!("screenshot: {e}")))?;
        if !png.starts_with(b"\x89PNG") || png.len() <= 5_000 {
            return Err(Error::Protocol(format!(
                "screenshot {}: not a rendered page ({} bytes)",
                path.display(),
                png.len()
            )));
        }
        std::fs::write(path, png)?;
        println!("screenshot: {}", path.display());
        Ok(())
    }

    /// A real mouse click in the middle of the first element matching `selector`
    /// (scrolled into view; waited for).
    pub async fn click(&mut self, selector: &str) -> Result<(), Error> {
        let rect = self
            .wait_for(&format!(
                "(() => {{ const e = document.querySelector({}); if (!e) return null; \
                 e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect(); \
                 return {{x: r.x + r.width / 2, y: r.y + r.height / 2}}; }})()",
                js_string(selector)
            ))
            .await?;
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({ "type": kind, "x": rect["x"], "y": rect["y"], "button": "left", "clickCount": 1 }),
            )
            .await?;
        }
        Ok(())
    }

    /// Clicks the field matching `selector` and types `text` as keyboard input.
    pub async fn type_into(&mut self, selector: &str, text: &str) -> Result<(), Error> {
        self.click(selector).await?;
        self.call("Input.insertText", json!({ "text": text }))
            .await
            .map(drop)
    }
}

/// `s` as a JavaScript string literal (JSON is valid JavaScript).
fn js_string(s: &str) -> String {
    Value::from(s).to_string()
}
