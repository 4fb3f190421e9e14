//! `demo app`: the web application of the demo, the relying party behind the demo clients'
//! redirect URIs (`http://localhost:3000/callback`, `/spa/callback`). A newcomer opens the
//! URL `make demo` prints, signs in through authz and idp, and sees what the tokens carry
//! and what rs and userinfo answer with them.
//!
//! It signs in as the confidential client `demo-client` (`client_secret_basic`) or as the
//! public client `demo-spa` (auth method `none`), always with PKCE S256 (RFC 7636 §4.2),
//! `state` and `nonce`; it checks `iss` in the authorization response (RFC 9207 §2.4) and
//! validates ID tokens as OpenID Connect Core 1.0 §3.1.3.7 requires (signature against the
//! issuer's JWKS, `iss`, `aud`, `azp`, `exp`, `nonce`). Tokens never leave the server: they
//! live in a bounded in-memory session store keyed by an `HttpOnly`, `SameSite=Lax` cookie
//! (actix-web's cookie support), and every form carries the session's CSRF token. The pages
//! are askama templates (`templates/`), which escape every value they print.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use issuer::Algorithm;
use issuer::jws::{Expect, Verifiers};
use serde::Deserialize;
use serde_json::{Map, Value};
use tracing::instrument;

use crate::seeded::{
    APP_URL, CALLBACK_PATH, CLIENT_ID, CLIENT_SECRET, SCOPES, SPA_CALLBACK_PATH, SPA_CLIENT_ID,
};
use crate::support::{
    base_url, http_client, json_of, random, str_field, unix_now, verifier_challenge,
};

/// The app's session cookie (host-only, so distinct from authz's and idp's cookie names).
const COOKIE: &str = "demo_app";
/// Sessions kept at most; the least recently seen goes first.
const MAX_SESSIONS: usize = 1_000;
/// A session unused this long is forgotten.
const IDLE: Duration = Duration::from_secs(3_600);
/// What the app asks for: everything the demo clients may have.
const SCOPE: &str = SCOPES;
/// Clock skew allowed on `exp` and `iat`.
const LEEWAY: i64 = 60;

/// `demo app` options.
#[derive(Debug, Clone, clap::Args)]
pub struct AppArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,
    /// The URL browsers use for this app; the redirect URIs are below it.
    #[arg(long, default_value = APP_URL)]
    pub public_url: String,
    /// authz's issuer URL: where browsers are sent, and the `iss` of its tokens.
    #[arg(long, default_value = "http://localhost:8080")]
    pub issuer: String,
    /// Where this app itself reaches authz when that differs from the issuer URL (inside a
    /// container network, e.g. `http://authz:8080`): discovery, token, userinfo and JWKS
    /// requests go there, browsers still go to the issuer.
    #[arg(long)]
    pub backchannel: Option<String>,
    /// rs's base URL, for the API calls the app makes with the access token.
    #[arg(long, default_value = "http://localhost:8082")]
    pub rs: String,
    // account page
    /// idp's public URL: the signed-in page links to its account page (`<idp>/account`).
    #[arg(long, default_value = "http://localhost:8081")]
    pub idp: String,
    /// PEM bundle of the CA certificates that sign authz's and rs's https certificates
    /// (the compose demo's `secrets/pki/ca.pem`); the only roots the app trusts.
    #[arg(long, env = "DEMO_CA_FILE")]
    pub ca_file: Option<std::path::PathBuf>,
}

/// Which demo client a sign-in uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `demo-client`: confidential, `client_secret_basic`.
    Web,
    /// `demo-spa`: public (auth method `none`), PKCE only.
    Spa,
}

impl Kind {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "web" => Some(Self::Web),
            "spa" => Some(Self::Spa),
            _ => None,
        }
    }

    fn client_id(self) -> &'static str {
        match self {
            Self::Web => CLIENT_ID,
            Self::Spa => SPA_CLIENT_ID,
        }
    }

    fn callback(self) -> &'static str {
        match self {
            Self::Web => CALLBACK_PATH,
            Self::Spa => SPA_CALLBACK_PATH,
        }
    }
}

/// An authorization request on its way: what the callback must see again.
struct Pending {
    kind: Kind,
    state: String,
    nonce: String,
    verifier: String,
}

/// The outcome of the last API call, shown on the page.
struct Call {
    what: String,
    status: String,
    body: String,
}

/// A signed-in user's tokens and what the app learnt from them.
struct SignedIn {
    kind: Kind,
    access_token: String,
    refresh_token: Option<String>,
    id_token: String,
    id_claims: Map<String, Value>,
    scope: String,
    expires_at: i64,
    refreshes: u32,
    last_call: Option<Call>,
}

/// One browser's state.
struct Session {
    csrf: String,
    seen: Instant,
    pending: Option<Pending>,
    user: Option<SignedIn>,
    /// The `state` of the logout request on its way, to recognise the return.
    logout_state: Option<String>,
    /// Shown once on the next page: (is it an error, text).
    notice: Option<(bool, String)>,
}

impl Session {
    fn new() -> Result<Self, String> {
        Ok(Self {
            csrf: random()?,
            seen: Instant::now(),
            pending: None,
            user: None,
            logout_state: None,
            notice: None,
        })
    }
}

/// The discovered provider, endpoints for the app's own requests already pointed at the
/// back channel.
struct Provider {
    authorization_endpoint: String,
    end_session_endpoint: String,
    token_endpoint: String,
    userinfo_endpoint: String,
    jwks_uri: String,
}

/// The app: its settings, its HTTP client, the provider and the sessions.
struct DemoApp {
    args: AppArgs,
    secure_cookie: bool,
    http: reqwest::Client,
    provider: tokio::sync::OnceCell<Provider>,
    sessions: Mutex<HashMap<String, Session>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl DemoApp {
    /// The app for `args`, its URLs checked and without trailing `/`; the one line to
    /// print when one is malformed.
    fn new(mut args: AppArgs) -> Result<Self, String> {
        args.public_url = base_url("public-url", &args.public_url)?;
        args.issuer = base_url("issuer", &args.issuer)?;
        args.rs = base_url("rs", &args.rs)?;
        if let Some(back) = &args.backchannel {
            args.backchannel = Some(base_url("backchannel", back)?);
        }
        let http = http_client(args.ca_file.as_deref())?;
        Ok(Self {
            secure_cookie: args.public_url.starts_with("https://"),
            args,
            http,
            provider: tokio::sync::OnceCell::new(),
            sessions: Mutex::new(HashMap::new()),
        })
    }

    /// `url` as this app reaches it: the issuer prefix swapped for the back channel.
    fn back(&self, url: &str) -> String {
        config::via_backchannel(&self.args.issuer, self.args.backchannel.as_deref(), url)
    }

    /// Discovery (OpenID Connect Discovery 1.0 §4), read once it first succeeds.
    async fn provider(&self) -> Result<&Provider, String> {
        self.provider
            .get_or_try_init(|| async {
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    self.back(&self.args.issuer)
                );
                let res = self
                    .http
                    .get(&url)
                    .send()
                    .await
                    .map_err(|e| format!("authz is not reachable at {url}: {e}"))?;
                let (_, doc) = json_of(res).await?;
                // §4.3: the issuer in the document must be the one the app was given.
                if doc["issuer"] != self.args.issuer.as_str() {
                    return Err(format!(
                        "discovery names issuer {}, expected {}",
                        doc["issuer"], self.args.issuer
                    ));
                }
                Ok(Provider {
                    authorization_endpoint: str_field(&doc, "authorization_endpoint")?,
                    end_session_endpoint: str_field(&doc, "end_session_endpoint")?,
                    token_endpoint: self.back(&str_field(&doc, "token_endpoint")?),
                    userinfo_endpoint: self.back(&str_field(&doc, "userinfo_endpoint")?),
                    jwks_uri: self.back(&str_field(&doc, "jwks_uri")?),
                })
            })
            .await
    }

    /// The session of `req`, if its cookie names a live one; touched.
    fn with_session<T>(&self, req: &HttpRequest, f: impl FnOnce(&mut Session) -> T) -> Option<T> {
        let cookie = req.cookie(COOKIE)?;
        self.with_session_id(cookie.value(), f)
    }

    /// The session `id`, if live; touched.
    fn with_session_id<T>(&self, id: &str, f: impl FnOnce(&mut Session) -> T) -> Option<T> {
        let mut sessions = lock(&self.sessions);
        let session = sessions.get_mut(id)?;
        session.seen = Instant::now();
        Some(f(session))
    }

    /// A new session's id; the oldest ones make room when the store is full.
    fn create_session(&self) -> Result<String, String> {
        let id = random()?;
        let session = Session::new()?;
        let mut sessions = lock(&self.sessions);
        sessions.retain(|_, s| s.seen.elapsed() < IDLE);
        while sessions.len() >= MAX_SESSIONS {
            let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, s)| s.seen)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            sessions.remove(&oldest);
        }
        sessions.insert(id.clone(), session);
        Ok(id)
    }

    /// The session cookie (RFC 6265 §4.1): `HttpOnly`, `SameSite=Lax` (sent on the
    /// top-level navigation back from authz), `Secure` when the app is on https.
    fn session_cookie(&self, id: String) -> Cookie<'static> {
        Cookie::build(COOKIE, id)
            .path("/")
            .max_age(actix_web::cookie::time::Duration::seconds(
                IDLE.as_secs().cast_signed(),
            ))
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.secure_cookie)
            .finish()
    }

    /// A token request (RFC 6749 §4.1.3, §6) as the client of `kind`.
    #[instrument(skip_all)]
    async fn token(&self, kind: Kind, form: &[(&str, &str)]) -> Result<Value, String> {
        let provider = self.provider().await?;
        let req = self.http.post(&provider.token_endpoint);
        let req = match kind {
            // RFC 6749 §2.3.1: the demo's id and secret need no form-urlencoding.
            Kind::Web => req.basic_auth(CLIENT_ID, Some(CLIENT_SECRET)).form(form),
            Kind::Spa => {
                let mut form = form.to_vec();
                form.push(("client_id", SPA_CLIENT_ID));
                req.form(&form)
            }
        };
        let res = req
            .send()
            .await
            .map_err(|e| format!("token endpoint: {e}"))?;
        let (status, body) = json_of(res).await?;
        if !status.is_success() {
            return Err(format!(
                "the token endpoint answered {}: {} {}",
                status.as_u16(),
                body["error"].as_str().unwrap_or("?"),
                body["error_description"].as_str().unwrap_or("")
            ));
        }
        Ok(body)
    }

    /// OpenID Connect Core 1.0 §3.1.3.7 (and §12.2 after a refresh, where `nonce` is not
    /// sent again): the ID token's claims once it is valid for `kind`'s client.
    #[instrument(skip_all)]
    async fn verify_id_token(
        &self,
        id_token: &str,
        kind: Kind,
        nonce: Option<&str>,
    ) -> Result<Map<String, Value>, String> {
        let provider = self.provider().await?;
        let res = self
            .http
            .get(&provider.jwks_uri)
            .send()
            .await
            .map_err(|e| format!("JWKS: {e}"))?;
        let (_, jwks) = json_of(res).await?;
        let mut keys = Verifiers::new();
        keys.extend_from_jwks(&jwks);
        let expect = Expect {
            algorithms: &Algorithm::ALL,
            typ: None,
        };
        let claims = issuer::jws::verify(id_token, &keys, &expect)
            .map_err(|e| format!("ID token refused: {e}"))?
            .claims;
        check_id_claims(
            &claims,
            &self.args.issuer,
            kind.client_id(),
            nonce,
            unix_now(),
        )?;
        Ok(claims)
    }

    /// Stores a token response as the session's signed-in state.
    async fn sign_in(
        &self,
        kind: Kind,
        tokens: &Value,
        nonce: Option<&str>,
        previous: Option<(&str, u32)>,
    ) -> Result<SignedIn, String> {
        let access_token = str_field(tokens, "access_token")?;
        // §12.2: a refresh response may omit the ID token; the previous one stays.
        let id_token = match (tokens.get("id_token").and_then(Value::as_str), previous) {
            (Some(t), _) => t.to_owned(),
            (None, Some((t, _))) => t.to_owned(),
            (None, None) => return Err("the token response has no id_token".to_owned()),
        };
        let id_claims = self.verify_id_token(&id_token, kind, nonce).await?;
        Ok(SignedIn {
            kind,
            access_token,
            refresh_token: tokens
                .get("refresh_token")
                .and_then(Value::as_str)
                .map(str::to_owned),
            id_token,
            id_claims,
            scope: tokens["scope"].as_str().unwrap_or(SCOPE).to_owned(),
            expires_at: unix_now() + tokens["expires_in"].as_i64().unwrap_or(0),
            refreshes: previous.map_or(0, |(_, n)| n + 1),
            last_call: None,
        })
    }

    /// A GET with the access token (RFC 6750 §2.1), summarised for the page.
    #[instrument(skip_all)]
    async fn call(&self, url: &str, access_token: &str) -> (String, String) {
        let res = match self.http.get(url).bearer_auth(access_token).send().await {
            Ok(res) => res,
            Err(e) => return ("unreachable".to_owned(), e.to_string()),
        };
        let status = res.status();
        let challenge = res
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .map(|v| format!(" — WWW-Authenticate: {v}"))
            .unwrap_or_default();
        let body = res.text().await.unwrap_or_default();
        let body = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| serde_json::to_string_pretty(&v).ok())
            .unwrap_or(body);
        (format!("{status}{challenge}"), body)
    }
}

/// The ID token checks of OpenID Connect Core 1.0 §3.1.3.7 after the signature: steps 2
/// (`iss`), 3-5 (`aud`, `azp`), 9 (`exp`), 10 (`iat`) and 11 (`nonce`).
fn check_id_claims(
    claims: &Map<String, Value>,
    issuer: &str,
    client_id: &str,
    nonce: Option<&str>,
    now: i64,
) -> Result<(), String> {
    if claims.get("iss").and_then(Value::as_str) != Some(issuer) {
        return Err(format!("ID token iss is not {issuer}"));
    }
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !audiences.contains(&client_id) {
        return Err(format!("ID token aud does not contain {client_id}"));
    }
    if audiences.len() > 1 && claims.get("azp").and_then(Value::as_str) != Some(client_id) {
        return Err(format!("ID token azp is not {client_id}"));
    }
    match claims.get("exp").and_then(Value::as_i64) {
        Some(exp) if exp + LEEWAY > now => {}
        _ => return Err("ID token expired".to_owned()),
    }
    match claims.get("iat").and_then(Value::as_i64) {
        Some(iat) if iat <= now + LEEWAY => {}
        _ => return Err("ID token iat missing or in the future".to_owned()),
    }
    if let Some(expected) = nonce {
        let got = claims.get("nonce").and_then(Value::as_str).unwrap_or("");
        if !domain::constant_time_eq(got.as_bytes(), expected.as_bytes()) {
            return Err("ID token nonce does not match the request".to_owned());
        }
    }
    Ok(())
}

/// The claims of a JWT access token, decoded without verification for display (rs verifies
/// them); `None` for an opaque token.
fn peek_claims(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}

/// A message page: a title and a line of text, optionally a link back home.
#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    title: &'a str,
    text: &'a str,
    start_again: bool,
}

/// A notice shown once at the top of the home page.
struct Notice {
    error: bool,
    text: String,
}

/// The outcome of the last API call, shown on the home page.
struct CallView<'a> {
    what: &'a str,
    status: &'a str,
    body: &'a str,
}

/// What the home page shows of a signed-in user.
struct UserView<'a> {
    who: String,
    sub: &'a str,
    client: &'static str,
    scope: &'a str,
    expires_in: i64,
    refreshes: u32,
    has_refresh: bool,
    last_call: Option<CallView<'a>>,
    id_claims: String,
    /// The access token's claims when it is a JWT (RFC 9068), pretty-printed.
    access_claims: Option<String>,
}

/// The home page: the sign-in buttons, or what the signed-in user's tokens carry.
#[derive(Template)]
#[template(path = "home.html")]
struct HomePage<'a> {
    notice: Option<Notice>,
    issuer: &'a str,
    /// idp's account page (account page).
    account: String,
    csrf: &'a str,
    user: Option<UserView<'a>>,
}

/// The single-page app's page: the configuration its script reads, all escaped.
#[derive(Template)]
#[template(path = "spa.html")]
struct SpaPage<'a> {
    issuer: &'a str,
    client_id: &'a str,
    redirect_uri: &'a str,
    scope: &'a str,
    home: &'a str,
    script: &'a str,
}

/// Where the single-page app's page is served (its redirect URI is [`SPA_CALLBACK_PATH`]).
const SPA_PATH: &str = "/spa";
/// The single-page app's script.
const SPA_SCRIPT_PATH: &str = "/spa/app.js";
/// The single-page app's script: plain JavaScript, no build step.
const SPA_SCRIPT: &str = include_str!("../static/spa.js");

/// `GET /spa` (and `GET /spa/callback` when this app's server did not start the
/// sign-in): the single-page app, which runs the code flow with PKCE from JavaScript as
/// the public client `demo-spa`. Its Content-Security-Policy allows its own script and
/// requests to authz's origin only.
fn spa_page(app: &DemoApp) -> HttpResponse {
    let redirect_uri = format!("{}{}", app.args.public_url, SPA_CALLBACK_PATH);
    let home = format!("{}/", app.args.public_url);
    let template = SpaPage {
        issuer: &app.args.issuer,
        client_id: SPA_CLIENT_ID,
        redirect_uri: &redirect_uri,
        scope: SCOPE,
        home: &home,
        script: SPA_SCRIPT_PATH,
    };
    let html = match template.render() {
        Ok(html) => html,
        Err(e) => {
            tracing::error!(error = %e, "demo app: template");
            return failure("template error");
        }
    };
    let issuer_origin = url::Url::parse(&app.args.issuer)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            format!(
                "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; \
                 connect-src {issuer_origin}; form-action 'none'; base-uri 'none'; \
                 frame-ancestors 'none'"
            ),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .body(html)
}

/// `GET /spa`.
async fn spa(app: web::Data<DemoApp>) -> HttpResponse {
    spa_page(&app)
}

/// `GET /spa/app.js`: the single-page app's script.
async fn spa_script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(SPA_SCRIPT)
}

/// A complete page: self-contained, no script, never cached or framed.
fn page(status: StatusCode, template: &impl Template) -> HttpResponse {
    let html = match template.render() {
        Ok(html) => html,
        Err(e) => {
            tracing::error!(error = %e, "demo app: template");
            return HttpResponse::InternalServerError()
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .body("template error");
        }
    };
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' http: https:; base-uri 'none'; frame-ancestors 'none'",
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .body(html)
}

/// A message page with `status`.
fn message(status: StatusCode, title: &str, text: &str, start_again: bool) -> HttpResponse {
    page(
        status,
        &MessagePage {
            title,
            text,
            start_again,
        },
    )
}

fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to.to_owned()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// `GET /`: sign-in buttons, or what the signed-in user's tokens carry.
async fn home(
    app: web::Data<DemoApp>,
    req: HttpRequest,
    query: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let known = req
        .cookie(COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|id| lock(&app.sessions).contains_key(id));
    let (id, fresh) = match known {
        Some(id) => (id, false),
        None => match app.create_session() {
            Ok(id) => (id, true),
            Err(e) => return failure(&e),
        },
    };
    let rendered = app.with_session_id(&id, |s| {
        // The return from RP-initiated logout (RP-Initiated Logout 1.0 §3) with our state.
        if let (Some(sent), Some(back)) = (&s.logout_state, query.get("state"))
            && domain::constant_time_eq(sent.as_bytes(), back.as_bytes())
        {
            s.logout_state = None;
            s.notice = Some((false, "Signed out of authz and idp.".to_owned()));
        }
        let notice = s.notice.take().map(|(error, text)| Notice { error, text });
        page(StatusCode::OK, &home_page(&app.args, s, notice))
    });
    let Some(mut res) = rendered else {
        return failure("the session store is full; try again");
    };
    if fresh && let Err(e) = res.add_cookie(&app.session_cookie(id)) {
        return failure(&e.to_string());
    }
    res
}

fn failure(text: &str) -> HttpResponse {
    message(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        text,
        false,
    )
}

/// The home page's view of session `s`.
fn home_page<'a>(args: &'a AppArgs, s: &'a Session, notice: Option<Notice>) -> HomePage<'a> {
    let user = s.user.as_ref().map(|user| {
        let claim = |name: &str| {
            user.id_claims
                .get(name)
                .and_then(Value::as_str)
                .unwrap_or("")
        };
        let who = match claim("name") {
            "" => claim("sub").to_owned(),
            name => name.to_owned(),
        };
        UserView {
            who,
            sub: user
                .id_claims
                .get("sub")
                .and_then(Value::as_str)
                .unwrap_or(""),
            client: user.kind.client_id(),
            scope: &user.scope,
            expires_in: (user.expires_at - unix_now()).max(0),
            refreshes: user.refreshes,
            has_refresh: user.refresh_token.is_some(),
            last_call: user.last_call.as_ref().map(|c| CallView {
                what: &c.what,
                status: &c.status,
                body: &c.body,
            }),
            id_claims: pretty(&Value::Object(user.id_claims.clone())),
            access_claims: peek_claims(&user.access_token).map(|c| pretty(&c)),
        }
    });
    HomePage {
        notice,
        issuer: &args.issuer,
        account: format!("{}/account", args.idp.trim_end_matches('/')),
        csrf: &s.csrf,
        user,
    }
}

#[derive(Deserialize)]
struct LoginForm {
    csrf: String,
    client: String,
}

/// Checks the form's CSRF token against the session's, in constant time.
fn csrf_ok(s: &Session, presented: &str) -> bool {
    domain::constant_time_eq(s.csrf.as_bytes(), presented.as_bytes())
}

fn forbidden() -> HttpResponse {
    message(
        StatusCode::FORBIDDEN,
        "Form expired",
        "The page's security token is missing or wrong.",
        true,
    )
}

/// `POST /login`: an authorization request (RFC 6749 §4.1.1 with RFC 7636 §4.3, OpenID
/// Connect Core 1.0 §3.1.2.1) for the chosen client.
#[instrument(skip_all)]
async fn login(
    app: web::Data<DemoApp>,
    req: HttpRequest,
    form: web::Form<LoginForm>,
) -> HttpResponse {
    let Some(kind) = Kind::parse(&form.client) else {
        return message(StatusCode::BAD_REQUEST, "Unknown client", "", true);
    };
    let provider = match app.provider().await {
        Ok(p) => p,
        Err(e) => return failure(&e),
    };
    let (state, nonce, verifier) = match (random(), random(), random()) {
        (Ok(a), Ok(b), Ok(c)) => (a, b, c),
        _ => return failure("no randomness"),
    };
    let redirect_uri = format!("{}{}", app.args.public_url, kind.callback());
    let url = reqwest::Url::parse_with_params(
        &provider.authorization_endpoint,
        [
            ("response_type", "code"),
            ("client_id", kind.client_id()),
            ("redirect_uri", redirect_uri.as_str()),
            ("scope", SCOPE),
            ("state", state.as_str()),
            ("nonce", nonce.as_str()),
            ("code_challenge", verifier_challenge(&verifier).as_str()),
            ("code_challenge_method", "S256"),
        ],
    );
    let url = match url {
        Ok(url) => url,
        Err(e) => return failure(&e.to_string()),
    };
    let accepted = app.with_session(&req, |s| {
        if !csrf_ok(s, &form.csrf) {
            return false;
        }
        s.pending = Some(Pending {
            kind,
            state,
            nonce,
            verifier,
        });
        true
    });
    match accepted {
        Some(true) => see_other(url.as_str()),
        _ => forbidden(),
    }
}

/// `GET /callback` and `GET /spa/callback`: the authorization response (RFC 6749 §4.1.2,
/// §4.1.2.1), then the code exchange and the ID token validation. A `/spa/callback` this
/// server did not start is the single-page app's: its page is served instead.
#[instrument(skip_all)]
async fn callback(
    app: web::Data<DemoApp>,
    req: HttpRequest,
    query: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let kind = if req.path() == Kind::Spa.callback() {
        Kind::Spa
    } else {
        Kind::Web
    };
    // The single-page app's own sign-ins come back here too: unless this server started
    // a `demo-spa` sign-in for this browser, the page's script finishes it.
    let server_side = app
        .with_session(&req, |s| s.pending.as_ref().map(|p| p.kind))
        .flatten()
        == Some(Kind::Spa);
    if kind == Kind::Spa && !server_side {
        return spa_page(&app);
    }
    let pending = app.with_session(&req, |s| s.pending.take()).flatten();
    let Some(pending) = pending else {
        return message(
            StatusCode::BAD_REQUEST,
            "No sign-in in progress",
            "This browser did not start a sign-in here (or already finished it).",
            true,
        );
    };
    let outcome = async {
        let state = query.get("state").map(String::as_str).unwrap_or("");
        if pending.kind != kind
            || !domain::constant_time_eq(state.as_bytes(), pending.state.as_bytes())
        {
            return Err(
                "the response's state does not match the request (RFC 6749 §10.12)".to_owned(),
            );
        }
        // RFC 9207 §2.4: discovery says iss is always sent; it must be our issuer.
        if query.get("iss").map(String::as_str) != Some(app.args.issuer.as_str()) {
            return Err(
                "the response's iss is missing or names another issuer (RFC 9207)".to_owned(),
            );
        }
        if let Some(error) = query.get("error") {
            return Err(format!(
                "authorization failed: {error} {}",
                query
                    .get("error_description")
                    .map(String::as_str)
                    .unwrap_or("")
            ));
        }
        let code = query.get("code").ok_or("the response has no code")?;
        let redirect_uri = format!("{}{}", app.args.public_url, kind.callback());
        let tokens = app
            .token(
                kind,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("redirect_uri", &redirect_uri),
                    ("code_verifier", &pending.verifier),
                ],
            )
            .await?;
        app.sign_in(kind, &tokens, Some(&pending.nonce), None).await
    }
    .await;
    app.with_session(&req, |s| match outcome {
        Ok(user) => {
            s.user = Some(user);
            s.notice = Some((false, format!("Signed in with {}.", kind.client_id())));
        }
        Err(e) => s.notice = Some((true, e)),
    });
    see_other("/")
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
    #[serde(default)]
    what: String,
}

/// The signed-in tokens a form post acts with.
struct Held {
    kind: Kind,
    access_token: String,
    refresh_token: Option<String>,
    id_token: String,
    refreshes: u32,
}

/// Why a form post cannot act: a missing session or wrong CSRF token (403), or nobody is
/// signed in (back to the home page).
enum Refused {
    Forbidden,
    SignedOut,
}

impl Refused {
    fn response(self) -> HttpResponse {
        match self {
            Self::Forbidden => forbidden(),
            Self::SignedOut => see_other("/"),
        }
    }
}

/// The signed-in state's tokens for a form post, when its CSRF token is right.
fn tokens_for(app: &DemoApp, req: &HttpRequest, csrf: &str) -> Result<Held, Refused> {
    app.with_session(req, |s| {
        if !csrf_ok(s, csrf) {
            return Err(Refused::Forbidden);
        }
        let user = s.user.as_ref().ok_or(Refused::SignedOut)?;
        Ok(Held {
            kind: user.kind,
            access_token: user.access_token.clone(),
            refresh_token: user.refresh_token.clone(),
            id_token: user.id_token.clone(),
            refreshes: user.refreshes,
        })
    })
    .unwrap_or(Err(Refused::Forbidden))
}

/// `POST /call`: rs `/api/v1/me` or `/api/v1/items`, or userinfo (OpenID Connect Core 1.0
/// §5.3), with the access token.
#[instrument(skip_all)]
async fn call(
    app: web::Data<DemoApp>,
    req: HttpRequest,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    let held = match tokens_for(&app, &req, &form.csrf) {
        Ok(held) => held,
        Err(refused) => return refused.response(),
    };
    let url = match form.what.as_str() {
        "me" => format!("{}/api/v1/me", app.args.rs),
        "items" => format!("{}/api/v1/items", app.args.rs),
        "userinfo" => match app.provider().await {
            Ok(p) => p.userinfo_endpoint.clone(),
            Err(e) => return failure(&e),
        },
        _ => {
            return message(StatusCode::BAD_REQUEST, "Unknown call", "", true);
        }
    };
    let (status, body) = app.call(&url, &held.access_token).await;
    app.with_session(&req, |s| {
        if let Some(user) = &mut s.user {
            user.last_call = Some(Call {
                what: format!("GET {url}"),
                status,
                body,
            });
        }
    });
    see_other("/")
}

/// `POST /refresh`: the refresh grant (RFC 6749 §6); the old refresh token is spent
/// (rotation), the new one replaces it.
#[instrument(skip_all)]
async fn refresh(
    app: web::Data<DemoApp>,
    req: HttpRequest,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    let held = match tokens_for(&app, &req, &form.csrf) {
        Ok(held) => held,
        Err(refused) => return refused.response(),
    };
    let (kind, id_token, refreshes) = (held.kind, held.id_token, held.refreshes);
    let Some(refresh_token) = held.refresh_token else {
        return see_other("/");
    };
    let outcome = match app
        .token(
            kind,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh_token),
            ],
        )
        .await
    {
        Ok(tokens) => {
            app.sign_in(kind, &tokens, None, Some((&id_token, refreshes)))
                .await
        }
        Err(e) => Err(e),
    };
    app.with_session(&req, |s| match outcome {
        Ok(user) => {
            s.user = Some(user);
            s.notice = Some((
                false,
                "Tokens refreshed; the old refresh token is spent.".to_owned(),
            ));
        }
        Err(e) => s.notice = Some((true, e)),
    });
    see_other("/")
}

/// `POST /logout`: forgets the tokens and sends the browser to authz's
/// `end_session_endpoint` (RP-Initiated Logout 1.0 §2) to end the authz and idp sessions.
#[instrument(skip_all)]
async fn logout(
    app: web::Data<DemoApp>,
    req: HttpRequest,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    let (kind, id_token) = match tokens_for(&app, &req, &form.csrf) {
        Ok(held) => (held.kind, held.id_token),
        Err(refused) => return refused.response(),
    };
    let provider = match app.provider().await {
        Ok(p) => p,
        Err(e) => return failure(&e),
    };
    let Ok(state) = random() else {
        return failure("no randomness");
    };
    let back = format!("{}/", app.args.public_url);
    let url = reqwest::Url::parse_with_params(
        &provider.end_session_endpoint,
        [
            ("id_token_hint", id_token.as_str()),
            ("client_id", kind.client_id()),
            ("post_logout_redirect_uri", back.as_str()),
            ("state", state.as_str()),
        ],
    );
    let url = match url {
        Ok(url) => url,
        Err(e) => return failure(&e.to_string()),
    };
    app.with_session(&req, |s| {
        s.user = None;
        s.logout_state = Some(state);
    });
    see_other(url.as_str())
}

/// The form of a back-channel logout request (Back-Channel Logout 1.0 §2.5).
#[derive(Debug, Deserialize)]
struct LogoutTokenForm {
    #[serde(default)]
    logout_token: String,
}

/// The path where authz POSTs logout tokens to `demo-client` (its registered
/// `backchannel_logout_uri`).
pub const BACKCHANNEL_LOGOUT_PATH: &str = "/backchannel-logout";

/// The `events` member of a logout token (Back-Channel Logout 1.0 §2.4).
const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// Back-Channel Logout 1.0 §2.6 steps 3-8 after the signature and `typ`: `iss`, `aud`
/// (this client), `iat` and `exp`, the logout event in `events`, `sub` or `sid`, and no
/// `nonce`. Returns `(sid, sub)`.
fn check_logout_claims(
    claims: &Map<String, Value>,
    issuer: &str,
    client_id: &str,
    now: i64,
) -> Result<(Option<String>, Option<String>), String> {
    if claims.get("iss").and_then(Value::as_str) != Some(issuer) {
        return Err(format!("logout token iss is not {issuer}"));
    }
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !audiences.contains(&client_id) {
        return Err(format!("logout token aud does not contain {client_id}"));
    }
    match claims.get("iat").and_then(Value::as_i64) {
        Some(iat) if iat <= now + LEEWAY => {}
        _ => return Err("logout token iat missing or in the future".to_owned()),
    }
    match claims.get("exp").and_then(Value::as_i64) {
        Some(exp) if exp + LEEWAY > now => {}
        _ => return Err("logout token expired".to_owned()),
    }
    if !claims
        .get("events")
        .and_then(|e| e.get(BACKCHANNEL_LOGOUT_EVENT))
        .is_some_and(Value::is_object)
    {
        return Err("logout token has no back-channel logout event".to_owned());
    }
    if claims.contains_key("nonce") {
        return Err("logout token carries a nonce".to_owned());
    }
    let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
    let (sid, sub) = (text("sid"), text("sub"));
    if sid.is_none() && sub.is_none() {
        return Err("logout token has neither sid nor sub".to_owned());
    }
    Ok((sid, sub))
}

/// The §2.8 error answer: 400 with an OAuth error body, never cached.
fn logout_refused(description: &str) -> HttpResponse {
    HttpResponse::BadRequest()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({
            "error": "invalid_request",
            "error_description": description,
        }))
}

/// `POST /backchannel-logout` (OpenID Connect Back-Channel Logout 1.0 §2.5-§2.8): verifies
/// the logout token against authz's JWKS (signature, `typ: logout+jwt`, and the claims of
/// [`check_logout_claims`]), ends this app's sessions of `demo-client` with that `sid` (or,
/// without `sid`, that `sub`), each showing on its next page that authz ended it; 200 when
/// the token is valid, 400 `invalid_request` otherwise.
#[instrument(skip_all)]
async fn backchannel_logout(
    app: web::Data<DemoApp>,
    form: web::Form<LogoutTokenForm>,
) -> HttpResponse {
    if form.logout_token.is_empty() {
        return logout_refused("logout_token is missing");
    }
    let provider = match app.provider().await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "cannot check a logout token");
            return HttpResponse::ServiceUnavailable()
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .finish();
        }
    };
    let jwks = match app.http.get(&provider.jwks_uri).send().await {
        Ok(res) => match json_of(res).await {
            Ok((_, jwks)) => jwks,
            Err(e) => return logout_refused(&e),
        },
        Err(e) => {
            tracing::warn!(error = %e, "cannot fetch the JWKS");
            return HttpResponse::ServiceUnavailable()
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .finish();
        }
    };
    let mut keys = Verifiers::new();
    keys.extend_from_jwks(&jwks);
    let expect = Expect {
        algorithms: &Algorithm::ALL,
        typ: Some("logout+jwt"),
    };
    let claims = match issuer::jws::verify(&form.logout_token, &keys, &expect) {
        Ok(v) => v.claims,
        Err(e) => return logout_refused(&format!("logout token refused: {e}")),
    };
    let (sid, sub) = match check_logout_claims(&claims, &app.args.issuer, CLIENT_ID, unix_now()) {
        Ok(found) => found,
        Err(e) => return logout_refused(&e),
    };
    let mut ended = 0;
    for session in lock(&app.sessions).values_mut() {
        let matches = session.user.as_ref().is_some_and(|u| {
            let claim = |name: &str| u.id_claims.get(name).and_then(Value::as_str);
            u.kind == Kind::Web
                && match &sid {
                    Some(sid) => claim("sid") == Some(sid.as_str()),
                    None => claim("sub") == sub.as_deref(),
                }
        });
        if matches {
            session.user = None;
            session.notice = Some((
                false,
                "authz ended this session: a back-channel logout token arrived (OpenID \
                 Connect Back-Channel Logout 1.0)."
                    .to_owned(),
            ));
            ended += 1;
        }
    }
    tracing::info!(sessions = ended, "back-channel logout");
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// `GET /healthz`: 200 while the app serves; creates no session (for health checks).
async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body("ok")
}

/// Runs the app until SIGTERM or ctrl-c: exit code 0 after a clean stop, 1 when it cannot
/// listen or fails, 2 (one line on stderr) on a malformed URL argument.
pub fn run(args: AppArgs) -> ExitCode {
    let app = match DemoApp::new(args) {
        Ok(app) => app,
        Err(line) => {
            eprintln!("{line}");
            return ExitCode::from(crate::EXIT_USAGE);
        }
    };
    let rt = match runtime::cli::tokio_runtime(1, runtime::DEFAULT_MAX_BLOCKING_THREADS) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime::cli::exit_code(rt.block_on(serve(app)))
}

async fn serve(app: DemoApp) -> Result<(), String> {
    let listen = app.args.listen;
    let listener = std::net::TcpListener::bind(listen)
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    let app = web::Data::new(app);
    let public = app.args.public_url.clone();
    let factory = move || {
        actix_web::App::new()
            .app_data(app.clone())
            .route("/", web::get().to(home))
            .route("/healthz", web::get().to(healthz))
            .route("/login", web::post().to(login))
            .route(CALLBACK_PATH, web::get().to(callback))
            .route(SPA_CALLBACK_PATH, web::get().to(callback))
            .route(SPA_PATH, web::get().to(spa))
            .route(SPA_SCRIPT_PATH, web::get().to(spa_script))
            .route("/call", web::post().to(call))
            .route("/refresh", web::post().to(refresh))
            .route("/logout", web::post().to(logout))
            .route(BACKCHANNEL_LOGOUT_PATH, web::post().to(backchannel_logout))
    };
    let server = runtime::http_server("demo-app", listener, factory, 1, Duration::from_secs(2))
        .map_err(|e| e.to_string())?;
    let shutdown = runtime::Shutdown::new();
    shutdown.on_signals();
    let handle = server.handle();
    tokio::spawn(async move {
        shutdown.wait().await;
        handle.stop(true).await;
    });
    println!("demo app listening on {bound}: open {public}/");
    server.await.map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn claims(extra: Value) -> Map<String, Value> {
        let mut base = json!({
            "iss": "http://localhost:8080", "aud": "demo-client", "sub": "u1",
            "exp": 2_000, "iat": 1_000, "nonce": "n1"
        });
        if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        base.as_object().unwrap().clone()
    }

    fn check(extra: Value, nonce: Option<&str>) -> Result<(), String> {
        check_id_claims(
            &claims(extra),
            "http://localhost:8080",
            "demo-client",
            nonce,
            1_500,
        )
    }

    #[test]
    fn id_token_checks_of_core_3_1_3_7() {
        assert_eq!(check(json!({}), Some("n1")), Ok(()));
        assert_eq!(
            check(json!({}), None),
            Ok(()),
            "no nonce check after a refresh"
        );
        assert!(check(json!({"iss": "http://evil"}), Some("n1")).is_err());
        assert!(check(json!({"aud": "other"}), Some("n1")).is_err());
        assert!(check(json!({"aud": ["demo-client", "other"]}), Some("n1")).is_err());
        assert_eq!(
            check(
                json!({"aud": ["demo-client", "other"], "azp": "demo-client"}),
                Some("n1")
            ),
            Ok(())
        );
        assert!(check(json!({"exp": 1_000}), Some("n1")).is_err());
        assert!(check(json!({"iat": 9_000}), Some("n1")).is_err());
        assert!(check(json!({"nonce": "n2"}), Some("n1")).is_err());
        assert!(check(json!({"nonce": null}), Some("n1")).is_err());
    }

    #[test]
    fn logout_token_checks_of_back_channel_logout_2_6() {
        let check = |extra: Value| {
            let mut claims = json!({
                "iss": "http://localhost:8080",
                "aud": "demo-client",
                "iat": 5_000,
                "exp": 5_120,
                "jti": "j1",
                "sub": "u1",
                "sid": "s1",
                "events": { BACKCHANNEL_LOGOUT_EVENT: {} },
            });
            for (k, v) in extra.as_object().unwrap() {
                if v.is_null() {
                    claims.as_object_mut().unwrap().remove(k);
                } else {
                    claims[k] = v.clone();
                }
            }
            check_logout_claims(
                claims.as_object().unwrap(),
                "http://localhost:8080",
                "demo-client",
                5_000,
            )
        };
        assert_eq!(check(json!({})), Ok((Some("s1".into()), Some("u1".into()))));
        assert_eq!(check(json!({"sid": null})), Ok((None, Some("u1".into()))));
        assert!(check(json!({"sid": null, "sub": null})).is_err());
        assert!(check(json!({"iss": "http://evil"})).is_err());
        assert!(check(json!({"aud": "other"})).is_err());
        assert!(check(json!({"exp": 1_000})).is_err());
        assert!(check(json!({"iat": 9_000})).is_err());
        assert!(check(json!({"events": null})).is_err());
        assert!(check(json!({"events": {"other": {}}})).is_err());
        assert!(check(json!({"nonce": "n"})).is_err());
    }

    #[test]
    fn backchannel_rewrites_only_issuer_urls() {
        let app = DemoApp::new(AppArgs {
            listen: "127.0.0.1:0".parse().unwrap(),
            public_url: "http://localhost:3000/".into(),
            issuer: "http://localhost:8080/".into(),
            backchannel: Some("http://authz:8080".into()),
            rs: "http://rs:8082".into(),
            idp: "http://localhost:8081".into(),
            ca_file: None,
        })
        .unwrap();
        assert_eq!(
            app.back("http://localhost:8080/token"),
            "http://authz:8080/token"
        );
        assert_eq!(app.back("http://elsewhere/jwks"), "http://elsewhere/jwks");
        assert_eq!(app.args.public_url, "http://localhost:3000");
    }

    #[test]
    fn pages_escape_what_they_print() {
        let args = AppArgs {
            listen: "127.0.0.1:0".parse().unwrap(),
            public_url: "http://localhost:3000".into(),
            issuer: "http://localhost:8080/<b>\"x\"".into(),
            backchannel: None,
            rs: "http://localhost:8082".into(),
            idp: "http://localhost:8081".into(),
            ca_file: None,
        };
        let session = Session::new().unwrap();
        let notice = Some(Notice {
            error: true,
            text: "<script>&".into(),
        });
        let html = home_page(&args, &session, notice).render().unwrap();
        assert!(
            html.contains("<code>http://localhost:8080/&#60;b&#62;&#34;x&#34;</code>"),
            "{html}"
        );
        assert!(html.contains("&#60;script&#62;&#38;"), "{html}");
        assert!(!html.contains("<script>"), "{html}");
        let forms = crate::browser::forms(
            &reqwest::Url::parse("http://localhost:3000/").unwrap(),
            &html,
        )
        .unwrap();
        let clients: Vec<_> = forms
            .iter()
            .map(|f| (f.action.path(), f.field("client"), f.field("csrf")))
            .collect();
        assert_eq!(
            clients,
            vec![
                ("/login", Some("web"), Some(session.csrf.as_str())),
                ("/login", Some("spa"), Some(session.csrf.as_str()))
            ]
        );
    }

    #[test]
    fn the_spa_page_escapes_its_configuration_and_may_only_reach_the_issuer() {
        let app = DemoApp::new(AppArgs {
            listen: "127.0.0.1:0".parse().unwrap(),
            public_url: "http://localhost:3000".into(),
            issuer: "http://localhost:8080/\"><x".into(),
            backchannel: None,
            rs: "http://localhost:8082".into(),
            idp: "http://localhost:8081".into(),
            ca_file: None,
        })
        .unwrap();
        let res = spa_page(&app);
        assert_eq!(res.status(), StatusCode::OK);
        let csp = res
            .headers()
            .get(header::CONTENT_SECURITY_POLICY)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        assert!(csp.contains("script-src 'self';"), "{csp}");
        assert!(
            csp.contains("connect-src http://localhost:8080;"),
            "only authz's origin: {csp}"
        );
        let body = actix_web::body::to_bytes(res.into_body());
        let html = String::from_utf8(
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap()
                .block_on(body)
                .unwrap()
                .to_vec(),
        )
        .unwrap();
        assert!(
            html.contains(r#"data-issuer="http://localhost:8080/&#34;&#62;&#60;x""#),
            "{html}"
        );
        assert!(
            html.contains(r#"data-redirect-uri="http://localhost:3000/spa/callback""#),
            "{html}"
        );
        assert!(html.contains(r#"data-client-id="demo-spa""#), "{html}");
        assert!(
            html.contains(r#"<script src="/spa/app.js" defer></script>"#),
            "{html}"
        );
        assert_eq!(
            html.matches("<script").count(),
            1,
            "no inline script: {html}"
        );
    }

    #[test]
    fn malformed_urls_are_refused_in_one_line() {
        let err = DemoApp::new(AppArgs {
            listen: "127.0.0.1:0".parse().unwrap(),
            public_url: "localhost:3000".into(),
            issuer: "http://localhost:8080".into(),
            backchannel: None,
            rs: "http://localhost:8082".into(),
            idp: "http://localhost:8081".into(),
            ca_file: None,
        })
        .err()
        .unwrap();
        assert!(err.starts_with("error: --public-url "), "{err}");
        assert!(!err.contains('\n'));
    }
}
