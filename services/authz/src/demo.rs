//! `authz demo`: walks the main flows against a running system seeded by `make demo` and
//! reports each step (discovery, JWKS, client credentials, rs, introspection, a scripted
//! browser login with PKCE S256, userinfo, refresh, revocation, RP-initiated logout).
//!
//! The browser is an HTTP client that follows no redirect by itself, keeps its own cookie
//! jar and fills in idp's login and consent forms (hidden inputs and CSRF token included).

use std::future::Future;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::{StatusCode, Url, header};
use serde_json::{Value, json};

const CLIENT_ID: &str = "demo-client";
const CLIENT_SECRET: &str = "demo-secret";
const RS_CLIENT_ID: &str = "demo-rs";
const RS_CLIENT_SECRET: &str = "demo-rs-secret";
const USERNAME: &str = "demo";
const PASSWORD: &str = "demo-password";
const REDIRECT_URI: &str = "http://localhost:3000/callback";
const LOGOUT_URI: &str = "http://localhost:3000/";
const SCOPE: &str = "openid profile email offline_access items:read";
/// Most redirects and form posts one browser login may take.
const MAX_HOPS: usize = 16;

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
    let challenge = URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        verifier.as_bytes(),
    ));
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
    let mut res = browser.get(&url).await?;
    let mut pages = Vec::new();
    for _ in 0..MAX_HOPS {
        if res.status.is_redirection() {
            let to = res
                .location
                .clone()
                .ok_or_else(|| format!("HTTP {} without Location", res.status))?;
            if to.as_str().starts_with(REDIRECT_URI) {
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
                return Ok(((code, verifier), detail));
            }
            res = browser.get(&to).await?;
        } else if res.status == StatusCode::OK && res.body.contains("name=\"password\"") {
            if pages.contains(&"login") {
                return Err("the login form came back: wrong demo password?".to_owned());
            }
            pages.push("login");
            let (action, mut fields) = hidden_form(&res.url, &res.body)?;
            for (k, v) in [
                ("username", USERNAME),
                ("password", PASSWORD),
                ("action", "login"),
            ] {
                fields.push((k.to_owned(), v.to_owned()));
            }
            res = browser.post(&action, &fields).await?;
        } else if res.status == StatusCode::OK && res.body.contains("consent_challenge") {
            if pages.contains(&"consent") {
                return Err("the consent form came back".to_owned());
            }
            pages.push("consent");
            let (action, mut fields) = hidden_form(&res.url, &res.body)?;
            for (k, v) in [("remember", "yes"), ("action", "allow")] {
                fields.push((k.to_owned(), v.to_owned()));
            }
            res = browser.post(&action, &fields).await?;
        } else {
            return Err(format!(
                "unexpected HTTP {} at {}: {:.200}",
                res.status, res.url, res.body
            ));
        }
    }
    Err(format!(
        "no redirect to {REDIRECT_URI} after {MAX_HOPS} hops"
    ))
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

fn decode_html(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The value of attribute `name` in the tag text `tag` (`name="value"`).
fn attr(tag: &str, name: &str) -> Option<String> {
    let needle = format!(" {name}=\"");
    let start = tag.find(&needle)? + needle.len();
    let len = tag[start..].find('"')?;
    Some(decode_html(&tag[start..start + len]))
}

/// The first form of a page: its action (resolved against `page`) and its hidden inputs.
fn hidden_form(page: &Url, html: &str) -> Result<(Url, Vec<(String, String)>), String> {
    let start = html.find("<form").ok_or("no form on the page")?;
    let end = start + html[start..].find("</form>").ok_or("unclosed form")?;
    let form = &html[start..end];
    let open = &form[..form.find('>').ok_or("malformed form tag")?];
    let action = attr(open, "action").ok_or("form without action")?;
    let action = page.join(&action).map_err(fail("form action"))?;
    let hidden = form
        .split("<input")
        .skip(1)
        .filter_map(|rest| rest.find('>').map(|end| &rest[..end]))
        .filter(|tag| attr(tag, "type").as_deref() == Some("hidden"))
        .filter_map(|tag| Some((attr(tag, "name")?, attr(tag, "value").unwrap_or_default())))
        .collect();
    Ok((action, hidden))
}

/// A cookie of the jar: host-only, ports ignored (as browsers do).
struct Cookie {
    host: String,
    name: String,
    value: String,
    path: String,
}

/// What the browser got for one request.
struct Page {
    url: Url,
    status: StatusCode,
    location: Option<Url>,
    body: String,
}

/// A scripted browser: no automatic redirects, its own cookie jar.
struct Browser {
    http: reqwest::Client,
    jar: Vec<Cookie>,
}

impl Browser {
    fn new(http: reqwest::Client) -> Self {
        Self {
            http,
            jar: Vec::new(),
        }
    }

    fn cookie_header(&self, url: &Url) -> String {
        self.jar
            .iter()
            .filter(|c| {
                let path = c.path.trim_end_matches('/');
                Some(c.host.as_str()) == url.host_str()
                    && (url.path() == path || url.path().starts_with(&format!("{path}/")))
            })
            .map(|c| format!("{}={}", c.name, c.value))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn store(&mut self, url: &Url, res: &reqwest::Response) {
        let host = url.host_str().unwrap_or_default().to_owned();
        for set in res.headers().get_all(header::SET_COOKIE) {
            let Ok(set) = set.to_str() else { continue };
            let mut parts = set.split(';').map(str::trim);
            let Some((name, value)) = parts.next().and_then(|p| p.split_once('=')) else {
                continue;
            };
            let mut path = "/".to_owned();
            let mut delete = value.is_empty();
            for part in parts {
                let (key, val) = part.split_once('=').unwrap_or((part, ""));
                if key.eq_ignore_ascii_case("path") {
                    val.clone_into(&mut path);
                } else if key.eq_ignore_ascii_case("max-age") && val.parse().unwrap_or(0) <= 0 {
                    delete = true;
                }
            }
            self.jar
                .retain(|c| !(c.host == host && c.name == name && c.path == path));
            if !delete {
                self.jar.push(Cookie {
                    host: host.clone(),
                    name: name.to_owned(),
                    value: value.to_owned(),
                    path,
                });
            }
        }
    }

    async fn send(&mut self, url: &Url, req: reqwest::RequestBuilder) -> Result<Page, String> {
        let cookies = self.cookie_header(url);
        let req = if cookies.is_empty() {
            req
        } else {
            req.header(header::COOKIE, cookies)
        };
        let res = req.send().await.map_err(|e| format!("{url}: {e}"))?;
        self.store(url, &res);
        let status = res.status();
        let location = match res.headers().get(header::LOCATION) {
            Some(l) => Some(
                l.to_str()
                    .ok()
                    .and_then(|l| url.join(l).ok())
                    .ok_or_else(|| format!("bad Location from {url}"))?,
            ),
            None => None,
        };
        let body = res.text().await.map_err(fail("read page"))?;
        Ok(Page {
            url: url.clone(),
            status,
            location,
            body,
        })
    }

    async fn get(&mut self, url: &Url) -> Result<Page, String> {
        let req = self.http.get(url.clone());
        self.send(url, req).await
    }

    async fn post(&mut self, url: &Url, form: &[(String, String)]) -> Result<Page, String> {
        let req = self.http.post(url.clone()).form(form);
        self.send(url, req).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn reads_the_hidden_inputs_of_a_form() {
        let page = Url::parse("http://localhost:8081/login?login_challenge=x").unwrap();
        let html = r#"<p>hi</p><form method="post" action="/login">
            <input type="hidden" name="csrf" value="a&amp;b">
            <input type="hidden" name="login_challenge" value="c1">
            <input type="text" name="username">
            </form>"#;
        let (action, fields) = hidden_form(&page, html).unwrap();
        assert_eq!(action.as_str(), "http://localhost:8081/login");
        assert_eq!(
            fields,
            vec![
                ("csrf".to_owned(), "a&b".to_owned()),
                ("login_challenge".to_owned(), "c1".to_owned())
            ]
        );
        assert!(hidden_form(&page, "<p>no form</p>").is_err());
    }
}
