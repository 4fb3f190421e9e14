//! Database trouble against the real binaries (issue 14: "Database trouble answers 500 and
//! readiness stays green"): a SQLite file locked past the busy timeout, a full disk, a
//! PostgreSQL server that goes away and a held PostgreSQL table lock. Every write answers
//! 503 with `Retry-After` (`temporarily_unavailable` for OAuth), `/readyz` turns 503 while
//! writes fail, and everything recovers without a restart, keeping what was acknowledged.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use demo::browser;
use reqwest::{StatusCode, Url};
use serde_json::Value;
use storage::diesel::Connection;
use storage::diesel::connection::SimpleConnection;
use storage::diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use tokio::net::{TcpListener, TcpStream};

use crate::code_flow::{authz_keys, cli, migrate, pairs, random, sha256_b64, write};
use crate::harness::{Service, TEST_KEK, free_port};

const REDIRECT_URI: &str = "http://127.0.0.1/cb";
const SCOPE: &str = "openid offline_access";
const USERNAME: &str = "alice";
const PASSWORD: &str = "correct horse battery staple";
/// How long a failure or a recovery may take to show on `/readyz`.
const READINESS_WITHIN: Duration = Duration::from_secs(10);

/// Short waits everywhere, so a fault shows within a second and the tests stay fast.
fn fast_database(prefix: &str) -> Vec<(String, String)> {
    pairs(&[
        (&format!("{prefix}__DATABASE__SQLITE_BUSY_TIMEOUT"), "200ms"),
        (
            &format!("{prefix}__DATABASE__WRITE_CHECK_INTERVAL"),
            "300ms",
        ),
        (&format!("{prefix}__DATABASE__CONNECT_TIMEOUT"), "1s"),
        (&format!("{prefix}__DATABASE__ACQUIRE_TIMEOUT"), "1s"),
    ])
}

/// Clients registered at authz: machine-to-machine (opaque tokens, so issuing one writes),
/// an introspector, and (with idp) idp's LoginFlow caller and a relying party.
struct Clients {
    m2m: String,
    introspector: String,
    rp: String,
}

fn register(authz_env: &[(String, String)], dir: &Path) -> (Clients, String) {
    migrate("authz", authz_env);
    let idp_secret = write(dir, "idp-secret", "idp-calls-authz-loginflow-0123456789");
    let create = |args: &[&str]| -> String {
        let mut all = vec!["clients", "create"];
        all.extend_from_slice(args);
        all.push("--json");
        cli("authz", authz_env, &all)["client_secret"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    create(&["--id", "idp", "--name", "idp", "--secret-file", &idp_secret]);
    let m2m = create(&[
        "--id",
        "m2m",
        "--name",
        "m2m",
        "--scope",
        "items:read",
        "--token-format",
        "opaque",
    ]);
    let introspector = create(&[
        "--id",
        "introspector",
        "--name",
        "introspector",
        "--introspect",
        "true",
    ]);
    let rp = create(&[
        "--id",
        "rp",
        "--name",
        "RP",
        "--grant-type",
        "authorization_code",
        "--grant-type",
        "refresh_token",
        "--scope",
        SCOPE,
        "--redirect-uri",
        REDIRECT_URI,
        "--first-party",
        "true",
    ]);
    (
        Clients {
            m2m,
            introspector,
            rp,
        },
        idp_secret,
    )
}

/// What a test talks to.
struct Authz {
    service: Service,
    http: reqwest::Client,
    clients: Clients,
}

impl Authz {
    async fn token(&self, client: (&str, &str), form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(format!("{}/token", self.service.url("http")))
            .basic_auth(client.0, Some(client.1))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    async fn client_credentials(&self) -> reqwest::Response {
        self.token(
            ("m2m", &self.clients.m2m),
            &[("grant_type", "client_credentials")],
        )
        .await
    }

    async fn refresh(&self, refresh_token: &str) -> reqwest::Response {
        self.token(
            ("rp", &self.clients.rp),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
        )
        .await
    }

    async fn revoke(&self, token: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/revoke", self.service.url("http")))
            .basic_auth("m2m", Some(&self.clients.m2m))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap()
    }

    async fn active(&self, token: &str) -> bool {
        let res: Value = self
            .http
            .post(format!("{}/introspect", self.service.url("http")))
            .basic_auth("introspector", Some(&self.clients.introspector))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        res["active"].as_bool().unwrap()
    }
}

/// A client whose every request ends within 15s: a request stuck behind a lock fails the
/// test instead of hanging it.
fn bounded_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap()
}

/// A 503 as RFC 6749 §5.2 and RFC 9110 §10.2.3 want it: `temporarily_unavailable`,
/// `Retry-After`, never cached, no cause.
async fn assert_temporarily_unavailable(res: reqwest::Response, what: &str) {
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE, "{what}");
    assert_eq!(res.headers()["retry-after"], "1", "{what}");
    assert_eq!(res.headers()["cache-control"], "no-store", "{what}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable", "{what}: {body}");
    let text = body.to_string();
    assert!(
        !text.contains("locked") && !text.contains("full") && !text.contains("connection"),
        "{what}: the cause is not sent: {text}"
    );
}

async fn access_token(res: reqwest::Response) -> String {
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// Polls `/readyz` until it answers `want`, within [`READINESS_WITHIN`]; returns the body.
async fn readiness(service: &Service, want: StatusCode) -> Value {
    let http = bounded_client();
    let url = format!("{}/readyz", service.url("admin"));
    let deadline = Instant::now() + READINESS_WITHIN;
    loop {
        if let Ok(res) = http.get(&url).send().await
            && res.status() == want
        {
            return res.json().await.unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "/readyz did not answer {want} in time; log:\n{}",
            service.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Holds SQLite's write lock on a database file the way another process would.
fn lock_sqlite(path: &Path) -> storage::diesel::SqliteConnection {
    let mut conn = storage::diesel::SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    conn.batch_execute("BEGIN EXCLUSIVE").unwrap();
    conn
}

/// The browser part of a sign-in up to idp's filled-in login form (not yet posted).
struct LoginForm {
    browser: browser::Browser,
    form: browser::Form,
    verifier: String,
}

async fn open_login(issuer: &str) -> LoginForm {
    let verifier = random();
    let url = Url::parse_with_params(
        &format!("{issuer}/authorize"),
        [
            ("response_type", "code"),
            ("client_id", "rp"),
            ("redirect_uri", REDIRECT_URI),
            ("scope", SCOPE),
            ("state", &random()),
            ("nonce", &random()),
            ("code_challenge", &sha256_b64(verifier.as_bytes())),
            ("code_challenge_method", "S256"),
        ],
    )
    .unwrap();
    let mut browser = browser::Browser::new(
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    );
    let mut page = browser.get(&url).await.unwrap();
    while page.status.is_redirection() {
        let to = page.location.clone().unwrap();
        page = browser.get(&to).await.unwrap();
    }
    assert_eq!(page.status, StatusCode::OK, "{page:?}");
    let form = browser::forms(&page.url, &page.body)
        .unwrap()
        .into_iter()
        .next()
        .unwrap();
    LoginForm {
        browser,
        form,
        verifier,
    }
}

impl LoginForm {
    async fn post(&mut self) -> browser::Page {
        self.browser
            .submit(
                &self.form,
                &[
                    ("username", USERNAME),
                    ("password", PASSWORD),
                    ("action", "login"),
                ],
            )
            .await
            .unwrap()
    }

    /// Posts the form and follows the flow to the code, then redeems it.
    async fn finish(mut self, authz: &Authz) -> Value {
        let res = self.post().await;
        let (to, _) = self
            .browser
            .through_login(res, REDIRECT_URI, USERNAME, PASSWORD)
            .await
            .unwrap();
        let code = to
            .query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_else(|| panic!("no code in {to}"));
        let res = authz
            .token(
                ("rp", &authz.clients.rp),
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", REDIRECT_URI),
                    ("code_verifier", &self.verifier),
                ],
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        res.json().await.unwrap()
    }
}

/// SQLite locked past the busy timeout (another process holds `BEGIN EXCLUSIVE` on both
/// databases): client_credentials, revocation, refresh and the idp login answer 503 with
/// `Retry-After`, both `/readyz` turn 503; once the lock is gone everything works again and
/// what was acknowledged before is intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_locked_past_the_busy_timeout() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    let (authz_http, authz_grpc, idp_http, idp_grpc) =
        (free_port(), free_port(), free_port(), free_port());
    let issuer = format!("http://localhost:{authz_http}");
    let idp_url = format!("http://localhost:{idp_http}");
    let authz_db = dir.join("authz.db");
    let idp_db = dir.join("idp.db");

    let mut authz_env = authz_keys();
    authz_env.extend(pairs(&[
        (
            "AUTHZ__DATABASE__URL",
            &format!("sqlite://{}", authz_db.display()),
        ),
        ("AUTHZ__KEYS__ENCRYPTION_KEY", TEST_KEK),
    ]));
    let (clients, idp_secret) = register(&authz_env, dir);
    let authz_secret = write(dir, "authz-secret", "authz-calls-idp-sessions-0123456789");
    let password = write(dir, "password", PASSWORD);
    let idp_db_env = pairs(&[(
        "IDP__DATABASE__URL",
        &format!("sqlite://{}", idp_db.display()),
    )]);
    migrate("idp", &idp_db_env);
    cli(
        "idp",
        &idp_db_env,
        &[
            "users",
            "create",
            "--username",
            USERNAME,
            "--email",
            "alice@example.test",
            "--password-file",
            &password,
            "--json",
        ],
    );

    authz_env.extend(fast_database("AUTHZ"));
    authz_env.extend(pairs(&[
        ("AUTHZ__ISSUER", &issuer),
        ("AUTHZ__HTTP__PORT", &authz_http.to_string()),
        ("AUTHZ__GRPC__PORT", &authz_grpc.to_string()),
        ("AUTHZ__LOGIN__IDP_CLIENT_ID", "idp"),
        ("AUTHZ__IDP__PUBLIC_URL", &idp_url),
        (
            "AUTHZ__IDP__GRPC_URL",
            &format!("http://127.0.0.1:{idp_grpc}"),
        ),
        ("AUTHZ__IDP__CLIENT_ID", "authz"),
        ("AUTHZ__IDP__CLIENT_SECRET_FILE", &authz_secret),
    ]));
    let service = Service::start("authz", dir, &authz_env).await;
    let mut idp_env = idp_db_env.clone();
    idp_env.extend(fast_database("IDP"));
    idp_env.extend(pairs(&[
        ("IDP__PUBLIC_URL", &idp_url),
        ("IDP__HTTP__PORT", &idp_http.to_string()),
        ("IDP__GRPC__PORT", &idp_grpc.to_string()),
        (
            "IDP__AUTHZ__GRPC_URL",
            &format!("http://127.0.0.1:{authz_grpc}"),
        ),
        ("IDP__AUTHZ__CLIENT_ID", "idp"),
        ("IDP__AUTHZ__CLIENT_SECRET_FILE", &idp_secret),
        ("IDP__SESSIONS_API__CLIENT_ID", "authz"),
        ("IDP__SESSIONS_API__CLIENT_SECRET_FILE", &authz_secret),
        ("IDP__CSRF__KEY", &STANDARD.encode([7u8; 32])),
    ]));
    let idp = Service::start("idp", dir, &idp_env).await;
    let authz = Authz {
        service,
        http: bounded_client(),
        clients,
    };

    // Acknowledged before the lock: an opaque token and a signed-in user's refresh token.
    let kept = access_token(authz.client_credentials().await).await;
    let tokens = open_login(&issuer).await.finish(&authz).await;
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let mut login = open_login(&issuer).await;

    let authz_lock = lock_sqlite(&authz_db);
    let idp_lock = lock_sqlite(&idp_db);
    let started = Instant::now();
    assert_temporarily_unavailable(authz.client_credentials().await, "client_credentials").await;
    assert_temporarily_unavailable(authz.revoke(&kept).await, "revocation").await;
    assert_temporarily_unavailable(authz.refresh(&refresh).await, "refresh").await;
    let page = login.post().await;
    assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE, "{page:?}");
    assert!(
        page.body.contains("temporarily unavailable"),
        "{}",
        page.body
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "each request waits at most the busy timeout, not minutes: {:?}",
        started.elapsed()
    );
    for service in [&authz.service, &idp] {
        let body = readiness(service, StatusCode::SERVICE_UNAVAILABLE).await;
        assert_eq!(
            body["reason"], "database writes failing: locked or timed out",
            "{body}"
        );
    }

    drop(authz_lock);
    drop(idp_lock);
    readiness(&authz.service, StatusCode::OK).await;
    readiness(&idp, StatusCode::OK).await;
    // Nothing acknowledged was lost, and nothing refused half-happened: the token the
    // refused revocation named is still active, the refused refresh left its token usable.
    assert!(authz.active(&kept).await, "acknowledged token lost");
    access_token(authz.client_credentials().await).await;
    let res = authz.refresh(&refresh).await;
    assert_eq!(res.status(), StatusCode::OK, "refresh after recovery");
    let page = login.post().await;
    assert!(
        page.status.is_redirection(),
        "login after recovery: {page:?}"
    );
    let res = authz.revoke(&kept).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(!authz.active(&kept).await);
}

/// The disk holding authz's SQLite database fills up: token requests answer 503, `/readyz`
/// 503 ("disk full"); once space is freed both recover, and the tokens issued before are
/// still active.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_disk_full() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    let small = tempfile::tempdir().unwrap();
    let _mount = Tmpfs::mount(small.path(), "4m");
    let db = small.path().join("authz.db");
    let mut authz_env = authz_keys();
    authz_env.extend(pairs(&[
        (
            "AUTHZ__DATABASE__URL",
            &format!("sqlite://{}", db.display()),
        ),
        ("AUTHZ__KEYS__ENCRYPTION_KEY", TEST_KEK),
    ]));
    let (clients, _) = register(&authz_env, dir);
    authz_env.extend(fast_database("AUTHZ"));
    let authz = Authz {
        service: Service::start("authz", dir, &authz_env).await,
        http: bounded_client(),
        clients,
    };
    let kept = access_token(authz.client_credentials().await).await;

    let filler = small.path().join("filler");
    fill(&filler);
    // A few writes may still fit into pages the files already own; then every write fails.
    let mut refused = 0;
    for _ in 0..50 {
        let res = authz.client_credentials().await;
        match res.status() {
            StatusCode::OK => {}
            _ => {
                assert_temporarily_unavailable(res, "token on a full disk").await;
                refused += 1;
                if refused == 3 {
                    break;
                }
            }
        }
    }
    assert_eq!(refused, 3, "writes on a full disk must fail with 503");
    let body = readiness(&authz.service, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(
        body["reason"], "database writes failing: disk full",
        "{body}"
    );

    std::fs::remove_file(&filler).unwrap();
    readiness(&authz.service, StatusCode::OK).await;
    let fresh = access_token(authz.client_credentials().await).await;
    assert!(authz.active(&kept).await, "acknowledged token lost");
    assert!(authz.active(&fresh).await);
}

/// A tmpfs of `size` mounted on `at`, unmounted when dropped.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Self {
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "mounting a tmpfs needs root (CI and the dev container run as root)"
        );
        Self(at.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Writes `path` until the file system is full.
fn fill(path: &Path) {
    use std::io::Write;
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    loop {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(28) => break,
            Err(e) => panic!("filling the disk: {e}"),
        }
    }
    // Smaller pieces for the last partial chunk.
    while file.write(&[0u8; 512]).is_ok_and(|n| n > 0) {}
    let _ = file.sync_all();
}

/// A TCP proxy between authz and PostgreSQL that the test can cut (closing every open
/// connection and refusing new ones) and restore, like a server going away and back.
struct Proxy {
    addr: std::net::SocketAddr,
    open: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let open = Arc::new(AtomicBool::new(true));
        let links: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let accept = tokio::spawn({
            let (open, links) = (Arc::clone(&open), Arc::clone(&links));
            async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    if !open.load(Ordering::SeqCst) {
                        drop(inbound);
                        continue;
                    }
                    let upstream = upstream.clone();
                    let link = tokio::spawn(async move {
                        if let Ok(mut outbound) = TcpStream::connect(&upstream).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    links.lock().unwrap().push(link.abort_handle());
                }
            }
        });
        Self {
            addr,
            open,
            links,
            accept,
        }
    }

    fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// An authz database of its own on `TEST_POSTGRES_URL`'s server, or `None` (skipped).
async fn postgres_database() -> Option<storage::testing::TestDatabase> {
    storage::testing::TestDatabase::postgres(&authz::MIGRATIONS)
        .await
        .unwrap()
}

/// authz on PostgreSQL through [`Proxy`], with short timeouts.
async fn authz_through(proxy: &Proxy, db_url: &str, dir: &Path, extra: &[(&str, &str)]) -> Authz {
    let mut via = Url::parse(db_url).unwrap();
    via.set_host(Some("127.0.0.1")).unwrap();
    via.set_port(Some(proxy.addr.port())).unwrap();
    let mut authz_env = authz_keys();
    authz_env.extend(pairs(&[
        ("AUTHZ__DATABASE__URL", via.as_str()),
        ("AUTHZ__KEYS__ENCRYPTION_KEY", TEST_KEK),
    ]));
    let (clients, _) = register(&authz_env, dir);
    authz_env.extend(fast_database("AUTHZ"));
    authz_env.extend(pairs(extra));
    Authz {
        service: Service::start("authz", dir, &authz_env).await,
        http: bounded_client(),
        clients,
    }
}

fn upstream_of(db_url: &str) -> String {
    let url = Url::parse(db_url).unwrap();
    format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432))
}

mod postgres_gone {
    /// PostgreSQL goes away mid-load (every connection cut, new ones refused): requests
    /// answer 503 with `Retry-After`, never 500, `/readyz` turns 503; when it is back,
    /// readiness and tokens recover and the tokens issued before are still active.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::postgres_gone().await;
    }
}

async fn postgres_gone() {
    let Some(db) = postgres_database().await else {
        eprintln!(
            "skipped: {} is not set",
            storage::testing::TEST_POSTGRES_URL
        );
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let db_url = db.config().url.expose().clone();
    let proxy = Proxy::start(upstream_of(&db_url)).await;
    let authz = Arc::new(authz_through(&proxy, &db_url, data.path(), &[]).await);
    let kept = access_token(authz.client_credentials().await).await;

    // Load while the server goes away: each answer is 200 (before) or 503 (after).
    let load: Vec<_> = (0..4)
        .map(|_| {
            let authz = Arc::clone(&authz);
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                for _ in 0..15 {
                    let res = authz.client_credentials().await;
                    let status = res.status();
                    if status == StatusCode::SERVICE_UNAVAILABLE {
                        assert_eq!(res.headers()["retry-after"], "1");
                    }
                    statuses.push(status);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                statuses
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    proxy.cut();
    let mut statuses = Vec::new();
    for task in load {
        statuses.extend(task.await.unwrap());
    }
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::SERVICE_UNAVAILABLE),
        "only 200 or 503 while the database goes away: {statuses:?}"
    );
    assert_temporarily_unavailable(authz.client_credentials().await, "server gone").await;
    let body = readiness(&authz.service, StatusCode::SERVICE_UNAVAILABLE).await;
    assert!(
        body["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("database")),
        "{body}"
    );

    proxy.restore();
    readiness(&authz.service, StatusCode::OK).await;
    let deadline = Instant::now() + READINESS_WITHIN;
    loop {
        let res = authz.client_credentials().await;
        if res.status() == StatusCode::OK {
            break;
        }
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(Instant::now() < deadline, "tokens did not recover");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(authz.active(&kept).await, "acknowledged token lost");
}

mod postgres_lock {
    /// A table lock held elsewhere: with `database.lock_timeout` at 300ms token requests
    /// fail fast with 503 instead of waiting for the lock.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::postgres_lock().await;
    }
}

async fn postgres_lock() {
    let Some(db) = postgres_database().await else {
        eprintln!(
            "skipped: {} is not set",
            storage::testing::TEST_POSTGRES_URL
        );
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let db_url = db.config().url.expose().clone();
    let proxy = Proxy::start(upstream_of(&db_url)).await;
    let authz = authz_through(
        &proxy,
        &db_url,
        data.path(),
        &[("AUTHZ__DATABASE__LOCK_TIMEOUT", "300ms")],
    )
    .await;
    let kept = access_token(authz.client_credentials().await).await;

    let mut holder = AsyncPgConnection::establish(&db_url).await.unwrap();
    holder
        .batch_execute("BEGIN; LOCK TABLE opaque_tokens IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    for _ in 0..3 {
        let started = Instant::now();
        let res = authz.client_credentials().await;
        let took = started.elapsed();
        assert_temporarily_unavailable(res, "token while the table is locked").await;
        assert!(
            took < Duration::from_secs(3),
            "waited {took:?} for the lock"
        );
    }
    holder.batch_execute("ROLLBACK").await.unwrap();
    access_token(authz.client_credentials().await).await;
    assert!(authz.active(&kept).await);
}
