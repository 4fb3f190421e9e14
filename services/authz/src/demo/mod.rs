//! `authz demo`: walks the main flows against a running system seeded by `make demo` and
//! reports each step (discovery, JWKS, client credentials, rs, introspection, a scripted
//! browser login with PKCE S256, userinfo, refresh, revocation, RP-initiated logout).
//!
//! The browser ([`browser::Browser`]) follows no redirect by itself, keeps its own cookie
//! jar and fills in idp's login and consent forms (hidden inputs and CSRF token included).
//! [`app`] is the demo's web application on `http://localhost:3000`.

pub mod app;
pub mod browser;

use std::future::Future;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::{StatusCode, Url};
use serde_json::{Value, json};

use browser::Browser;

use crate::demo_seed::{
    CLIENT_ID, CLIENT_SECRET, POST_LOGOUT_REDIRECT_URI as LOGOUT_URI, REDIRECT_URI, RS_CLIENT_ID,
    RS_CLIENT_SECRET, SPA_CLIENT_ID,
};

/// The demo user (seeded by `idp serve --demo`).
const USERNAME: &str = "demo";
const PASSWORD: &str = "demo-password";
const SCOPE: &str = "openid profile email offline_access items:read";

/// `authz demo` options.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// authz's issuer URL.
    #[arg(long, default_value = "http://localhost:8080")]
    pub issuer: String,
    /// rs's base URL (also the resource indicator of its tokens).
    #[arg(long, default_value = "http://localhost:8082")]
    pub rs: String,
    /// One JSON document `{"ok", "steps": [{"name", "ok", "detail", "ms"}]}` on stdout.
    #[arg(long)]
    pub json: bool,
}

/// What a step returns: a value for later steps and a short detail, or why it failed.
type Outcome<T> = Result<(T, String), String>;

/// Runs the demo; exit code 0 only when every step worked.
pub fn run(args: DemoArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut report = Report {
        json: args.json,
        steps: Vec::new(),
    };
    let ok = rt.block_on(walk(&args, &mut report)).is_some();
    if args.json {
        println!("{}", json!({ "ok": ok, "steps": report.steps }));
    } else if ok {
        println!("all {} steps passed", report.steps.len());
    } else {
        println!("demo failed");
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The steps taken so far, printed as they finish unless `json`.
struct Report {
    json: bool,
    steps: Vec<Value>,
}

impl Report {
    /// Runs one step, records it and prints its progress line; `None` when it failed.
    async fn step<T>(&mut self, name: &str, fut: impl Future<Output = Outcome<T>>) -> Option<T> {
        let start = Instant::now();
        let outcome = fut.await;
        let ms = start.elapsed().as_millis();
        let (ok, detail, value) = match outcome {
            Ok((value, detail)) => (true, detail, Some(value)),
            Err(detail) => (false, detail, None),
        };
        if !self.json {
            let mark = if ok { "✓" } else { "✗" };
            println!("{mark} {name:<18} {detail} ({ms} ms)");
        }
        self.steps
            .push(json!({ "name": name, "ok": ok, "detail": detail, "ms": ms }));
        value
    }
}

fn fail<E: std::fmt::Display>(context: &'static str) -> impl Fn(E) -> String {
    move |e| format!("{context}: {e}")
}

/// The steps in order; stops at the first failure (later steps depend on earlier ones).
async fn walk(args: &DemoArgs, report: &mut Report) -> Option<()> {
    let issuer = args.issuer.trim_end_matches('/').to_owned();
    let rs = args.rs.trim_end_matches('/').to_owned();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .ok()?;
    let op = report.step("discovery", discover(&http, &issuer)).await?;
    report.step("jwks", jwks(&op)).await?;
    let m2m = report
        .step(
            "client_credentials",
            op.token(&[
                ("grant_type", "client_credentials"),
                ("scope", "items:read"),
                ("resource", &rs),
            ]),
        )
        .await?;
    let m2m_access = str_field(&m2m, "access_token").ok()?;
    report
        .step(
            "rs_items",
            bearer_get(&http, &format!("{rs}/api/v1/items"), &m2m_access),
        )
        .await?;
    report
        .step("introspection", op.introspect(&m2m_access, true))
        .await?;
    let mut browser = Browser::new(http.clone());
    let (code, verifier) = report
        .step("browser_login", log_in(&op, &mut browser))
        .await?;
    let tokens = report
        .step(
            "code_exchange",
            op.token(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", &verifier),
            ]),
        )
        .await?;
    let access = str_field(&tokens, "access_token").ok()?;
    let id_token = str_field(&tokens, "id_token").ok()?;
    let refresh_token = str_field(&tokens, "refresh_token").ok()?;
    report
        .step(
            "userinfo",
            bearer_get(&http, &op.endpoint("userinfo_endpoint").ok()?, &access),
        )
        .await?;
    report
        .step(
            "rs_me",
            bearer_get(&http, &format!("{rs}/api/v1/me"), &access),
        )
        .await?;
    let refreshed = report
        .step(
            "refresh",
            op.token(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh_token),
            ]),
        )
        .await?;
    let refresh_token = str_field(&refreshed, "refresh_token").ok()?;
    report.step("revoke", op.revoke(&refresh_token)).await?;
    report
        .step("logout", log_out(&op, &mut browser, &id_token))
        .await?;
    Some(())
}

fn str_field(doc: &Value, name: &str) -> Result<String, String> {
    doc.get(name)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("no {name} in the response"))
}

/// The provider, as discovered.
struct Op {
    issuer: String,
    doc: Value,
    http: reqwest::Client,
}

async fn json_of(res: reqwest::Response) -> Result<(StatusCode, Value), String> {
    let status = res.status();
    let body = res.text().await.map_err(fail("read body"))?;
    let value = serde_json::from_str(&body)
        .map_err(|e| format!("HTTP {status}, not JSON ({e}): {body:.200}"))?;
    Ok((status, value))
}

async fn discover(http: &reqwest::Client, issuer: &str) -> Outcome<Op> {
    let url = format!("{issuer}/.well-known/openid-configuration");
    let res = http.get(&url).send().await.map_err(fail("GET discovery"))?;
    let (status, doc) = json_of(res).await?;
    if status != StatusCode::OK {
        return Err(format!("HTTP {status} from {url}"));
    }
    if doc["issuer"] != issuer {
        return Err(format!("issuer is {}, expected {issuer}", doc["issuer"]));
    }
    let detail = format!("issuer {issuer}");
    let op = Op {
        issuer: issuer.to_owned(),
        doc,
        http: http.clone(),
    };
    Ok((op, detail))
}

async fn jwks(op: &Op) -> Outcome<()> {
    let res = op
        .http
        .get(op.endpoint("jwks_uri")?)
        .send()
        .await
        .map_err(fail("GET JWKS"))?;
    let (status, doc) = json_of(res).await?;
    let keys = doc["keys"].as_array().map_or(0, Vec::len);
    if status != StatusCode::OK || keys == 0 {
        return Err(format!("HTTP {status}, {keys} key(s)"));
    }
    Ok(((), format!("{keys} signing key(s)")))
}

async fn bearer_get(http: &reqwest::Client, url: &str, token: &str) -> Outcome<()> {
    let res = http
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .map_err(fail("GET"))?;
    let (status, body) = json_of(res).await?;
    if status != StatusCode::OK {
        return Err(format!("HTTP {status} from {url}: {body}"));
    }
    let detail = match body.get("sub").and_then(Value::as_str) {
        Some(sub) => format!("HTTP 200, sub {sub}"),
        None => "HTTP 200".to_owned(),
    };
    Ok(((), detail))
}

impl Op {
    fn endpoint(&self, name: &str) -> Result<String, String> {
        str_field(&self.doc, name).map_err(|_| format!("discovery names no {name}"))
    }

    /// A token request authenticated as demo-client (`client_secret_basic`).
    async fn token(&self, form: &[(&str, &str)]) -> Outcome<Value> {
        let res = self
            .http
            .post(self.endpoint("token_endpoint")?)
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .form(form)
            .send()
            .await
            .map_err(fail("POST token"))?;
        let (status, body) = json_of(res).await?;
        if status != StatusCode::OK || body.get("access_token").is_none() {
            return Err(format!("HTTP {status}: {body}"));
        }
        let mut issued = vec!["access"];
        for (field, name) in [("refresh_token", "refresh"), ("id_token", "ID")] {
            if body.get(field).is_some() {
                issued.push(name);
            }
        }
        let detail = format!(
            "tokens: {}, expires in {}s, scope {}",
            issued.join(" + "),
            body["expires_in"],
            body["scope"].as_str().unwrap_or("-")
        );
        Ok((body, detail))
    }

    /// Introspection (RFC 7662) as demo-rs; fails unless `active` is `expected`.
    async fn introspect(&self, token: &str, expected: bool) -> Outcome<()> {
        let res = self
            .http
            .post(self.endpoint("introspection_endpoint")?)
            .basic_auth(RS_CLIENT_ID, Some(RS_CLIENT_SECRET))
            .form(&[("token", token)])
            .send()
            .await
            .map_err(fail("POST introspect"))?;
        let (status, body) = json_of(res).await?;
        if status != StatusCode::OK || body["active"].as_bool() != Some(expected) {
            return Err(format!("HTTP {status}: {body}, expected active={expected}"));
        }
        let detail = if expected {
            format!(
                "active, client_id {}",
                body["client_id"].as_str().unwrap_or("-")
            )
        } else {
            "inactive".to_owned()
        };
        Ok(((), detail))
    }

    /// Revocation (RFC 7009) of a refresh token, confirmed by introspection.
    async fn revoke(&self, refresh_token: &str) -> Outcome<()> {
        let res = self
            .http
            .post(self.endpoint("revocation_endpoint")?)
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .form(&[
                ("token", refresh_token),
                ("token_type_hint", "refresh_token"),
            ])
            .send()
            .await
            .map_err(fail("POST revoke"))?;
        if res.status() != StatusCode::OK {
            return Err(format!("HTTP {}", res.status()));
        }
        self.introspect(refresh_token, false).await?;
        Ok((
            (),
            "refresh token revoked, introspection: inactive".to_owned(),
        ))
    }
}

/// Seconds since the Unix epoch.
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The S256 challenge of a PKCE verifier (RFC 7636 §4.2).
fn verifier_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        verifier.as_bytes(),
    ))
}

fn random() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| "no randomness".to_owned())?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Authorization request with PKCE S256 through idp's login (and consent, unless already
/// remembered) up to the redirect to demo-client; returns the code and the verifier.
async fn log_in(op: &Op, browser: &mut Browser) -> Outcome<(String, String)> {
    let (state, nonce, verifier) = (random()?, random()?, random()?);
    let challenge = verifier_challenge(&verifier);
    let url = Url::parse_with_params(
        &op.endpoint("authorization_endpoint")?,
        [
            ("response_type", "code"),
            ("client_id", CLIENT_ID),
            ("redirect_uri", REDIRECT_URI),
            ("scope", SCOPE),
            ("state", &state),
            ("nonce", &nonce),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    )
    .map_err(fail("authorization URL"))?;
    let first = browser.get(&url).await?;
    let (to, pages) = browser
        .through_login(first, REDIRECT_URI, USERNAME, PASSWORD)
        .await?;
    let params: Vec<(String, String)> = to.query_pairs().into_owned().collect();
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    if let Some(error) = get("error") {
        return Err(format!("authorization error {error}: {to}"));
    }
    if get("state").as_deref() != Some(state.as_str()) {
        return Err(format!("state not echoed: {to}"));
    }
    if get("iss").as_deref() != Some(op.issuer.as_str()) {
        return Err(format!("iss missing or wrong (RFC 9207): {to}"));
    }
    let code = get("code").ok_or_else(|| format!("no code: {to}"))?;
    let detail = format!("code for {USERNAME} via {}", pages.join(" → "));
    Ok(((code, verifier), detail))
}

/// RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0) with the browser's cookies.
async fn log_out(op: &Op, browser: &mut Browser, id_token: &str) -> Outcome<()> {
    let url = Url::parse_with_params(
        &op.endpoint("end_session_endpoint")?,
        [
            ("id_token_hint", id_token),
            ("post_logout_redirect_uri", LOGOUT_URI),
            ("state", "demo-logout"),
        ],
    )
    .map_err(fail("end_session URL"))?;
    let res = browser.get(&url).await?;
    match res.location {
        Some(to) if res.status.is_redirection() && to.as_str().starts_with(LOGOUT_URI) => {
            Ok(((), format!("redirected to {to}")))
        }
        _ => Err(format!(
            "HTTP {}, Location {:?}: {:.200}",
            res.status,
            res.location.as_ref().map(Url::as_str),
            res.body
        )),
    }
}
