//! Login throttling cannot lock the owner out (issue 14, OWASP ASVS V2.2.1), against the real
//! authz and idp: an attacker at 127.0.0.1 guesses `demo`'s password under both of its
//! names until the account is throttled and keeps trying; the owner, at 127.0.0.2 in a
//! browser that signed in before (its device cookie), still signs in; a fresh browser at
//! the attacker's address stays refused. And two idp processes on one PostgreSQL database
//! enforce one limit: failures split across both add up.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use demo::browser::{Browser, Page};
use reqwest::{StatusCode, Url};
use storage::testing::TestDatabase;

use crate::code_flow::{cli, migrate, pairs, random, sha256_b64, write};
use crate::harness::{Service, TEST_KEK, free_port};

const USERNAME: &str = idp::demo_seed::USERNAME;
const EMAIL: &str = idp::demo_seed::EMAIL;
const PASSWORD: &str = idp::demo_seed::PASSWORD;

/// The attacker's address and the owner's.
const ATTACKER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
const OWNER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// authz (with its demo clients) and one or more idp processes (with the demo user), all
/// on free ports; idp's login throttle: 3 free failures per account, 60 s first back-off.
struct System {
    authz: Service,
    idps: Vec<Service>,
    issuer: String,
}

impl System {
    async fn start(dir: &Path, replicas: usize, idp_database: Option<&str>) -> Self {
        let (authz_http, authz_grpc) = (free_port(), free_port());
        let idp_ports: Vec<(u16, u16)> =
            (0..replicas).map(|_| (free_port(), free_port())).collect();
        let issuer = format!("http://localhost:{authz_http}");
        let idp_secret = write(dir, "idp-secret", "idp-calls-authz-loginflow-0123456789");
        let authz_secret = write(dir, "authz-secret", "authz-calls-idp-sessions-0123456789");
        let mut authz_env = pairs(&[
            ("AUTHZ__KEYS__ALGORITHMS", "[ES256]"),
            ("AUTHZ__KEYS__DEFAULT_ALG", "ES256"),
            (
                "AUTHZ__DATABASE__URL",
                &format!("sqlite://{}/authz.db", dir.display()),
            ),
            ("AUTHZ__KEYS__ENCRYPTION_KEY", TEST_KEK),
        ]);
        migrate("authz", &authz_env);
        cli(
            "authz",
            &authz_env,
            &[
                "clients",
                "create",
                "--id",
                "idp",
                "--name",
                "idp",
                "--secret-file",
                &idp_secret,
                "--json",
            ],
        );
        let (first_http, first_grpc) = idp_ports[0];
        authz_env.extend(pairs(&[
            ("AUTHZ__ISSUER", &issuer),
            ("AUTHZ__HTTP__PORT", &authz_http.to_string()),
            ("AUTHZ__GRPC__PORT", &authz_grpc.to_string()),
            ("AUTHZ__LOGIN__IDP_CLIENT_ID", "idp"),
            ("AUTHZ__AUTHORIZE__PENDING_REQUESTS_PER_ADDRESS", "1000"),
            (
                "AUTHZ__IDP__PUBLIC_URL",
                &format!("http://localhost:{first_http}"),
            ),
            (
                "AUTHZ__IDP__GRPC_URL",
                &format!("http://127.0.0.1:{first_grpc}"),
            ),
            ("AUTHZ__IDP__CLIENT_ID", "authz"),
            ("AUTHZ__IDP__CLIENT_SECRET_FILE", &authz_secret),
        ]));
        let authz =
            Service::start_with("authz", &["serve".into(), "--demo".into()], dir, &authz_env).await;
        let mut idps = Vec::new();
        for (n, (http, grpc)) in idp_ports.into_iter().enumerate() {
            let data = dir.join(format!("idp{n}"));
            std::fs::create_dir_all(&data).unwrap();
            let mut env = pairs(&[
                ("IDP__PUBLIC_URL", &format!("http://localhost:{http}")),
                ("IDP__HTTP__PORT", &http.to_string()),
                ("IDP__GRPC__PORT", &grpc.to_string()),
                (
                    "IDP__AUTHZ__GRPC_URL",
                    &format!("http://127.0.0.1:{authz_grpc}"),
                ),
                ("IDP__AUTHZ__CLIENT_ID", "idp"),
                ("IDP__AUTHZ__CLIENT_SECRET_FILE", &idp_secret),
                ("IDP__SESSIONS_API__CLIENT_ID", "authz"),
                ("IDP__SESSIONS_API__CLIENT_SECRET_FILE", &authz_secret),
                ("IDP__CSRF__KEY", &STANDARD.encode([7u8; 32])),
                ("IDP__PASSWORDS__MEMORY_KIB", "8192"),
                ("IDP__PASSWORDS__ITERATIONS", "1"),
                ("IDP__LOGIN_THROTTLE__ACCOUNT_FREE_FAILURES", "3"),
                ("IDP__LOGIN_THROTTLE__ADDRESS_FREE_FAILURES", "100"),
                ("IDP__LOGIN_THROTTLE__BASE_DELAY", "60s"),
            ]);
            if let Some(url) = idp_database {
                env.extend(pairs(&[("IDP__DATABASE__URL", url)]));
            }
            idps.push(
                Service::start_with("idp", &["serve".into(), "--demo".into()], &data, &env).await,
            );
        }
        Self {
            authz,
            idps,
            issuer,
        }
    }

    /// A browser whose connections come from `from`.
    fn browser(from: IpAddr) -> Browser {
        Browser::new(
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .local_address(from)
                .build()
                .unwrap(),
        )
    }

    /// Starts an authorization request of the demo SPA in `browser` and follows authz's
    /// redirect to the login form of idp number `idp`; `extra` goes into the request.
    async fn login_form(&self, browser: &mut Browser, idp: usize, extra: &[(&str, &str)]) -> Page {
        let verifier = random();
        let challenge = sha256_b64(verifier.as_bytes());
        let mut params = vec![
            ("response_type", "code"),
            ("client_id", authz::demo_seed::SPA_CLIENT_ID),
            ("redirect_uri", authz::demo_seed::SPA_REDIRECT_URI),
            ("scope", "openid"),
            ("state", "s"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ];
        params.extend_from_slice(extra);
        let authorize =
            Url::parse_with_params(&format!("{}/authorize", self.issuer), params).unwrap();
        let page = browser.get(&authorize).await.unwrap();
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{page:?}");
        let mut to = page.location.unwrap();
        assert_eq!(to.path(), "/login", "{to}");
        // authz sends every browser to the first replica; a load balancer might pick another.
        to.set_port(Some(self.idps[idp].addr("http").port()))
            .unwrap();
        let form = browser.get(&to).await.unwrap();
        assert_eq!(form.status, StatusCode::OK, "{form:?}");
        form
    }

    /// Submits the login form on `page` as `who` with `password`.
    async fn submit(browser: &mut Browser, page: &Page, who: &str, password: &str) -> Page {
        let form = page.form("/login").unwrap();
        browser
            .submit(
                &form,
                &[
                    ("username", who),
                    ("password", password),
                    ("action", "login"),
                ],
            )
            .await
            .unwrap()
    }

    /// One login from a fresh browser at `from` on idp number `idp`.
    async fn attempt(&self, from: IpAddr, idp: usize, who: &str, password: &str) -> StatusCode {
        let mut browser = Self::browser(from);
        let form = self.login_form(&mut browser, idp, &[]).await;
        Self::submit(&mut browser, &form, who, password)
            .await
            .status
    }

    /// A counter of idp number `idp`'s `/metrics` (0 when absent).
    async fn metric(&self, idp: usize, series: &str) -> f64 {
        let text = reqwest::get(format!("{}/metrics", self.idps[idp].url("admin")))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .map_or(0.0, |v| v.trim().parse().unwrap())
    }

    fn resumed(&self, page: &Page) -> bool {
        page.status == StatusCode::SEE_OTHER
            && page.location.as_ref().is_some_and(|l| {
                l.as_str()
                    .starts_with(&format!("{}/authorize/resume", self.issuer))
            })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_signs_in_while_an_attacker_is_throttled() {
    let data = tempfile::tempdir().unwrap();
    let system = System::start(data.path(), 1, None).await;

    // Earlier, the owner signed in from 127.0.0.2: the browser keeps a device cookie.
    let mut owner = System::browser(OWNER);
    let form = system.login_form(&mut owner, 0, &[]).await;
    let done = System::submit(&mut owner, &form, USERNAME, PASSWORD).await;
    assert!(system.resumed(&done), "{done:?}");
    assert!(owner.has("idp_device"), "a device cookie");

    // The attacker guesses from 127.0.0.1, as `demo` and as `demo@example.com`, in one
    // browser on one login form: three free failures, the fourth starts the back-off.
    let mut attacker = System::browser(ATTACKER);
    let mut page = system.login_form(&mut attacker, 0, &[]).await;
    for (n, who) in [USERNAME, EMAIL, USERNAME, EMAIL, USERNAME, EMAIL]
        .into_iter()
        .enumerate()
    {
        page = System::submit(&mut attacker, &page, who, "guess").await;
        let expected = if n < 4 {
            StatusCode::OK
        } else {
            StatusCode::TOO_MANY_REQUESTS
        };
        assert_eq!(page.status, expected, "guess {n} as {who}");
    }
    assert!(
        page.body.contains("Too many failed attempts"),
        "{}",
        page.body
    );
    // Even the right password is refused to the attacker now, under either name.
    for who in [USERNAME, EMAIL] {
        page = System::submit(&mut attacker, &page, who, PASSWORD).await;
        assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS, "{who}");
    }

    // The owner, in the browser that signed in before, from its own address: signed in.
    // (prompt=login: the old session would otherwise be reused without the form.)
    let form = system
        .login_form(&mut owner, 0, &[("prompt", "login")])
        .await;
    let done = System::submit(&mut owner, &form, USERNAME, PASSWORD).await;
    assert!(system.resumed(&done), "the owner is locked out: {done:?}");

    // A fresh browser at the attacker's address: still refused, the owner's login lifted
    // nothing; and every refused attempt was counted.
    assert_eq!(
        system.attempt(ATTACKER, 0, USERNAME, PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        system
            .metric(0, r#"idp_login_throttled_total{scope="account"}"#)
            .await,
        5.0,
        "two guesses, two right passwords and the fresh browser, all refused"
    );
    drop(system.authz);
}

/// Two idp processes on one PostgreSQL database: failures split across both add up to one
/// limit, and the block holds on both.
mod failures_on_two_replicas_add_up {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        let Some(db) = TestDatabase::postgres(&idp::MIGRATIONS).await.unwrap() else {
            eprintln!(
                "skipped: {} is not set",
                storage::testing::TEST_POSTGRES_URL
            );
            return;
        };
        let data = tempfile::tempdir().unwrap();
        let system = System::start(data.path(), 2, Some(db.config().url.expose())).await;
        // Four failures, two on each replica: each alone would still allow its own four.
        for n in 0..4 {
            assert_eq!(
                system.attempt(ATTACKER, n % 2, USERNAME, "guess").await,
                StatusCode::OK,
                "guess {n}"
            );
        }
        for idp in [0, 1] {
            assert_eq!(
                system.attempt(ATTACKER, idp, USERNAME, PASSWORD).await,
                StatusCode::TOO_MANY_REQUESTS,
                "replica {idp} enforces the shared limit"
            );
        }
        let refused = system
            .metric(0, r#"idp_login_throttled_total{scope="account"}"#)
            .await
            + system
                .metric(1, r#"idp_login_throttled_total{scope="account"}"#)
                .await;
        assert_eq!(refused, 2.0);
        drop(system.idps);
    }
}
