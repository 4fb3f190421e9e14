//! Small local stand-ins for outside identity providers, following their documented APIs:
//! an OpenID provider (Discovery 1.0, RFC 6749 code flow with PKCE, ES256 ID tokens,
//! UserInfo, RFC 9207 `iss`) whose answers a test can spoil one at a time, and a
//! GitHub-shaped server ("Authorizing OAuth apps": `/login/oauth/authorize`,
//! `/login/oauth/access_token`; REST API `/user`, `/user/emails`).
//! The end-to-end tests use a second real authz+idp pair instead.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use issuer::jws::Signer;
use issuer::{Algorithm, PrivateKey};
use serde_json::{Value, json};

pub const CLIENT_ID: &str = "idp-at-upstream";
pub const CLIENT_SECRET: &str = "upstream-secret-for-tests";

/// How the fake OpenID provider spoils its next ID tokens.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Spoil {
    #[default]
    Nothing,
    Issuer,
    Audience,
    Nonce,
    /// Claims changed after signing.
    Signature,
    Expired,
    /// The token endpoint answers `invalid_grant`.
    TokenError,
    /// Answers only after this long.
    Slow(Duration),
}

#[derive(Clone)]
struct Grant {
    nonce: String,
    challenge: String,
    redirect_uri: String,
    subject: String,
}

struct OpState {
    issuer: String,
    signer: Signer,
    jwk: Value,
    codes: HashMap<String, Grant>,
    tokens: HashMap<String, String>,
    /// Profile claims by subject.
    profiles: HashMap<String, Value>,
    spoil: Spoil,
    iss_supported: bool,
    token_calls: usize,
    /// Every successful token response, in order.
    issued: Vec<Value>,
}

/// The fake OpenID provider; cheap to clone.
#[derive(Clone)]
pub struct FakeOp {
    state: Arc<Mutex<OpState>>,
    pub issuer: String,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn s256(verifier: &str) -> String {
    b64(ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes()).as_ref())
}

fn unix() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

fn random() -> String {
    let mut b = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).unwrap();
    b64(&b)
}

/// Serves the app built by `$factory` on a free loopback port; evaluates to its address.
macro_rules! spawn_server {
    ($factory:expr) => {{
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = HttpServer::new($factory)
            .workers(1)
            .disable_signals()
            .listen(listener)
            .unwrap()
            .run();
        tokio::spawn(server);
        addr
    }};
}

impl FakeOp {
    pub async fn start() -> Self {
        let key = PrivateKey::generate(Algorithm::ES256, 0).unwrap();
        let mut jwk = Value::Object(key.public_jwk().clone());
        jwk["kid"] = json!(key.kid());
        jwk["alg"] = json!("ES256");
        jwk["use"] = json!("sig");
        let signer = Signer::new(&key).unwrap();
        let state = Arc::new(Mutex::new(OpState {
            issuer: String::new(),
            signer,
            jwk,
            codes: HashMap::new(),
            tokens: HashMap::new(),
            profiles: HashMap::new(),
            spoil: Spoil::Nothing,
            iss_supported: true,
            token_calls: 0,
            issued: Vec::new(),
        }));
        let shared = state.clone();
        let addr = spawn_server!(move || {
            App::new()
                .app_data(web::Data::new(shared.clone()))
                .route(
                    "/.well-known/openid-configuration",
                    web::get().to(discovery),
                )
                .route("/jwks", web::get().to(jwks))
                .route("/authorize", web::get().to(authorize))
                .route("/token", web::post().to(token))
                .route("/userinfo", web::get().to(userinfo))
        });
        let issuer = format!("http://{addr}");
        state.lock().unwrap().issuer.clone_from(&issuer);
        Self { state, issuer }
    }

    /// A user the provider signs in.
    pub fn add_user(&self, subject: &str, claims: Value) {
        self.state
            .lock()
            .unwrap()
            .profiles
            .insert(subject.to_owned(), claims);
    }

    pub fn spoil(&self, spoil: Spoil) {
        self.state.lock().unwrap().spoil = spoil;
    }

    pub fn token_calls(&self) -> usize {
        self.state.lock().unwrap().token_calls
    }

    /// The token responses sent so far (access, refresh and ID tokens), oldest first.
    pub fn issued(&self) -> Vec<Value> {
        self.state.lock().unwrap().issued.clone()
    }

    /// Calls itself `issuer` from now on (discovery, `iss`, endpoint URLs), while still
    /// served at [`FakeOp::issuer`]: an issuer URL only browsers can reach, as in a
    /// container network.
    pub fn publish_as(&self, issuer: &str) {
        issuer.clone_into(&mut self.state.lock().unwrap().issuer);
    }
}

type Shared = web::Data<Arc<Mutex<OpState>>>;

async fn discovery(state: Shared) -> HttpResponse {
    let s = state.lock().unwrap();
    let i = &s.issuer;
    HttpResponse::Ok().json(json!({
        "issuer": i,
        "authorization_endpoint": format!("{i}/authorize"),
        "token_endpoint": format!("{i}/token"),
        "jwks_uri": format!("{i}/jwks"),
        "userinfo_endpoint": format!("{i}/userinfo"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": s.iss_supported,
    }))
}

async fn jwks(state: Shared) -> HttpResponse {
    let s = state.lock().unwrap();
    HttpResponse::Ok().json(json!({ "keys": [s.jwk.clone()] }))
}

/// Signs the user in at once (the user is chosen with `login_hint`, the subject) and sends
/// the browser back with a code, or with `error` when the user is unknown.
async fn authorize(state: Shared, query: web::Query<HashMap<String, String>>) -> HttpResponse {
    let q = query.into_inner();
    let mut s = state.lock().unwrap();
    let redirect_uri = q.get("redirect_uri").cloned().unwrap_or_default();
    let st = q.get("state").cloned().unwrap_or_default();
    let mut to = url::Url::parse(&redirect_uri).unwrap();
    // The user named by login_hint, or the only one (a browser test has no hint).
    let subject = q
        .get("login_hint")
        .cloned()
        .or_else(|| {
            (s.profiles.len() == 1)
                .then(|| s.profiles.keys().next().cloned())
                .flatten()
        })
        .unwrap_or_default();
    let ok = q.get("client_id").map(String::as_str) == Some(CLIENT_ID)
        && q.get("code_challenge_method").map(String::as_str) == Some("S256")
        && q.get("response_type").map(String::as_str) == Some("code")
        && s.profiles.contains_key(&subject);
    if ok {
        let code = random();
        s.codes.insert(
            code.clone(),
            Grant {
                nonce: q.get("nonce").cloned().unwrap_or_default(),
                challenge: q.get("code_challenge").cloned().unwrap_or_default(),
                redirect_uri: redirect_uri.clone(),
                subject,
            },
        );
        to.query_pairs_mut().append_pair("code", &code);
    } else {
        to.query_pairs_mut().append_pair("error", "access_denied");
    }
    to.query_pairs_mut().append_pair("state", &st);
    if s.iss_supported {
        let issuer = s.issuer.clone();
        to.query_pairs_mut().append_pair("iss", &issuer);
    }
    HttpResponse::Found()
        .insert_header(("location", to.as_str()))
        .finish()
}

async fn token(
    state: Shared,
    req: HttpRequest,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    let slow = match &state.lock().unwrap().spoil {
        Spoil::Slow(d) => Some(*d),
        _ => None,
    };
    if let Some(d) = slow {
        tokio::time::sleep(d).await;
    }
    let mut s = state.lock().unwrap();
    s.token_calls += 1;
    let invalid = |e: &str| HttpResponse::BadRequest().json(json!({ "error": e }));
    let expected = domain::basic::encode(CLIENT_ID, CLIENT_SECRET);
    if req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        != Some(&expected)
    {
        return HttpResponse::Unauthorized().json(json!({ "error": "invalid_client" }));
    }
    if s.spoil == Spoil::TokenError {
        return invalid("invalid_grant");
    }
    let f = form.into_inner();
    // Single use: a replayed code is invalid_grant (RFC 6749 §4.1.2).
    let Some(grant) = f.get("code").and_then(|c| s.codes.remove(c)) else {
        return invalid("invalid_grant");
    };
    if f.get("grant_type").map(String::as_str) != Some("authorization_code")
        || f.get("redirect_uri") != Some(&grant.redirect_uri)
        || f.get("code_verifier").map(|v| s256(v)) != Some(grant.challenge.clone())
    {
        return invalid("invalid_grant");
    }
    let now = unix();
    let mut claims = json!({
        "iss": s.issuer,
        "sub": grant.subject,
        "aud": CLIENT_ID,
        "iat": now,
        "exp": now + 300,
        "nonce": grant.nonce,
    });
    match s.spoil {
        Spoil::Issuer => claims["iss"] = json!("http://evil.example"),
        Spoil::Audience => claims["aud"] = json!("someone-else"),
        Spoil::Nonce => claims["nonce"] = json!("not-the-nonce"),
        Spoil::Expired => {
            claims["iat"] = json!(now - 3600);
            claims["exp"] = json!(now - 600);
        }
        _ => {}
    }
    let mut id_token = s.signer.sign_jwt("JWT", &claims).unwrap();
    if s.spoil == Spoil::Signature {
        // Another subject under the original signature.
        claims["sub"] = json!("someone-else");
        let parts: Vec<&str> = id_token.split('.').collect();
        id_token = format!(
            "{}.{}.{}",
            parts[0],
            b64(claims.to_string().as_bytes()),
            parts[2]
        );
    }
    let access = random();
    s.tokens.insert(access.clone(), grant.subject);
    let response = json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": 300,
        "refresh_token": random(),
        "id_token": id_token,
    });
    s.issued.push(response.clone());
    HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(response)
}

async fn userinfo(state: Shared, req: HttpRequest) -> HttpResponse {
    let s = state.lock().unwrap();
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let Some(subject) = s.tokens.get(token) else {
        return HttpResponse::Unauthorized().finish();
    };
    let mut claims = s
        .profiles
        .get(subject)
        .cloned()
        .unwrap_or_else(|| json!({}));
    claims["sub"] = json!(subject);
    HttpResponse::Ok().json(claims)
}

// ---- GitHub ----

struct GhState {
    /// GitHub users by login: (id, name, emails).
    users: HashMap<String, (u64, Option<String>, Value)>,
    codes: HashMap<String, (String, String)>,
    tokens: HashMap<String, String>,
}

/// The GitHub-shaped server; cheap to clone.
#[derive(Clone)]
pub struct FakeGithub {
    state: Arc<Mutex<GhState>>,
    pub url: String,
}

impl FakeGithub {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(GhState {
            users: HashMap::new(),
            codes: HashMap::new(),
            tokens: HashMap::new(),
        }));
        let shared = state.clone();
        let addr = spawn_server!(move || {
            App::new()
                .app_data(web::Data::new(shared.clone()))
                .route("/login/oauth/authorize", web::get().to(gh_authorize))
                .route("/login/oauth/access_token", web::post().to(gh_token))
                .route("/api/user", web::get().to(gh_user))
                .route("/api/user/emails", web::get().to(gh_emails))
        });
        Self {
            state,
            url: format!("http://{addr}"),
        }
    }

    /// A GitHub account: `emails` as `/user/emails` lists them.
    pub fn add_user(&self, login: &str, id: u64, name: Option<&str>, emails: Value) {
        self.state
            .lock()
            .unwrap()
            .users
            .insert(login.to_owned(), (id, name.map(str::to_owned), emails));
    }
}

type Gh = web::Data<Arc<Mutex<GhState>>>;

async fn gh_authorize(state: Gh, query: web::Query<HashMap<String, String>>) -> HttpResponse {
    let q = query.into_inner();
    let mut s = state.lock().unwrap();
    let mut to = url::Url::parse(q.get("redirect_uri").map_or("", String::as_str)).unwrap();
    let login = q.get("login").cloned().unwrap_or_default();
    if s.users.contains_key(&login) && q.get("client_id").map(String::as_str) == Some(CLIENT_ID) {
        let code = random();
        let challenge = q.get("code_challenge").cloned().unwrap_or_default();
        s.codes.insert(code.clone(), (login, challenge));
        to.query_pairs_mut().append_pair("code", &code);
    } else {
        to.query_pairs_mut().append_pair("error", "access_denied");
    }
    to.query_pairs_mut()
        .append_pair("state", q.get("state").map_or("", String::as_str));
    HttpResponse::Found()
        .insert_header(("location", to.as_str()))
        .finish()
}

/// GitHub answers errors of this endpoint with 200 and an `error` member.
async fn gh_token(
    state: Gh,
    req: HttpRequest,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    let f = form.into_inner();
    let mut s = state.lock().unwrap();
    let json_wanted = req
        .headers()
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    assert!(json_wanted, "idp asks for JSON");
    if f.get("client_id").map(String::as_str) != Some(CLIENT_ID)
        || f.get("client_secret").map(String::as_str) != Some(CLIENT_SECRET)
    {
        return HttpResponse::Ok().json(json!({ "error": "incorrect_client_credentials" }));
    }
    let Some((login, challenge)) = f.get("code").and_then(|c| s.codes.remove(c)) else {
        return HttpResponse::Ok().json(json!({ "error": "bad_verification_code" }));
    };
    if f.get("code_verifier").map(|v| s256(v)) != Some(challenge) {
        return HttpResponse::Ok().json(json!({ "error": "bad_verification_code" }));
    }
    let token = format!("gho_{}", random());
    s.tokens.insert(token.clone(), login);
    HttpResponse::Ok().json(
        json!({ "access_token": token, "token_type": "bearer", "scope": "read:user,user:email" }),
    )
}

fn gh_login(s: &GhState, req: &HttpRequest) -> Option<String> {
    let token = req
        .headers()
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?;
    let ua = req.headers().get("user-agent").is_some();
    let api = req.headers().get("accept").and_then(|v| v.to_str().ok())
        == Some("application/vnd.github+json");
    (ua && api).then(|| s.tokens.get(token).cloned()).flatten()
}

async fn gh_user(state: Gh, req: HttpRequest) -> HttpResponse {
    let s = state.lock().unwrap();
    let Some(login) = gh_login(&s, &req) else {
        return HttpResponse::Unauthorized().json(json!({ "message": "Requires authentication" }));
    };
    let (id, name, _) = &s.users[&login];
    HttpResponse::Ok().json(json!({ "login": login, "id": id, "name": name, "type": "User" }))
}

async fn gh_emails(state: Gh, req: HttpRequest) -> HttpResponse {
    let s = state.lock().unwrap();
    let Some(login) = gh_login(&s, &req) else {
        return HttpResponse::Unauthorized().json(json!({ "message": "Requires authentication" }));
    };
    HttpResponse::Ok().json(s.users[&login].2.clone())
}
