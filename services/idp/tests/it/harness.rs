//! Boots the real idp in-process (port 0 everywhere) against a [`FakeAuthz`], with a clock
//! the test can move, and a cookie-keeping HTTP client that does not follow redirects.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use base64::Engine;
use idp::users::{NewUser, PasswordConfig, Passwords, Profile, User, Users};
use idp::{Application, Clock, IdpConfig};
use proto::idp::v1::sessions_client::SessionsClient;
use runtime::{GrpcListenConfig, ListenConfig, Shutdown};
use storage::testing::TestDatabase;
use tonic::transport::Channel;

use crate::fake_authz::{self, FakeAuthz};

pub const SESSIONS_API_SECRET: &str = "authz-calls-idp-secret";
pub const PASSWORD: &str = "correct horse battery";

/// Real time plus an offset the test moves forward.
#[derive(Default)]
pub struct TestClock {
    ahead_ms: AtomicU64,
}

impl TestClock {
    pub fn advance(&self, by: Duration) {
        self.ahead_ms
            .fetch_add(u64::try_from(by.as_millis()).unwrap(), Ordering::Relaxed);
    }
}

impl Clock for TestClock {
    fn now(&self) -> SystemTime {
        SystemTime::now() + Duration::from_millis(self.ahead_ms.load(Ordering::Relaxed))
    }
}

pub fn cheap_passwords() -> PasswordConfig {
    PasswordConfig {
        memory_kib: 8192,
        iterations: 1,
        parallelism: 1,
        min_length: 8,
        ..PasswordConfig::default()
    }
}

/// A running idp and what the test needs around it.
pub struct Idp {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    pub admin: String,
    pub grpc: String,
    pub authz: FakeAuthz,
    pub users: Users,
    /// A pool on the test's database (audit trail assertions).
    pub db: storage::Database,
    pub clock: Arc<TestClock>,
    shutdown: Shutdown,
    /// The test's database; `None` on a second replica ([`replica`]), which shares it.
    _db: Option<TestDatabase>,
}

impl Drop for Idp {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

/// The config the tests start from: everything on port 0, cheap argon2, credentials for
/// both directions.
pub fn config(database: &storage::DatabaseConfig, authz: std::net::SocketAddr) -> IdpConfig {
    let mut c = IdpConfig {
        http: ListenConfig::loopback(0),
        grpc: GrpcListenConfig::loopback(0),
        admin: ListenConfig::loopback(0),
        database: database.clone(),
        passwords: cheap_passwords(),
        ..IdpConfig::default()
    };
    c.authz.grpc_url = format!("http://{authz}");
    c.authz.client_id = fake_authz::CLIENT_ID.into();
    c.authz.client_secret = Some(config::Secret::new(fake_authz::CLIENT_SECRET.into()));
    c.sessions_api.client_secret = Some(config::Secret::new(SESSIONS_API_SECRET.into()));
    c.runtime.worker_threads = 2;
    // admin API (issue 18, idpadmin2): on only where a test gives it a token issuer.
    c.admin_api.enabled = false;
    c
}

pub async fn start(db: TestDatabase, tweak: impl FnOnce(&mut IdpConfig)) -> Idp {
    let mut idp = replica(db.config(), tweak).await;
    idp._db = Some(db);
    idp
}

/// Another idp process stand-in on the database `database` (which the caller keeps alive):
/// its own listeners, fake authz and clock, sharing everything stored, as replicas do.
pub async fn replica(
    database: &storage::DatabaseConfig,
    tweak: impl FnOnce(&mut IdpConfig),
) -> Idp {
    let (authz, authz_addr) = FakeAuthz::start().await;
    let mut cfg = config(database, authz_addr);
    tweak(&mut cfg);
    let clock = Arc::new(TestClock::default());
    let shutdown = Shutdown::new();
    let app = Application::build_with_clock(cfg.clone(), shutdown.clone(), clock.clone())
        .await
        .unwrap();
    let addrs = app.addresses();
    tokio::spawn(app.run());
    let pool = storage::Database::connect(database, &idp::MIGRATIONS)
        .await
        .unwrap();
    let users = Users::new(pool.clone(), Passwords::new(&cfg.passwords).unwrap());
    Idp {
        url: format!("http://{}", addrs.http),
        admin: format!("http://{}", addrs.admin),
        grpc: format!("http://{}", addrs.grpc.unwrap()),
        authz,
        users,
        db: pool,
        clock,
        shutdown,
        _db: None,
    }
}

impl Idp {
    /// Creates `username` with [`PASSWORD`] and a full profile.
    pub async fn user(&self, username: &str) -> User {
        self.users
            .create(
                NewUser {
                    username: username.into(),
                    profile: Profile {
                        email: Some(format!("{username}@example.com")),
                        email_verified: true,
                        name: Some(format!("{username} Example")),
                        given_name: Some(username.into()),
                        family_name: Some("Example".into()),
                        picture: Some(format!("https://img.example.com/{username}.png")),
                        locale: Some("en-GB".into()),
                    },
                },
                PASSWORD.into(),
            )
            .await
            .unwrap()
    }

    /// The Prometheus text of the admin port.
    pub async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.admin))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The value of the sample `series` (`name{labels}` exactly as exported), 0 when absent.
    ///
    /// The recorder is per process: under `cargo test` other tests of this binary add to
    /// the same series, so assertions use "at least".
    pub async fn metric(&self, series: &str) -> f64 {
        let text = self.metrics().await;
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .map_or(0.0, |v| v.trim().parse().unwrap())
    }

    /// A `Sessions` client (credentials go on each request).
    pub async fn sessions_api(&self) -> SessionsClient<Channel> {
        let channel = tonic::transport::Endpoint::from_shared(self.grpc.clone())
            .unwrap()
            .connect()
            .await
            .unwrap();
        SessionsClient::new(channel)
    }
}

/// `Basic` credentials metadata for a `Sessions` call: `id:secret` base64-encoded as given,
/// without the form-urlencoding of RFC 6749 §2.3.1, so tests can craft exact input.
pub fn with_credentials<T>(message: T, id: &str, secret: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    let value = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    );
    r.metadata_mut()
        .insert("authorization", value.parse().unwrap());
    r
}

/// authz's credentials.
pub fn authz<T>(message: T) -> tonic::Request<T> {
    with_credentials(message, "authz", SESSIONS_API_SECRET)
}

/// A response, read whole.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub set_cookies: Vec<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    /// The value of the hidden `name` input.
    pub fn hidden(&self, name: &str) -> String {
        let marker = format!(r#"name="{name}" value=""#);
        let start = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("no {name} in {}", self.body))
            + marker.len();
        let end = self.body[start..].find('"').unwrap() + start;
        self.body[start..end].to_owned()
    }

    pub fn set_cookie(&self, name: &str) -> Option<&str> {
        self.set_cookies
            .iter()
            .map(String::as_str)
            .find(|c| c.starts_with(&format!("{name}=")))
    }
}

/// A browser stand-in: keeps cookies, never follows redirects.
pub struct Browser {
    client: reqwest::Client,
    base: String,
    pub cookies: HashMap<String, String>,
}

impl Browser {
    pub fn new(idp: &Idp) -> Self {
        Self::from_address(idp, std::net::Ipv4Addr::LOCALHOST.into())
    }

    /// A browser whose connections come from `local` (any 127.0.0.0/8 address on Linux's
    /// loopback), so tests can play clients on different addresses and networks.
    pub fn from_address(idp: &Idp, local: std::net::IpAddr) -> Self {
        Self {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .local_address(local)
                .build()
                .unwrap(),
            base: idp.url.clone(),
            cookies: HashMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let request = if self.cookies.is_empty() {
            request
        } else {
            request.header("cookie", self.cookie_header())
        };
        let response = request.send().await.unwrap();
        let headers = response.headers().clone();
        let set_cookies: Vec<String> = headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        for c in &set_cookies {
            let (pair, attrs) = c.split_once(';').unwrap_or((c, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || attrs.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        Page {
            status: response.status().as_u16(),
            location: headers
                .get("location")
                .map(|v| v.to_str().unwrap().to_owned()),
            set_cookies,
            headers,
            body: response.text().await.unwrap(),
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let request = self.client.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let request = self.client.post(format!("{}{path}", self.base)).form(form);
        self.send(request).await
    }

    // account page
    /// POST a `multipart/form-data` body of `parts` (`name`, file name or none, bytes).
    pub async fn post_multipart(
        &mut self,
        path: &str,
        parts: &[(&str, Option<&str>, &[u8])],
    ) -> Page {
        let boundary = "----idp-test-boundary-7MA4YWxkTrZu0gW";
        let mut body = Vec::new();
        for (name, file, bytes) in parts {
            body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
            match file {
                Some(file) => body.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                    )
                    .as_bytes(),
                ),
                None => body.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
                ),
            }
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        let request = self
            .client
            .post(format!("{}{path}", self.base))
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body);
        self.send(request).await
    }

    /// GET the login form of `challenge`, then post `username`/`password` with its token.
    pub async fn login(&mut self, challenge: &str, username: &str, password: &str) -> Page {
        let form = self
            .get(&format!("/login?login_challenge={challenge}"))
            .await;
        assert_eq!(form.status, 200, "{}", form.body);
        let csrf = form.hidden("csrf");
        self.post(
            "/login",
            &[
                ("csrf", &csrf),
                ("login_challenge", challenge),
                ("username", username),
                ("password", password),
                ("action", "login"),
            ],
        )
        .await
    }
}
