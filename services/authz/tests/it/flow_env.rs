//! The environment of the authorization-code-flow tests: authz in-process on port 0, an
//! in-test `idp.v1.Sessions` server standing in for idp's user and session store, a
//! LoginFlow client authenticated as idp (what idp's login and consent pages do), and a
//! scripted browser (no automatic redirects, its own cookie jar).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use authz::clients::{Client, Clients, NewClient};
use authz::{Addresses, Application, AuthzConfig};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::{AccessTokenFormat, ClientId, GrantType, ScopeSet, TokenEndpointAuthMethod};
use issuer::{Clock, ManualClock};
use proto::authz::v1::login_flow_client::LoginFlowClient;
use proto::authz::v1::{
    AcceptConsentRequest, AcceptLoginRequest, GetConsentRequestRequest, GetLoginRequestRequest,
};
use proto::idp::v1::sessions_server::{Sessions, SessionsServer};
use proto::idp::v1::{
    CheckSessionRequest, CheckSessionResponse, EndSessionRequest, EndSessionResponse,
    GetUserClaimsRequest, UserClaims, end_session_request,
};
use reqwest::StatusCode;
use runtime::{GrpcListenConfig, ListenConfig, Shutdown};
use serde_json::Value;
use storage::Database;
use storage::testing::TestDatabase;

use crate::cli::TEST_KEK;

/// The issuer of the test server (what `iss` must be).
pub const ISSUER: &str = "http://localhost:9";
/// idp's public URL as authz is configured with it.
pub const IDP_URL: &str = "http://idp.example.test";
/// The secret of every confidential test client.
pub const SECRET: &str = "client-secret-of-the-tests";
/// What authz presents to the Sessions fixture.
const AUTHZ_AT_IDP: &str = "authz-secret-at-idp";
/// The web client's registered redirect URI.
pub const WEB_CB: &str = "https://rp.example.test/cb";
/// The web client's registered post-logout redirect URI.
pub const WEB_BYE: &str = "https://rp.example.test/bye";

/// A user of the fixture.
#[derive(Clone)]
pub struct FakeUser {
    pub claims: UserClaims,
    pub disabled: bool,
}

#[derive(Default)]
struct IdpState {
    users: HashMap<String, FakeUser>,
    /// session id → (subject, alive)
    sessions: HashMap<String, (String, bool)>,
    ended: Vec<String>,
    checks: usize,
}

/// The `idp.v1.Sessions` fixture: users and sessions set by the test, Basic credentials
/// checked like idp does.
#[derive(Clone)]
pub struct FakeIdp {
    state: Arc<Mutex<IdpState>>,
}

fn authorized<T>(request: &tonic::Request<T>) -> Result<(), tonic::Status> {
    let expected = basic("authz", AUTHZ_AT_IDP);
    match request.metadata().get("authorization") {
        Some(v) if v.to_str().ok() == Some(expected.as_str()) => Ok(()),
        _ => Err(tonic::Status::unauthenticated("bad credentials")),
    }
}

#[tonic::async_trait]
impl Sessions for FakeIdp {
    async fn get_user_claims(
        &self,
        request: tonic::Request<GetUserClaimsRequest>,
    ) -> Result<tonic::Response<UserClaims>, tonic::Status> {
        authorized(&request)?;
        let r = request.into_inner();
        let user = self.state.lock().unwrap().users.get(&r.subject).cloned();
        match user {
            None => Err(tonic::Status::not_found("no such user")),
            Some(u) if u.disabled => Err(tonic::Status::permission_denied("disabled")),
            Some(u) => {
                let has = |s: &str| r.scopes.iter().any(|x| x == s);
                let c = u.claims;
                Ok(tonic::Response::new(UserClaims {
                    sub: c.sub,
                    name: c.name.filter(|_| has("profile")),
                    preferred_username: c.preferred_username.filter(|_| has("profile")),
                    email: c.email.filter(|_| has("email")),
                    email_verified: c.email_verified.filter(|_| has("email")),
                    ..UserClaims::default()
                }))
            }
        }
    }

    async fn check_session(
        &self,
        request: tonic::Request<CheckSessionRequest>,
    ) -> Result<tonic::Response<CheckSessionResponse>, tonic::Status> {
        authorized(&request)?;
        let id = request.into_inner().session_id;
        let mut state = self.state.lock().unwrap();
        state.checks += 1;
        let (subject, active) = state.sessions.get(&id).cloned().unwrap_or_default();
        Ok(tonic::Response::new(CheckSessionResponse {
            active,
            subject,
            auth_time: 0,
            amr: vec!["pwd".into()],
            acr: String::new(),
        }))
    }

    async fn end_session(
        &self,
        request: tonic::Request<EndSessionRequest>,
    ) -> Result<tonic::Response<EndSessionResponse>, tonic::Status> {
        authorized(&request)?;
        let Some(end_session_request::Target::SessionId(id)) = request.into_inner().target else {
            return Err(tonic::Status::invalid_argument("session_id expected"));
        };
        let mut state = self.state.lock().unwrap();
        state.ended.push(id.clone());
        let ended = match state.sessions.get_mut(&id) {
            Some(s) if s.1 => {
                s.1 = false;
                1
            }
            _ => 0,
        };
        Ok(tonic::Response::new(EndSessionResponse { ended }))
    }
}

impl FakeIdp {
    async fn start() -> (Self, String) {
        let fake = Self {
            state: Arc::default(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(SessionsServer::new(fake.clone()))
                .serve_with_incoming(incoming),
        );
        (fake, url)
    }

    /// Adds (or replaces) a user.
    pub fn user(&self, subject: &str, disabled: bool) {
        let claims = UserClaims {
            sub: subject.to_owned(),
            name: Some(format!("User {subject}")),
            preferred_username: Some(subject.to_owned()),
            email: Some(format!("{subject}@example.test")),
            email_verified: Some(true),
            ..UserClaims::default()
        };
        self.state
            .lock()
            .unwrap()
            .users
            .insert(subject.to_owned(), FakeUser { claims, disabled });
    }

    /// Deletes a user.
    pub fn delete_user(&self, subject: &str) {
        self.state.lock().unwrap().users.remove(subject);
    }

    /// Opens an idp browser session.
    pub fn session(&self, id: &str, subject: &str) {
        self.state
            .lock()
            .unwrap()
            .sessions
            .insert(id.to_owned(), (subject.to_owned(), true));
    }

    /// Ends an idp session behind authz's back (expiry, logout at idp).
    pub fn kill_session(&self, id: &str) {
        if let Some(s) = self.state.lock().unwrap().sessions.get_mut(id) {
            s.1 = false;
        }
    }

    /// Sessions ended through `EndSession`.
    pub fn ended(&self) -> Vec<String> {
        self.state.lock().unwrap().ended.clone()
    }

    /// `CheckSession` calls so far.
    pub fn checks(&self) -> usize {
        self.state.lock().unwrap().checks
    }
}

/// A registered test client.
pub fn client(id: &str) -> Client {
    Client {
        id: ClientId::parse(id).unwrap(),
        name: format!("App {id}"),
        auth_method: TokenEndpointAuthMethod::ClientSecretBasic,
        redirect_uris: vec![WEB_CB.into(), "http://127.0.0.1/native".into()],
        post_logout_redirect_uris: vec![WEB_BYE.into()],
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        scopes: ScopeSet::parse("openid profile email offline_access api:read").unwrap(),
        audiences: vec!["https://api.example.test".into()],
        access_token_format: AccessTokenFormat::Jwt,
        access_token_ttl: 600,
        refresh_token_ttl: 3600,
        id_token_ttl: 300,
        signing_alg: None,
        first_party: false,
        can_introspect: false,
        created_at: 0,
        updated_at: 0,
        allowed_origins: Vec::new(),
        backchannel_logout_uri: None,
        backchannel_logout_session_required: false,
        frontchannel_logout_uri: None,
        frontchannel_logout_session_required: false,
        token_exchange: Default::default(),
        // clientauth
        jwks: None,
        jwks_uri: None,
        token_endpoint_auth_signing_alg: None,
        tls_client_auth: None,
        require_pushed_authorization_requests: false,
    }
}

/// A client id and how it differs from [`client`].
type Setup = (&'static str, fn(&mut Client));

/// The running environment.
pub struct Env {
    pub addrs: Addresses,
    pub clock: ManualClock,
    pub idp: FakeIdp,
    pub http: reqwest::Client,
    shutdown: Shutdown,
    /// The running authz, awaited by [`Env::restart`] before the next one boots.
    task: Option<tokio::task::JoinHandle<()>>,
    /// The configuration it was booted with (for [`Env::restart`]).
    config: AuthzConfig,
}

impl Drop for Env {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

/// Boots authz against `db` with the clients of the tests:
/// - `web`: confidential, code + refresh, JWT access tokens;
/// - `opaque`: the same with opaque access tokens;
/// - `spa`: public (auth method none), code + refresh;
/// - `first`: first-party (no consent), code only, RS256 tokens;
/// - `m2m`: client_credentials only (with a redirect URI, to be refused);
/// - `idp`: the identity provider on LoginFlow; `intruder`: another confidential client;
/// - `rs`: may introspect.
pub async fn start(db: &TestDatabase) -> Env {
    start_with(db, |_| {}).await
}

/// [`start`], with `adjust` applied to the configuration first.
pub async fn start_with(db: &TestDatabase, adjust: impl FnOnce(&mut AuthzConfig)) -> Env {
    let (idp, idp_grpc) = FakeIdp::start().await;
    let mut config = AuthzConfig {
        issuer: ISSUER.to_owned(),
        http: ListenConfig::loopback(0),
        grpc: GrpcListenConfig::loopback(0),
        admin: ListenConfig::loopback(0),
        database: db.config().clone(),
        ..AuthzConfig::default()
    };
    config.keys.encryption_key = Some(config::Secret::new(TEST_KEK.to_owned()));
    config.keys.algorithms = vec![issuer::Algorithm::ES256, issuer::Algorithm::RS256];
    config.keys.default_alg = issuer::Algorithm::ES256;
    config.clients.cache_ttl = Duration::ZERO;
    config.idp.public_url = IDP_URL.to_owned();
    config.idp.grpc_url = idp_grpc;
    config.idp.client_secret = Some(config::Secret::new(AUTHZ_AT_IDP.to_owned()));
    adjust(&mut config);
    let clock = ManualClock::new(1_800_000_000);
    let shutdown = Shutdown::new();
    let app =
        Application::build_with_clock(config.clone(), shutdown.clone(), Arc::new(clock.clone()))
            .await
            .unwrap();
    let addrs = app.addresses();
    let task = tokio::spawn(async move {
        let _ = app.run().await;
    });
    let pool = Database::connect(db.config(), &authz::MIGRATIONS)
        .await
        .unwrap();
    let clients = Clients::new(pool, Arc::new(clock.clone()), Duration::ZERO);
    let setups: [Setup; 8] = [
        ("web", |_| {}),
        ("opaque", |c| {
            c.access_token_format = AccessTokenFormat::Opaque
        }),
        ("spa", |c| {
            c.auth_method = TokenEndpointAuthMethod::None;
            c.redirect_uris = vec!["https://spa.example.test/cb".into()];
        }),
        ("first", |c| {
            c.first_party = true;
            c.grant_types = vec![GrantType::AuthorizationCode];
            c.signing_alg = Some(issuer::Algorithm::RS256);
        }),
        ("m2m", |c| {
            c.grant_types = vec![GrantType::ClientCredentials]
        }),
        ("idp", |c| {
            c.grant_types = vec![GrantType::ClientCredentials]
        }),
        ("intruder", |c| {
            c.grant_types = vec![GrantType::ClientCredentials]
        }),
        ("rs", |c| {
            c.grant_types = vec![GrantType::ClientCredentials];
            c.can_introspect = true;
        }),
    ];
    for (id, f) in setups {
        let mut c = client(id);
        f(&mut c);
        let secret = (c.auth_method != TokenEndpointAuthMethod::None).then(|| SECRET.to_owned());
        clients
            .create(NewClient { client: c, secret })
            .await
            .unwrap();
    }
    idp.user("alice", false);
    idp.user("bob", false);
    Env {
        addrs,
        clock,
        idp,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        shutdown,
        task: Some(task),
        config,
    }
}

/// RFC 6749 §2.3.1 Basic credentials.
pub use domain::basic::encode as basic;

/// A PKCE pair: (verifier, S256 challenge).
pub fn pkce() -> (String, String) {
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).unwrap();
    let verifier = URL_SAFE_NO_PAD.encode(bytes);
    let challenge = URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        verifier.as_bytes(),
    ));
    (verifier, challenge)
}

/// A response as the browser saw it.
#[derive(Debug)]
pub struct Seen {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Seen {
    /// The `Location` header.
    pub fn location(&self) -> Option<&str> {
        self.headers.get("location").and_then(|v| v.to_str().ok())
    }

    /// The query parameters of the `Location`.
    pub fn params(&self) -> HashMap<String, String> {
        let location = self.location().expect("a redirect");
        query(location)
    }

    /// Asserts a 303 to `prefix` and returns its query parameters.
    pub fn redirected_to(&self, prefix: &str) -> HashMap<String, String> {
        assert_eq!(self.status, StatusCode::SEE_OTHER, "{self:?}");
        let location = self.location().unwrap();
        assert!(
            location.starts_with(&format!("{prefix}?")),
            "{location} should start with {prefix}?"
        );
        self.params()
    }

    /// Asserts an error page: an HTML 4xx/5xx with no redirect.
    pub fn assert_page(&self, status: u16) {
        assert_eq!(self.status.as_u16(), status, "{self:?}");
        assert!(self.location().is_none(), "no redirect: {self:?}");
        assert!(
            self.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{self:?}"
        );
        assert_eq!(self.headers["cache-control"], "no-store");
    }
}

/// The query parameters of a URL.
pub fn query(url: &str) -> HashMap<String, String> {
    let q = url.split_once('?').map(|(_, q)| q).unwrap_or_default();
    url::form_urlencoded::parse(q.as_bytes())
        .into_owned()
        .collect()
}

/// A scripted browser: follows nothing by itself, keeps cookies (name → value; every
/// cookie is sent to authz, whatever its path), maps URLs under the issuer to the server.
pub struct Browser {
    http: reqwest::Client,
    base: String,
    pub jar: HashMap<String, String>,
}

impl Browser {
    pub fn new(env: &Env) -> Self {
        Self {
            http: env.http.clone(),
            base: format!("http://{}", env.addrs.http),
            jar: HashMap::new(),
        }
    }

    /// A browser whose connections come from `local` (an address of the loopback network,
    /// e.g. 127.0.0.2), so that authz sees another client address.
    pub fn from_address(env: &Env, local: std::net::IpAddr) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .local_address(local)
                .build()
                .unwrap(),
            base: format!("http://{}", env.addrs.http),
            jar: HashMap::new(),
        }
    }

    fn url(&self, url: &str) -> String {
        match url.strip_prefix(ISSUER) {
            Some(path) => format!("{}{path}", self.base),
            None if url.starts_with('/') => format!("{}{url}", self.base),
            None => panic!("the browser only visits authz here, not {url}"),
        }
    }

    fn cookie_header(&self) -> String {
        self.jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn seen(&mut self, res: reqwest::Response) -> Seen {
        let status = res.status();
        let headers = res.headers().clone();
        for set in headers.get_all("set-cookie") {
            let set = set.to_str().unwrap();
            let (pair, attrs) = set.split_once(';').unwrap_or((set, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") {
                self.jar.remove(name);
            } else {
                self.jar.insert(name.to_owned(), value.to_owned());
            }
        }
        Seen {
            status,
            headers,
            body: res.text().await.unwrap(),
        }
    }

    /// GET a URL of authz.
    pub async fn get(&mut self, url: &str) -> Seen {
        let mut req = self.http.get(self.url(url));
        if !self.jar.is_empty() {
            req = req.header("cookie", self.cookie_header());
        }
        let res = req.send().await.unwrap();
        self.seen(res).await
    }

    /// POST a form to a URL of authz.
    pub async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> Seen {
        let mut req = self.http.post(self.url(url)).form(form);
        if !self.jar.is_empty() {
            req = req.header("cookie", self.cookie_header());
        }
        let res = req.send().await.unwrap();
        self.seen(res).await
    }

    /// `GET /authorize` with these parameters.
    pub async fn authorize(&mut self, params: &[(&str, &str)]) -> Seen {
        let q: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        self.get(&format!("/authorize?{q}")).await
    }
}

/// A code request of client `client_id` for `scope` with PKCE, `state` and `nonce`, plus
/// `extra` parameters.
pub fn code_request<'a>(
    client_id: &'a str,
    redirect_uri: &'a str,
    scope: &'a str,
    challenge: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut p = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("scope", scope),
        ("state", "st-123"),
        ("nonce", "n-456"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ];
    p.extend_from_slice(extra);
    p
}

impl Env {
    /// Stops this authz and boots a new one on the same database, configuration, clock
    /// and idp (new ports), as a restart of the process would.
    pub async fn restart(&mut self) {
        self.shutdown.trigger();
        // The old process has ended before the new one opens the database, as with a real
        // restart: on SQLite its last writes could otherwise hold the lock the new one's
        // connection setup needs ("database is locked").
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .expect("the old authz stops within 30 s")
                .expect("the old authz task");
        }
        let shutdown = Shutdown::new();
        let app = Application::build_with_clock(
            self.config.clone(),
            shutdown.clone(),
            Arc::new(self.clock.clone()),
        )
        .await
        .unwrap();
        self.addrs = app.addresses();
        self.task = Some(tokio::spawn(async move {
            let _ = app.run().await;
        }));
        self.shutdown = shutdown;
    }

    /// A LoginFlow client authenticated as `id:secret` (`None`: no credentials).
    pub async fn login_flow(&self) -> LoginFlowClient<tonic::transport::Channel> {
        let channel =
            tonic::transport::Endpoint::from_shared(format!("http://{}", self.addrs.grpc.unwrap()))
                .unwrap()
                .connect()
                .await
                .unwrap();
        LoginFlowClient::new(channel)
    }

    /// A request carrying idp's credentials.
    pub fn as_idp<T>(&self, message: T) -> tonic::Request<T> {
        as_client(message, Some(("idp", SECRET)))
    }

    /// `GetLoginRequest` as idp.
    pub async fn get_login(
        &self,
        challenge: &str,
    ) -> Result<proto::authz::v1::LoginRequest, tonic::Status> {
        self.login_flow()
            .await
            .get_login_request(self.as_idp(GetLoginRequestRequest {
                login_challenge: challenge.to_owned(),
            }))
            .await
            .map(tonic::Response::into_inner)
    }

    /// `AcceptLogin` as idp for `subject` with idp session `session_id`, authenticated at
    /// `auth_time`; returns `redirect_to`.
    pub async fn accept_login(
        &self,
        challenge: &str,
        subject: &str,
        session_id: &str,
        auth_time: i64,
    ) -> Result<String, tonic::Status> {
        self.idp.session(session_id, subject);
        self.login_flow()
            .await
            .accept_login(self.as_idp(AcceptLoginRequest {
                login_challenge: challenge.to_owned(),
                subject: subject.to_owned(),
                session_id: session_id.to_owned(),
                auth_time,
                amr: vec!["pwd".into()],
                acr: String::new(),
            }))
            .await
            .map(|r| r.into_inner().redirect_to)
    }

    /// `GetConsentRequest` as idp.
    pub async fn get_consent(
        &self,
        challenge: &str,
    ) -> Result<proto::authz::v1::ConsentRequest, tonic::Status> {
        self.login_flow()
            .await
            .get_consent_request(self.as_idp(GetConsentRequestRequest {
                consent_challenge: challenge.to_owned(),
            }))
            .await
            .map(tonic::Response::into_inner)
    }

    /// `AcceptConsent` as idp; returns `redirect_to`.
    pub async fn accept_consent(
        &self,
        challenge: &str,
        scopes: &[&str],
        remember: bool,
    ) -> Result<String, tonic::Status> {
        self.login_flow()
            .await
            .accept_consent(self.as_idp(AcceptConsentRequest {
                consent_challenge: challenge.to_owned(),
                granted_scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
                remember,
            }))
            .await
            .map(|r| r.into_inner().redirect_to)
    }

    /// POST /token with Basic credentials (`None`: none).
    pub async fn token(
        &self,
        auth: Option<(&str, &str)>,
        form: &[(&str, &str)],
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut req = self
            .http
            .post(format!("http://{}/token", self.addrs.http))
            .form(form);
        if let Some((id, secret)) = auth {
            req = req.header("authorization", basic(id, secret));
        }
        let res = req.send().await.unwrap();
        let (status, headers) = (res.status(), res.headers().clone());
        let body = res.json().await.unwrap_or(Value::Null);
        (status, headers, body)
    }

    /// Redeems a code of `web` (or another confidential client).
    pub async fn redeem(
        &self,
        client_id: &str,
        code: &str,
        verifier: &str,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        self.token(
            Some((client_id, SECRET)),
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", WEB_CB),
                ("code_verifier", verifier),
            ],
        )
        .await
    }

    /// Refreshes with a refresh token of `client_id`.
    pub async fn refresh(
        &self,
        client_id: &str,
        token: &str,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        self.token(
            Some((client_id, SECRET)),
            &[("grant_type", "refresh_token"), ("refresh_token", token)],
        )
        .await
    }

    /// Whether introspection says the access token is active.
    pub async fn active(&self, token: &str) -> bool {
        let res = self
            .http
            .post(format!("http://{}/introspect", self.addrs.http))
            .header("authorization", basic("rs", SECRET))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        res.json::<Value>().await.unwrap()["active"] == true
    }

    /// GET /userinfo with a Bearer token.
    pub async fn userinfo(&self, token: &str) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let res = self
            .http
            .get(format!("http://{}/userinfo", self.addrs.http))
            .header("authorization", format!("Bearer {token}"))
            .send()
            .await
            .unwrap();
        let (status, headers) = (res.status(), res.headers().clone());
        (status, headers, res.json().await.unwrap_or(Value::Null))
    }

    /// The verifiers of the published keys.
    pub async fn verifiers(&self) -> issuer::jws::Verifiers {
        let jwks: Value = self
            .http
            .get(format!("http://{}/.well-known/jwks.json", self.addrs.http))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut keys = issuer::jws::Verifiers::new();
        keys.extend_from_jwks(&jwks);
        keys
    }

    /// The now of the server's clock.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// The whole interactive flow for `client_id` in `browser`: authorize, log in as
    /// `subject` (idp session `session`), consent to everything when asked; returns the
    /// code and the PKCE verifier.
    pub async fn sign_in(
        &self,
        browser: &mut Browser,
        client_id: &str,
        scope: &str,
        subject: &str,
        session: &str,
    ) -> (String, String) {
        let (verifier, challenge) = pkce();
        let seen = browser
            .authorize(&code_request(client_id, WEB_CB, scope, &challenge, &[]))
            .await;
        let mut seen = match seen.location() {
            Some(l) if l.starts_with(&format!("{IDP_URL}/login?")) => {
                let challenge = seen.params()["login_challenge"].clone();
                let back = self
                    .accept_login(&challenge, subject, session, self.now())
                    .await
                    .unwrap();
                browser.get(&back).await
            }
            _ => seen,
        };
        if let Some(l) = seen.location()
            && l.starts_with(&format!("{IDP_URL}/consent?"))
        {
            let challenge = seen.params()["consent_challenge"].clone();
            let scopes: Vec<&str> = scope.split(' ').collect();
            let back = self
                .accept_consent(&challenge, &scopes, true)
                .await
                .unwrap();
            seen = browser.get(&back).await;
        }
        let params = seen.redirected_to(WEB_CB);
        assert_eq!(params.get("iss").map(String::as_str), Some(ISSUER));
        (params["code"].clone(), verifier)
    }
}

/// A request with Basic credentials in metadata (`None`: none).
pub fn as_client<T>(message: T, auth: Option<(&str, &str)>) -> tonic::Request<T> {
    let mut req = tonic::Request::new(message);
    if let Some((id, secret)) = auth {
        req.metadata_mut()
            .insert("authorization", basic(id, secret).parse().unwrap());
    }
    req
}

/// The claims of a JWT, verified against `keys` with `typ`.
pub fn verify(
    keys: &issuer::jws::Verifiers,
    token: &str,
    typ: &str,
) -> serde_json::Map<String, Value> {
    issuer::jws::verify(
        token,
        keys,
        &issuer::jws::Expect {
            algorithms: &issuer::Algorithm::ALL,
            typ: Some(typ),
        },
    )
    .unwrap()
    .claims
}
