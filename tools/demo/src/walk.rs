//! `demo walk`: walks the main flows against a running system seeded by `make demo` and
//! reports each step: discovery (OpenID Connect Discovery 1.0 §4), JWKS, client credentials
//! (RFC 6749 §4.4), an rs call (RFC 6750), introspection (RFC 7662), a scripted browser
//! login with PKCE S256 (RFC 7636) through idp's pages, the code exchange, userinfo
//! (OpenID Connect Core 1.0 §5.3), rs delegating to its downstream route with a token
//! exchanged for the user's (RFC 8693, the `act` claim naming demo-rs), refresh (RFC 6749
//! §6), revocation (RFC 7009; rs, which checks tokens in hybrid mode, then refuses the
//! grant's access token with 401), a device login (RFC 8628, approved in the signed-in
//! browser) and RP-initiated logout (RP-Initiated Logout 1.0).
//!
//! A failed step does not stop the walk: every later step runs, except those that need
//! what the failed one would have produced (a token, a code); those are reported as
//! skipped, naming the step they need. The walk ends with a summary and the exit code 0
//! (every step passed), 1 (some failed or were skipped) or 2 (a malformed URL argument).
//!
//! The browser ([`Browser`]) follows no redirect by itself, keeps its own cookie jar and
//! fills in idp's login and consent forms (hidden inputs and CSRF token included).

use std::future::Future;
use std::process::ExitCode;
use std::time::Instant;

use reqwest::{StatusCode, Url};
use serde::Serialize;
use serde_json::{Value, json};

use crate::browser::Browser;
use crate::device;
use crate::seeded::{
    APP_URL, AUDIENCE, CALLBACK_PATH, CLIENT_ID, CLIENT_SECRET, PASSWORD, POST_LOGOUT_PATH,
    RS_CLIENT_ID, RS_CLIENT_SECRET, TV_CLIENT_ID, USERNAME, app_uri,
};
use crate::support::{
    base_url, causes, http_client, json_of, random, str_field, verifier_challenge,
};

/// What the browser login asks for.
const SCOPE: &str = "openid profile email offline_access items:read";

/// `demo walk` options.
#[derive(Debug, Clone, clap::Args)]
pub struct WalkArgs {
    /// authz's issuer URL.
    #[arg(long, default_value = "http://localhost:8080")]
    pub issuer: String,
    /// rs's base URL.
    #[arg(long, default_value = "http://localhost:8082")]
    pub rs: String,
    /// The resource indicator (RFC 8707) of the client credentials token: rs's audience
    /// (`guard.audience`), seeded as demo-client's audience by `authz serve --demo`.
    #[arg(long, default_value = AUDIENCE)]
    pub resource: String,
    /// The demo web app's URL: demo-client's redirect URI is `<app>/callback` (seeded by
    /// `authz serve --demo`, below `authz serve --demo-app-url` when set). Never visited.
    #[arg(long, default_value = APP_URL)]
    pub app: String,
    /// Print one JSON document on stdout instead of lines: `{"ok", "passed", "failed",
    /// "skipped", "steps": [{"name", "status", "ok", "detail", "ms"}]}`; `failed` counts
    /// every step that did not pass, `skipped` those of them that could not run.
    #[arg(long)]
    pub json: bool,
    /// PEM bundle of the CA certificates that sign the services' https certificates (the
    /// compose demo's `secrets/pki/ca.pem`); the only roots the walk trusts.
    #[arg(long, env = "DEMO_CA_FILE")]
    pub ca_file: Option<std::path::PathBuf>,
}

/// The URL arguments, checked and without trailing `/`.
struct Targets {
    issuer: String,
    rs: String,
    resource: String,
    redirect_uri: String,
    post_logout_redirect_uri: String,
}

impl Targets {
    fn of(args: &WalkArgs) -> Result<Self, String> {
        let app = base_url("app", &args.app)?;
        Ok(Self {
            issuer: base_url("issuer", &args.issuer)?,
            rs: base_url("rs", &args.rs)?,
            resource: base_url("resource", &args.resource)?,
            redirect_uri: app_uri(&app, CALLBACK_PATH),
            post_logout_redirect_uri: app_uri(&app, POST_LOGOUT_PATH),
        })
    }
}

/// Runs the walk: exit code 0 when every step passed, 1 when some did not, 2 on a
/// malformed URL argument (one line on stderr) or when no HTTP client can be made.
pub fn run(args: WalkArgs) -> ExitCode {
    let targets = match Targets::of(&args) {
        Ok(targets) => targets,
        Err(line) => {
            eprintln!("{line}");
            return ExitCode::from(crate::EXIT_USAGE);
        }
    };
    let setup = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
        .and_then(|rt| {
            http_client(args.ca_file.as_deref())
                .map(|http| (rt, http))
                .map_err(|e| e.trim_start_matches("error: ").to_owned())
        });
    let (rt, http) = match setup {
        Ok(setup) => setup,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(crate::EXIT_USAGE);
        }
    };
    let mut report = Report {
        json: args.json,
        steps: Vec::new(),
    };
    rt.block_on(walk(&targets, http, &mut report));
    let summary = report.summary();
    if args.json {
        println!(
            "{}",
            json!({
                "ok": summary.failed == 0,
                "passed": summary.passed,
                "failed": summary.failed,
                "skipped": summary.skipped,
                "steps": report.steps,
            })
        );
    } else {
        println!("{}", summary.line());
    }
    if summary.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// It ran and did what the flow requires.
    Passed,
    /// It ran and did not.
    Failed,
    /// It could not run: a step it needs did not pass.
    Skipped,
}

/// One step's result, as printed and as in the JSON document.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// The step's name (`discovery`, `browser_login`, ...).
    pub name: &'static str,
    /// How it ended.
    pub status: Status,
    /// `status == Passed`.
    pub ok: bool,
    /// What it saw, why it failed, or which step it needed.
    pub detail: String,
    /// How long it took, in milliseconds (0 when skipped).
    pub ms: u128,
}

/// The totals of a walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Steps that passed.
    pub passed: usize,
    /// Steps that did not pass, the skipped ones included.
    pub failed: usize,
    /// Of the failed steps, those that could not run.
    pub skipped: usize,
}

impl Summary {
    /// The last line of the human output: `N passed, M failed` (and how many of the failed
    /// were skipped).
    pub fn line(&self) -> String {
        let mut line = format!("{} passed, {} failed", self.passed, self.failed);
        if self.skipped > 0 {
            line.push_str(&format!(
                " ({} of them skipped: a step they need failed)",
                self.skipped
            ));
        }
        line
    }
}

/// What a step returns: a value for later steps and a short detail, or why it failed.
type Outcome<T> = Result<(T, String), String>;

/// The steps taken so far, printed as they finish unless `json`.
struct Report {
    json: bool,
    steps: Vec<Step>,
}

impl Report {
    /// Runs one step, records it and prints its line; its value when it passed.
    async fn step<T>(
        &mut self,
        name: &'static str,
        fut: impl Future<Output = Outcome<T>>,
    ) -> Option<T> {
        let start = Instant::now();
        let outcome = fut.await;
        let ms = start.elapsed().as_millis();
        let (status, detail, value) = match outcome {
            Ok((value, detail)) => (Status::Passed, detail, Some(value)),
            Err(detail) => (Status::Failed, detail, None),
        };
        self.record(name, status, detail, ms);
        value
    }

    /// `input` when the steps `needs` produced it; otherwise records step `name` as
    /// skipped, naming the needed steps that did not pass.
    fn given<A>(&mut self, name: &'static str, needs: &[&str], input: Option<A>) -> Option<A> {
        if input.is_some() {
            return input;
        }
        let missing: Vec<&str> = needs
            .iter()
            .copied()
            .filter(|need| {
                !self
                    .steps
                    .iter()
                    .any(|s| s.name == *need && s.status == Status::Passed)
            })
            .collect();
        let detail = format!(
            "skipped: needs {}, which did not pass",
            missing.join(" and ")
        );
        self.record(name, Status::Skipped, detail, 0);
        None
    }

    fn record(&mut self, name: &'static str, status: Status, detail: String, ms: u128) {
        if !self.json {
            let mark = match status {
                Status::Passed => "ok",
                Status::Failed => "FAILED",
                Status::Skipped => "SKIPPED",
            };
            println!("{mark:<7} {name:<18} {ms:>5} ms  {detail}");
        }
        self.steps.push(Step {
            name,
            status,
            ok: status == Status::Passed,
            detail,
            ms,
        });
    }

    fn summary(&self) -> Summary {
        let count = |status| self.steps.iter().filter(|s| s.status == status).count();
        let passed = count(Status::Passed);
        Summary {
            passed,
            failed: self.steps.len() - passed,
            skipped: count(Status::Skipped),
        }
    }
}

fn fail<E: std::error::Error>(context: &'static str) -> impl Fn(E) -> String {
    move |e| format!("{context}: {}", causes(&e))
}

/// The tokens of the code exchange that later steps use.
struct UserTokens {
    access: String,
    id_token: String,
    refresh: String,
}

/// Every step in order; a step runs when the steps it needs passed.
async fn walk(t: &Targets, http: reqwest::Client, report: &mut Report) {
    let op = report.step("discovery", discover(&http, &t.issuer)).await;
    let op = op.as_ref();
    if let Some(op) = report.given("jwks", &["discovery"], op) {
        report.step("jwks", jwks(op)).await;
    }
    let m2m = match report.given("client_credentials", &["discovery"], op) {
        Some(op) => {
            let form = [
                ("grant_type", "client_credentials"),
                ("scope", "items:read"),
                ("resource", t.resource.as_str()),
            ];
            let step = async {
                let (body, detail) = op.token(&form).await?;
                Ok((str_field(&body, "access_token")?, detail))
            };
            report.step("client_credentials", step).await
        }
        None => None,
    };
    if let Some(access) = report.given("rs_items", &["client_credentials"], m2m.as_deref()) {
        let url = format!("{}/api/v1/items", t.rs);
        report
            .step("rs_items", bearer_get(&http, &url, access))
            .await;
    }
    let inputs = op.zip(m2m.as_deref());
    if let Some((op, access)) = report.given(
        "introspection",
        &["discovery", "client_credentials"],
        inputs,
    ) {
        report
            .step("introspection", op.introspect(access, true))
            .await;
    }
    let mut browser = Browser::new(http.clone());
    let login = match report.given("browser_login", &["discovery"], op) {
        Some(op) => {
            report
                .step("browser_login", log_in(op, &mut browser, &t.redirect_uri))
                .await
        }
        None => None,
    };
    let signed_in = login.is_some();
    let inputs = op.zip(login);
    let tokens = match report.given("code_exchange", &["discovery", "browser_login"], inputs) {
        Some((op, (code, verifier))) => {
            let form = [
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", t.redirect_uri.as_str()),
                ("code_verifier", verifier.as_str()),
            ];
            let step = async {
                let (body, detail) = op.token(&form).await?;
                let tokens = UserTokens {
                    access: str_field(&body, "access_token")?,
                    id_token: str_field(&body, "id_token")?,
                    refresh: str_field(&body, "refresh_token")?,
                };
                Ok((tokens, detail))
            };
            report.step("code_exchange", step).await
        }
        None => None,
    };
    let tokens = tokens.as_ref();
    let user = op.zip(tokens);
    if let Some((op, tokens)) = report.given("userinfo", &["discovery", "code_exchange"], user) {
        let step = async {
            let url = op.endpoint("userinfo_endpoint")?;
            bearer_get(&http, &url, &tokens.access).await
        };
        report.step("userinfo", step).await;
    }
    if let Some(tokens) = report.given("rs_me", &["code_exchange"], tokens) {
        let url = format!("{}/api/v1/me", t.rs);
        report
            .step("rs_me", bearer_get(&http, &url, &tokens.access))
            .await;
    }
    if let Some(tokens) = report.given("rs_delegate", &["code_exchange"], tokens) {
        let url = format!("{}/api/v1/delegate", t.rs);
        report
            .step("rs_delegate", delegated(&http, &url, &tokens.access))
            .await;
    }
    let refreshed = match report.given("refresh", &["discovery", "code_exchange"], user) {
        Some((op, tokens)) => {
            let form = [
                ("grant_type", "refresh_token"),
                ("refresh_token", tokens.refresh.as_str()),
            ];
            let step = async {
                let (body, detail) = op.token(&form).await?;
                let refreshed = (
                    str_field(&body, "refresh_token")?,
                    str_field(&body, "access_token")?,
                );
                Ok((refreshed, detail))
            };
            report.step("refresh", step).await
        }
        None => None,
    };
    let inputs = op.zip(refreshed);
    if let Some((op, (refresh, access))) = report.given("revoke", &["discovery", "refresh"], inputs)
    {
        // The access token from the refresh was never shown to rs, so no cached answer
        // of rs's introspection hides the revocation (guard.introspection.cache_ttl).
        let url = format!("{}/api/v1/me", t.rs);
        let step = async {
            let ((), detail) = op.revoke(&refresh).await?;
            let ((), refused) = refused_by_rs(&http, &url, &access).await?;
            Ok(((), format!("{detail}; {refused}")))
        };
        report.step("revoke", step).await;
    }
    // The device grant (RFC 8628), approved in the browser that is signed in at idp.
    let device_input = op.filter(|_| signed_in);
    if let Some(op) = report.given(
        "device_login",
        &["discovery", "browser_login"],
        device_input,
    ) {
        report
            .step("device_login", device_login(op, &mut browser))
            .await;
    }
    if let Some((op, tokens)) = report.given("logout", &["discovery", "code_exchange"], user) {
        let step = log_out(
            op,
            &mut browser,
            &tokens.id_token,
            &t.post_logout_redirect_uri,
        );
        report.step("logout", step).await;
    }
}

/// The provider, as discovered.
struct Op {
    issuer: String,
    doc: Value,
    http: reqwest::Client,
}

async fn discover(http: &reqwest::Client, issuer: &str) -> Outcome<Op> {
    let url = format!("{issuer}/.well-known/openid-configuration");
    let res = http.get(&url).send().await.map_err(fail("GET discovery"))?;
    let (status, doc) = json_of(res).await?;
    if status != StatusCode::OK {
        return Err(format!("HTTP {status} from {url}"));
    }
    // OpenID Connect Discovery 1.0 §4.3: the issuer must be the one asked for.
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

/// A GET with the access token (RFC 6750 §2.1); passes on 200 with a JSON body.
#[tracing::instrument(skip_all)]
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

/// rs's `/api/v1/delegate` with the user's token: rs exchanges it (RFC 8693) and its
/// downstream route must have seen the user as `sub` and demo-rs as the actor (§4.1).
async fn delegated(http: &reqwest::Client, url: &str, token: &str) -> Outcome<()> {
    let res = http
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .map_err(fail("GET"))?;
    let (status, body) = json_of(res).await?;
    if status != StatusCode::OK {
        return Err(format!(
            "HTTP {status} from {url}: {body} (does rs run with exchange.enabled, and demo-rs have the token-exchange grant? make demo ARGS=--reset-demo)"
        ));
    }
    let seen = &body["downstream"];
    let actor = seen["act"][0]["sub"].as_str();
    if actor != Some(RS_CLIENT_ID) || seen["sub"] != body["sub"] {
        return Err(format!("the downstream route saw {seen}"));
    }
    Ok((
        (),
        format!(
            "HTTP 200, downstream saw sub {} acted for by {RS_CLIENT_ID}",
            seen["sub"].as_str().unwrap_or_default()
        ),
    ))
}

/// A call to rs (RFC 6750) with a revoked access token: rs must answer 401.
async fn refused_by_rs(http: &reqwest::Client, url: &str, token: &str) -> Outcome<()> {
    let res = http
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .map_err(fail("GET"))?;
    match res.status() {
        StatusCode::UNAUTHORIZED => Ok(((), "rs: HTTP 401 for its access token".to_owned())),
        status => Err(format!(
            "rs accepted a revoked access token: HTTP {status} from {url} (is its guard in hybrid or introspection mode?)"
        )),
    }
}

impl Op {
    fn endpoint(&self, name: &str) -> Result<String, String> {
        str_field(&self.doc, name).map_err(|_| format!("discovery names no {name}"))
    }

    /// A token request (RFC 6749 §3.2) authenticated as demo-client
    /// (`client_secret_basic`, RFC 6749 §2.3.1).
    #[tracing::instrument(skip_all)]
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

    /// Introspection (RFC 7662 §2) as demo-rs; fails unless `active` is `expected`.
    #[tracing::instrument(skip_all)]
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

    /// Revocation (RFC 7009 §2) of a refresh token, confirmed by introspection.
    #[tracing::instrument(skip_all)]
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

/// Authorization request with PKCE S256 through idp's login (and consent, unless already
/// remembered) up to the redirect to `redirect_uri`; returns the code and the verifier.
async fn log_in(op: &Op, browser: &mut Browser, redirect_uri: &str) -> Outcome<(String, String)> {
    let (state, nonce, verifier) = (random()?, random()?, random()?);
    let challenge = verifier_challenge(&verifier);
    let url = Url::parse_with_params(
        &op.endpoint("authorization_endpoint")?,
        [
            ("response_type", "code"),
            ("client_id", CLIENT_ID),
            ("redirect_uri", redirect_uri),
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
        .through_login(first, redirect_uri, USERNAME, PASSWORD)
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

/// The device authorization grant (RFC 8628) as the public client `demo-tv`: codes from
/// the device authorization endpoint, approval at idp's `/device` page in `browser`
/// (already signed in there), then polling until the tokens come; the access token must
/// verify against the JWKS and be `demo-tv`'s.
async fn device_login(op: &Op, browser: &mut Browser) -> Outcome<()> {
    let endpoints = device::Endpoints {
        device_authorization: op.endpoint("device_authorization_endpoint")?,
        token: op.endpoint("token_endpoint")?,
        jwks: op.endpoint("jwks_uri")?,
    };
    let codes = device::start(&op.http, &endpoints, TV_CLIENT_ID, "openid profile").await?;
    let filled = browser
        .through_device(&codes.verification_uri_complete, USERNAME, PASSWORD)
        .await?;
    let tokens =
        device::wait_for_tokens(&op.http, &endpoints, TV_CLIENT_ID, &codes, |_, _| {}).await?;
    let access = str_field(&tokens, "access_token")?;
    let claims = device::claims(&op.http, &endpoints.jwks, &access, "at+jwt").await?;
    if claims.get("client_id").and_then(Value::as_str) != Some(TV_CLIENT_ID) {
        return Err(format!("access token of another client: {claims:?}"));
    }
    let detail = format!(
        "tokens for {TV_CLIENT_ID} after {} at idp's /device",
        filled.join(" → ")
    );
    Ok(((), detail))
}

/// RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0 §2) with the browser's
/// cookies, back to `post_logout_redirect_uri`.
async fn log_out(
    op: &Op,
    browser: &mut Browser,
    id_token: &str,
    post_logout_redirect_uri: &str,
) -> Outcome<()> {
    let url = Url::parse_with_params(
        &op.endpoint("end_session_endpoint")?,
        [
            ("id_token_hint", id_token),
            ("post_logout_redirect_uri", post_logout_redirect_uri),
            ("state", "demo-logout"),
        ],
    )
    .map_err(fail("end_session URL"))?;
    let res = browser.get(&url).await?;
    match res.location {
        Some(to)
            if res.status.is_redirection() && to.as_str().starts_with(post_logout_redirect_uri) =>
        {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn args(issuer: &str) -> WalkArgs {
        WalkArgs {
            issuer: issuer.to_owned(),
            rs: "http://localhost:8082".to_owned(),
            resource: AUDIENCE.to_owned(),
            app: "http://localhost:3001/".to_owned(),
            json: true,
            ca_file: None,
        }
    }

    #[test]
    fn a_malformed_url_argument_exits_2() {
        assert_eq!(run(args("localhost:8080")), ExitCode::from(2));
        let t = Targets::of(&args("http://localhost:8080/")).unwrap();
        assert_eq!(t.issuer, "http://localhost:8080");
        assert_eq!(t.redirect_uri, "http://localhost:3001/callback");
        assert_eq!(t.post_logout_redirect_uri, "http://localhost:3001/");
    }

    #[tokio::test]
    async fn a_failed_step_skips_only_the_steps_that_need_it() {
        let mut report = Report {
            json: true,
            steps: Vec::new(),
        };
        let a = report
            .step("a", async { Ok::<_, String>((1, "fine".to_owned())) })
            .await;
        let b: Option<u8> = report.step("b", async { Err("broken".to_owned()) }).await;
        assert_eq!(report.given("c", &["a"], a), Some(1));
        assert_eq!(report.given("d", &["a", "b"], a.zip(b)), None);
        let d = report.steps.last().unwrap();
        assert_eq!(d.status, Status::Skipped);
        assert_eq!(d.detail, "skipped: needs b, which did not pass");
        assert_eq!(
            report.summary(),
            Summary {
                passed: 1,
                failed: 2,
                skipped: 1
            }
        );
        assert_eq!(
            report.summary().line(),
            "1 passed, 2 failed (1 of them skipped: a step they need failed)"
        );
        let doc = serde_json::to_value(&report.steps).unwrap();
        assert_eq!(doc[1]["status"], "failed");
        assert_eq!(doc[1]["ok"], false);
        assert_eq!(doc[2]["status"], "skipped");
    }
}
