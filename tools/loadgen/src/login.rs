//! `loadgen login`: the whole browser sign-in, repeated by `--users` virtual users, each
//! with its own cookie jar ([`demo::browser::Browser`]).
//!
//! One login: `GET /authorize` (code flow with PKCE S256, RFC 7636 §4; `state`, `nonce`,
//! `prompt=login` so that every login checks the password again, OpenID Connect Core 1.0
//! §3.1.2.1) → the redirects to idp's login page → `POST` of its form (CSRF token and login
//! challenge from the hidden inputs, username and password) → idp's consent page when the
//! consent is not remembered yet (allowed and remembered) → the redirect to the client's
//! redirect URI, never fetched: the code is read from its `Location` (RFC 6749 §4.1.2, with
//! `state` and `iss`, RFC 9207) → `POST /token` with the code and the verifier (RFC 6749
//! §4.1.3). A login counts only when the login form was filled and the token response is
//! 200 with an `access_token`; every other answer along the way counts as a failure.
//!
//! Bounded in logins (`--max-logins`) and in time (`--duration`, and a per-request
//! timeout), and loopback only: every URL is checked before it is requested.

use std::cell::Cell;
use std::net::IpAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::Parser;
use demo::browser::{Browser, Page, forms};
use reqwest::{StatusCode, Url};

/// `loadgen login` options.
#[derive(Debug, Parser)]
#[command(
    name = "loadgen login",
    about = "Repeated browser sign-ins through authz and idp"
)]
pub struct LoginArgs {
    /// authz's issuer URL (loopback only), e.g. http://127.0.0.1:8080.
    #[arg(long)]
    issuer: String,
    /// The client (`client_secret_basic`, RFC 6749 §2.3.1); the demo's by default.
    #[arg(long, default_value = demo::seeded::CLIENT_ID)]
    client_id: String,
    /// The client's secret.
    #[arg(long, default_value = demo::seeded::CLIENT_SECRET)]
    client_secret: String,
    /// The client's registered redirect URI; never visited.
    #[arg(long, default_value = "http://localhost:3000/callback")]
    redirect_uri: String,
    /// Scope asked for.
    #[arg(long, default_value = "openid profile email")]
    scope: String,
    /// The user who signs in.
    #[arg(long, default_value = demo::seeded::USERNAME)]
    username: String,
    /// Their password.
    #[arg(long, default_value = demo::seeded::PASSWORD)]
    password: String,
    /// Concurrent virtual users, each with its own cookie jar.
    #[arg(long, default_value_t = 8)]
    users: usize,
    /// Measured duration.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Warm-up before measuring (not counted).
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Most measured logins over all users; the run ends when they are started or when
    /// `--duration` is over, whichever comes first.
    #[arg(long, default_value_t = 100_000)]
    max_logins: u64,
    /// Timeout of each request.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Label printed with the result.
    #[arg(long, default_value = "login")]
    label: String,
}

/// Most redirects and form posts of one login.
const MAX_HOPS: usize = 16;

/// What one login ended with.
enum Outcome {
    /// The token response was 200 with an access token.
    Ok,
    /// A response with an unexpected status (along the way or at the token endpoint).
    BadStatus(String),
    /// An expected status with the wrong content (no login form filled, no code, no
    /// `access_token`, a wrong `state`).
    BadBody(String),
    /// The request failed (connection, timeout).
    Socket(String),
}

/// Whether `url` is on this machine: `localhost` or a loopback address.
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(a)) => IpAddr::V4(a).is_loopback(),
        Some(url::Host::Ipv6(a)) => IpAddr::V6(a).is_loopback(),
        None => false,
    }
}

/// 256 random bits, base64url (a `state`, `nonce` or PKCE verifier, RFC 7636 §4.1).
fn random() -> String {
    let mut bytes = [0u8; 32];
    if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).is_err() {
        // Uniqueness is all a bench needs of these values; fall back on the clock.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes[..16].copy_from_slice(&nanos.to_le_bytes());
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

struct Run {
    args: LoginArgs,
    authorize: Url,
    token: Url,
    started: Cell<u64>,
}

impl Run {
    fn may_start(&self, warm_until: Instant) -> bool {
        if Instant::now() < warm_until {
            return true;
        }
        let n = self.started.get();
        self.started.set(n + 1);
        n < self.args.max_logins
    }
}

/// GET `url` after checking that it is on this machine.
async fn get(browser: &mut Browser, url: &Url) -> Result<Page, Outcome> {
    if !is_loopback(url) {
        return Err(Outcome::BadBody(format!(
            "{} is not on this machine",
            url.host_str().unwrap_or("?")
        )));
    }
    browser.get(url).await.map_err(Outcome::Socket)
}

/// The front-channel part of one login, up to the code: returns it with the PKCE verifier.
async fn login_steps_until_code(
    run: &Run,
    browser: &mut Browser,
) -> Result<(String, String), Outcome> {
    let a = &run.args;
    let (state, nonce, verifier) = (random(), random(), random());
    let challenge = URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        verifier.as_bytes(),
    ));
    let mut url = run.authorize.clone();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &a.client_id)
        .append_pair("redirect_uri", &a.redirect_uri)
        .append_pair("scope", &a.scope)
        .append_pair("state", &state)
        .append_pair("nonce", &nonce)
        .append_pair("prompt", "login")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let mut res = get(browser, &url).await?;
    let mut logged_in = false;
    let mut consented = false;
    let mut code = None;
    for _ in 0..MAX_HOPS {
        if res.status.is_redirection() {
            let to = res
                .location
                .clone()
                .ok_or_else(|| Outcome::BadBody(format!("HTTP {} without Location", res.status)))?;
            if to.as_str().starts_with(&a.redirect_uri) {
                let get = |k: &str| {
                    to.query_pairs()
                        .find(|(n, _)| n == k)
                        .map(|(_, v)| v.into_owned())
                };
                if let Some(error) = get("error") {
                    return Err(Outcome::BadStatus(format!("authorization error {error}")));
                }
                if get("state").as_deref() != Some(state.as_str()) {
                    return Err(Outcome::BadBody("state not echoed".to_owned()));
                }
                code = get("code");
                break;
            }
            res = get(browser, &to).await?;
        } else if res.status == StatusCode::OK && res.body.contains("name=\"password\"") {
            if logged_in {
                return Err(Outcome::BadBody("the login form came back".to_owned()));
            }
            logged_in = true;
            let form = first_form(&res)?;
            res = submit(
                browser,
                &form,
                &[
                    ("username", &a.username),
                    ("password", &a.password),
                    ("action", "login"),
                ],
            )
            .await?;
        } else if res.status == StatusCode::OK && res.body.contains("consent_challenge") {
            if consented {
                return Err(Outcome::BadBody("the consent form came back".to_owned()));
            }
            consented = true;
            let form = first_form(&res)?;
            res = submit(browser, &form, &[("remember", "yes"), ("action", "allow")]).await?;
        } else {
            return Err(Outcome::BadStatus(format!(
                "HTTP {} at {}",
                res.status,
                res.url.path()
            )));
        }
    }
    let code = code.ok_or_else(|| Outcome::BadBody("no code at the redirect URI".to_owned()))?;
    if !logged_in {
        return Err(Outcome::BadBody(
            "no login form was shown (prompt=login ignored?)".to_owned(),
        ));
    }
    Ok((code, verifier))
}

fn first_form(page: &Page) -> Result<demo::browser::Form, Outcome> {
    forms(&page.url, &page.body)
        .map_err(Outcome::BadBody)?
        .into_iter()
        .next()
        .ok_or_else(|| Outcome::BadBody(format!("no form on {}", page.url.path())))
}

async fn submit(
    browser: &mut Browser,
    form: &demo::browser::Form,
    extra: &[(&str, &str)],
) -> Result<Page, Outcome> {
    if !is_loopback(&form.action) {
        return Err(Outcome::BadBody("a form posts off this machine".to_owned()));
    }
    browser.submit(form, extra).await.map_err(Outcome::Socket)
}

/// The code exchange (RFC 6749 §4.1.3, PKCE RFC 7636 §4.5) authenticated with
/// `client_secret_basic`: passes only on 200 with an `access_token`.
async fn token(
    run: &Run,
    http: &reqwest::Client,
    code: &str,
    verifier: &str,
) -> Result<(), Outcome> {
    let a = &run.args;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", a.redirect_uri.as_str()),
        ("code_verifier", verifier),
    ];
    let res = http
        .post(run.token.clone())
        .header(
            reqwest::header::AUTHORIZATION,
            domain::basic::encode(&a.client_id, &a.client_secret),
        )
        .form(&form)
        .send()
        .await
        .map_err(|e| Outcome::Socket(format!("token: {}", e.without_url())))?;
    let status = res.status();
    let body = res
        .bytes()
        .await
        .map_err(|e| Outcome::Socket(format!("token: {}", e.without_url())))?;
    if status != StatusCode::OK {
        return Err(Outcome::BadStatus(format!("token: HTTP {status}")));
    }
    let body: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|_| Outcome::BadBody("token: not JSON".to_owned()))?;
    match body.get("access_token").and_then(serde_json::Value::as_str) {
        Some(t) if !t.is_empty() => Ok(()),
        _ => Err(Outcome::BadBody("token: no access_token".to_owned())),
    }
}

/// One virtual user: a browser with its own cookie jar, and a client for the token
/// endpoint (the client's back channel, no cookies).
struct User {
    browser: Browser,
    http: reqwest::Client,
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    ok: u64,
    bad_status: u64,
    bad_body: u64,
    socket_errors: u64,
    first_error: Option<String>,
}

async fn user(run: Rc<Run>, mut u: User, warm_until: Instant, stop_at: Instant) -> Tally {
    let mut tally = Tally::default();
    while Instant::now() < stop_at && run.may_start(warm_until) {
        let started = Instant::now();
        let outcome = match login_steps_until_code(&run, &mut u.browser).await {
            Ok((code, verifier)) => match token(&run, &u.http, &code, &verifier).await {
                Ok(()) => Outcome::Ok,
                Err(o) => o,
            },
            Err(o) => o,
        };
        if started < warm_until {
            continue;
        }
        let micros = u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX);
        tally.latencies_us.push(micros);
        let error = match outcome {
            Outcome::Ok => {
                tally.ok += 1;
                None
            }
            Outcome::BadStatus(e) => {
                tally.bad_status += 1;
                Some(e)
            }
            Outcome::BadBody(e) => {
                tally.bad_body += 1;
                Some(e)
            }
            Outcome::Socket(e) => {
                tally.socket_errors += 1;
                Some(e)
            }
        };
        if tally.first_error.is_none() {
            tally.first_error = error;
        }
    }
    tally
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    f64::from(sorted[rank.min(sorted.len() - 1)]) / 1000.0
}

/// Runs `loadgen login` with the arguments after `login`; prints one JSON line in the form
/// of the HTTP runs (`rps` is logins/s) and exits 3 when any login failed or none passed,
/// 2 on a usage error (a target off this machine included).
pub fn main(argv: Vec<String>) -> std::process::ExitCode {
    let args = LoginArgs::parse_from(argv);
    let issuer = match Url::parse(args.issuer.trim_end_matches('/')) {
        Ok(u) if is_loopback(&u) => u,
        Ok(u) => {
            eprintln!(
                "loadgen: {} is not on this machine: loadgen only targets this machine",
                u.host_str().unwrap_or("?")
            );
            return std::process::ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("loadgen: --issuer: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let base = issuer.as_str().trim_end_matches('/').to_owned();
    let (Ok(authorize), Ok(token)) = (
        Url::parse(&format!("{base}/authorize")),
        Url::parse(&format!("{base}/token")),
    ) else {
        eprintln!("loadgen: --issuer: not a base URL");
        return std::process::ExitCode::from(2);
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loadgen: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let mut users = Vec::new();
    for _ in 0..args.users.max(1) {
        let http = match reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(args.timeout)
            .build()
        {
            Ok(c) => c,
            Err(e) => {
                eprintln!("loadgen: {e}");
                return std::process::ExitCode::FAILURE;
            }
        };
        users.push(User {
            browser: Browser::new(http.clone()),
            http,
        });
    }
    let run = Rc::new(Run {
        args,
        authorize,
        token,
        started: Cell::new(0),
    });
    let start = Instant::now();
    let warm_until = start + run.args.warmup;
    let stop_at = warm_until + run.args.duration;
    let local = tokio::task::LocalSet::new();
    let tallies = rt.block_on(local.run_until(async {
        let handles: Vec<_> = users
            .into_iter()
            .map(|u| tokio::task::spawn_local(user(Rc::clone(&run), u, warm_until, stop_at)))
            .collect();
        let mut out = Vec::new();
        for h in handles {
            if let Ok(t) = h.await {
                out.push(t);
            }
        }
        out
    }));
    let mut all = Tally::default();
    for t in tallies {
        all.latencies_us.extend(t.latencies_us);
        all.ok += t.ok;
        all.bad_status += t.bad_status;
        all.bad_body += t.bad_body;
        all.socket_errors += t.socket_errors;
        if all.first_error.is_none() {
            all.first_error = t.first_error;
        }
    }
    all.latencies_us.sort_unstable();
    let secs = Instant::now()
        .min(stop_at)
        .saturating_duration_since(warm_until)
        .as_secs_f64()
        .max(f64::EPSILON);
    let result = serde_json::json!({
        "label": run.args.label,
        "url": base,
        "connections": run.args.users.max(1),
        "seconds": secs,
        "requests": all.latencies_us.len(),
        "rps": (all.ok as f64 / secs * 10.0).round() / 10.0,
        "items_per_s": (all.ok as f64 / secs * 10.0).round() / 10.0,
        "p50_ms": percentile(&all.latencies_us, 50.0),
        "p99_ms": percentile(&all.latencies_us, 99.0),
        "ok": all.ok,
        "bad_status": all.bad_status,
        "bad_body": all.bad_body,
        "socket_errors": all.socket_errors,
        "server_us_per_request": null,
        "first_error": all.first_error,
    });
    println!("{result}");
    if all.bad_status + all.bad_body + all.socket_errors > 0 || all.ok == 0 {
        eprintln!("loadgen: INVALID RUN (failed logins)");
        return std::process::ExitCode::from(3);
    }
    std::process::ExitCode::SUCCESS
}
