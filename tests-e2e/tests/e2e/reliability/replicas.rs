//! Replicas that agree (issue 14): two authz and two idp processes on one PostgreSQL
//! database, behind round-robin TCP load balancers (one per listener kind, so both authz
//! replicas present the same issuer and both idp replicas the same public URL), with the
//! browser's and the RP's requests alternating between the replicas: a login started on
//! one pair and finished on the other, refresh rotation and reuse detection across them,
//! a revocation seen by the other at once, and key rotation happening exactly once.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Url;
use serde_json::Value;
use storage::testing::TestDatabase;
use tokio::net::{TcpListener, TcpStream};

use super::wiring::{self, Registered, Request};
use crate::code_flow::{cli, pairs};
use crate::harness::Service;

/// A round-robin TCP load balancer on a loopback port: each new connection goes to the
/// next backend (none yet: the connection is closed).
struct Balancer {
    port: u16,
    backends: Arc<Mutex<Vec<SocketAddr>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Balancer {
    async fn bind() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let backends: Arc<Mutex<Vec<SocketAddr>>> = Arc::default();
        let list = Arc::clone(&backends);
        let next = AtomicUsize::new(0);
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let to = {
                    let list = list.lock().unwrap();
                    if list.is_empty() {
                        continue;
                    }
                    list[next.fetch_add(1, Ordering::Relaxed) % list.len()]
                };
                tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(to).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Self {
            port,
            backends,
            task,
        }
    }

    fn url(&self) -> String {
        format!("http://localhost:{}", self.port)
    }

    fn grpc_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn send_to(&self, backends: Vec<SocketAddr>) {
        *self.backends.lock().unwrap() = backends;
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `url` with its authority replaced by `localhost:<port>` (the browser's cookies live on
/// `localhost`, whatever the port).
fn at(url: &Url, port: u16) -> Url {
    let mut url = url.clone();
    url.set_host(Some("localhost")).unwrap();
    url.set_port(Some(port)).unwrap();
    url
}

/// Two fresh PostgreSQL databases (authz's and idp's), or `None` without
/// `TEST_POSTGRES_URL`.
async fn databases() -> Option<(TestDatabase, TestDatabase)> {
    let authz = TestDatabase::postgres(&authz::MIGRATIONS).await.unwrap()?;
    let idp = TestDatabase::postgres(&idp::MIGRATIONS).await.unwrap()?;
    Some((authz, idp))
}

fn skipped() {
    eprintln!(
        "skipped: {} is not set",
        storage::testing::TEST_POSTGRES_URL
    );
}

/// The kids a replica's JWKS (`base` is its own address) publishes, sorted.
async fn kids(http: &reqwest::Client, base: &str) -> Vec<String> {
    let body: Value = http
        .get(format!("{base}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut kids: Vec<String> = body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    kids.sort();
    kids
}

/// Login, refresh, reuse detection and revocation with every request alternating between
/// two authz and two idp replicas.
mod replicas_agree_on_logins_refresh_and_revocation {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        let Some((authz_db, idp_db)) = databases().await else {
            return skipped();
        };
        let data = tempfile::tempdir().unwrap();
        let reg: Registered = wiring::register(
            data.path(),
            authz_db.config().url.expose(),
            Some(idp_db.config().url.expose()),
        );
        let (authz_http, authz_grpc, idp_http, idp_grpc) = (
            Balancer::bind().await,
            Balancer::bind().await,
            Balancer::bind().await,
            Balancer::bind().await,
        );
        let issuer = authz_http.url();
        let authz_env = wiring::authz_env(
            &reg,
            authz_db.config().url.expose(),
            &issuer,
            &idp_http.url(),
            &idp_grpc.grpc_url(),
        );
        let idp_env = wiring::idp_env(
            &reg,
            idp_db.config().url.expose(),
            &idp_http.url(),
            &authz_grpc.grpc_url(),
        );
        let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
        let a = [
            Service::start("authz", dirs[0].path(), &authz_env).await,
            Service::start("authz", dirs[1].path(), &authz_env).await,
        ];
        authz_http.send_to(a.iter().map(|s| s.addr("http")).collect());
        authz_grpc.send_to(a.iter().map(|s| s.addr("grpc")).collect());
        let i = [
            Service::start("idp", dirs[2].path(), &idp_env).await,
            Service::start("idp", dirs[3].path(), &idp_env).await,
        ];
        idp_http.send_to(i.iter().map(|s| s.addr("http")).collect());
        idp_grpc.send_to(i.iter().map(|s| s.addr("grpc")).collect());
        let authz_ports = [a[0].addr("http").port(), a[1].addr("http").port()];
        let idp_ports = [i[0].addr("http").port(), i[1].addr("http").port()];
        let base = |n: usize| format!("http://localhost:{}", authz_ports[n]);
        let http = reqwest::Client::new();

        // Both replicas present the one issuer, and the balancer serves their discovery.
        for url in [base(0), base(1), issuer.clone()] {
            let doc: Value = http
                .get(format!("{url}/.well-known/openid-configuration"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(doc["issuer"], issuer.as_str(), "{url}");
        }

        // (a) A browser login alternating at every hop: authz#1 takes the authorization
        // request, idp#1 shows the login form, idp#2 checks the password, authz#2 resumes,
        // and so on; the code is redeemed at authz#2.
        let mut browser = wiring::browser();
        let visited = Arc::new(Mutex::new(Vec::<(String, &'static str, usize)>::new()));
        let mut turn = [0usize; 2];
        let route = |url: &Url| -> Url {
            // A form's action is resolved against the page, so it names a replica, not
            // the balancer: it is routed all the same.
            let port = url.port().unwrap_or_default();
            let (kind, ports, t) = if port == authz_http.port || authz_ports.contains(&port) {
                ("authz", authz_ports, &mut turn[0])
            } else if port == idp_http.port || idp_ports.contains(&port) {
                ("idp", idp_ports, &mut turn[1])
            } else {
                panic!("the browser left the balancers: {url}")
            };
            let n = *t % 2;
            *t += 1;
            visited
                .lock()
                .unwrap()
                .push((url.path().to_owned(), kind, n));
            at(url, ports[n])
        };
        let req = Request::new(&format!("{issuer}/authorize"), &[]);
        let to = wiring::sign_in(&mut browser, &req, route).await;
        let visited = visited.lock().unwrap().clone();
        // The login was started on authz#1 / idp#1 and finished on authz#2 / idp#2.
        assert_eq!(
            visited[0],
            ("/authorize".to_owned(), "authz", 0),
            "{visited:?}"
        );
        assert_eq!(visited[1], ("/login".to_owned(), "idp", 0), "{visited:?}");
        assert_eq!(visited[2], ("/login".to_owned(), "idp", 1), "{visited:?}");
        assert_eq!(visited[3].1, "authz", "{visited:?}");
        assert_eq!(visited[3].2, 1, "{visited:?}");
        assert!(
            browser.has("authz_session") && browser.has("idp_session"),
            "{visited:?}"
        );
        let code = req.code(&to);
        let token = |n: usize| format!("{}/token", base(n));
        let (status, first) = wiring::rp_post(
            &http,
            &token(1),
            &reg.rp_secret,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", wiring::REDIRECT_URI),
                ("code_verifier", &req.verifier),
            ],
        )
        .await;
        assert_eq!(status, 200, "{first}");
        // (b) Refresh rotation on #1 then #2; the rotated token presented at #1 again is a
        // replay: the family is revoked, as both replicas see.
        let refresh = |n: usize, rt: String| {
            let (http, url, secret) = (http.clone(), token(n), reg.rp_secret.clone());
            async move {
                wiring::rp_post(
                    &http,
                    &url,
                    &secret,
                    &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
                )
                .await
            }
        };
        let r0 = first["refresh_token"].as_str().unwrap().to_owned();
        let (status, second) = refresh(0, r0.clone()).await;
        assert_eq!(status, 200, "{second}");
        let r1 = second["refresh_token"].as_str().unwrap().to_owned();
        let (status, third) = refresh(1, r1.clone()).await;
        assert_eq!(status, 200, "{third}");
        let r2 = third["refresh_token"].as_str().unwrap().to_owned();
        let a2 = third["access_token"].as_str().unwrap().to_owned();
        for n in 0..2 {
            assert!(wiring::active(&http, &base(n), &reg, &a2).await);
        }
        let (status, reused) = refresh(0, r0).await;
        assert_eq!(status, 400, "{reused}");
        assert_eq!(reused["error"], "invalid_grant");
        for n in 0..2 {
            let (status, body) = refresh(n, r2.clone()).await;
            assert_eq!(status, 400, "replica {n}: the family is revoked: {body}");
            assert_eq!(body["error"], "invalid_grant");
            assert!(
                !wiring::active(&http, &base(n), &reg, &a2).await,
                "replica {n} still finds the revoked family's access token active"
            );
        }

        // (c) A new grant through SSO (the session cookies of both, remembered consent):
        // its access token revoked at #1 is inactive at #2 at once, and its refresh token
        // revoked at #2 is refused by #1.
        let req = Request::new(&format!("{issuer}/authorize"), &[("prompt", "none")]);
        let to = wiring::sign_in(&mut browser, &req, |u: &Url| {
            let port = u.port().unwrap_or_default();
            let authz = port == authz_http.port || authz_ports.contains(&port);
            at(u, if authz { authz_ports[1] } else { idp_ports[1] })
        })
        .await;
        let (status, fourth) = wiring::rp_post(
            &http,
            &token(0),
            &reg.rp_secret,
            &[
                ("grant_type", "authorization_code"),
                ("code", &req.code(&to)),
                ("redirect_uri", wiring::REDIRECT_URI),
                ("code_verifier", &req.verifier),
            ],
        )
        .await;
        assert_eq!(status, 200, "{fourth}");
        let access = fourth["access_token"].as_str().unwrap();
        assert!(wiring::active(&http, &base(1), &reg, access).await);
        let revoke = |n: usize, t: &str, hint: &str| {
            http.post(format!("{}/revoke", base(n)))
                .basic_auth("rp", Some(&reg.rp_secret))
                .form(&[("token", t), ("token_type_hint", hint)])
                .send()
        };
        assert_eq!(
            revoke(0, access, "access_token").await.unwrap().status(),
            200
        );
        assert!(
            !wiring::active(&http, &base(1), &reg, access).await,
            "revoked at #1, still active at #2"
        );
        let rt = fourth["refresh_token"].as_str().unwrap().to_owned();
        assert_eq!(revoke(1, &rt, "refresh_token").await.unwrap().status(), 200);
        let (status, body) = refresh(0, rt).await;
        assert_eq!(status, 400, "revoked at #2, refreshed at #1: {body}");
        assert_eq!(body["error"], "invalid_grant");
        drop((a, i));
    }
}

/// Two authz replicas started together, each checking the key schedule every 200 ms:
/// together they create exactly one first key and, when the schedule asks for it, exactly
/// one successor, which both publish.
mod replicas_rotate_keys_exactly_once {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        let Some(db) = TestDatabase::postgres(&authz::MIGRATIONS).await.unwrap() else {
            return skipped();
        };
        let url = db.config().url.expose();
        let lb = Balancer::bind().await;
        // A 10 s period whose successor is published 5 s ahead: one new key about 5 s
        // after the first, the next one only at 15 s.
        let mut env = wiring::authz_base(url);
        env.extend(pairs(&[
            ("AUTHZ__ISSUER", &lb.url()),
            ("AUTHZ__KEYS__ROTATION_PERIOD", "10s"),
            ("AUTHZ__KEYS__PUBLISH_AHEAD", "5s"),
            ("AUTHZ__KEYS__JWKS_MAX_AGE", "1s"),
            ("AUTHZ__KEYS__RETIRED_RETENTION", "60s"),
            ("AUTHZ__KEYS__CHECK_INTERVAL", "200ms"),
        ]));
        let (d0, d1) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        crate::harness::build_once();
        // Both start at once, so their first checks of the empty key table race.
        let (s0, s1) = tokio::join!(
            Service::start("authz", d0.path(), &env),
            Service::start("authz", d1.path(), &env),
        );
        lb.send_to(vec![s0.addr("http"), s1.addr("http")]);
        let http = reqwest::Client::new();
        let (b0, b1) = (s0.url("http"), s1.url("http"));

        // Wait (bounded) until both replicas publish the same keys, a successor among
        // them; then give both many check intervals in which a duplicate could appear.
        let agreed = || async {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let (k0, k1) = (kids(&http, &b0).await, kids(&http, &b1).await);
                if k0 == k1 && k0.len() >= 2 {
                    return k0;
                }
                assert!(
                    Instant::now() < deadline,
                    "no agreed successor key: {k0:?} / {k1:?}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        agreed().await;
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let published = agreed().await;
        assert_eq!(kids(&http, &lb.url()).await.len(), published.len());

        // What is stored: exactly one key per generation, none skipped (a replica creating
        // a key the other already created would store a second of the same generation),
        // each activating one period after the previous; every one is published by both
        // (retired keys stay published for a minute), except generations created since.
        let listed = cli("authz", &env, &["keys", "list", "--json"]);
        let mut stored: Vec<(i64, i64, String)> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|k| {
                (
                    k["generation"].as_i64().unwrap(),
                    k["activates_at"].as_i64().unwrap(),
                    k["kid"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        stored.sort();
        let generations: Vec<i64> = stored.iter().map(|k| k.0).collect();
        assert_eq!(
            generations,
            (1..=stored.len() as i64).collect::<Vec<_>>(),
            "one key per generation: {listed}"
        );
        assert!(
            stored.windows(2).all(|w| w[1].1 - w[0].1 == 10),
            "one period apart: {listed}"
        );
        let mut first: Vec<String> = stored[..published.len().min(stored.len())]
            .iter()
            .map(|k| k.2.clone())
            .collect();
        first.sort();
        assert_eq!(
            first, published,
            "both publish exactly the stored keys: {listed}"
        );
        drop((s0, s1));
    }
}
