//! Fuzz targets for idp's network-facing parsers (issue 14), property-based with proptest
//! against the in-process server: the login form body (`application/x-www-form-urlencoded`
//! with the CSRF token, challenge and credentials) and the protobuf messages of the
//! `idp.v1.Sessions` gRPC service as raw bytes.
//!
//! `FUZZ_CASES` sets the cases per target (default 96, so `make test` stays fast).
//! Whatever arrives: no 5xx and no gRPC server fault (the database is healthy), and a
//! session cookie only for a form that carried the right password.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use runtime::testing::RawCodec;
use storage::testing::TestDatabase;

use crate::harness::{Browser, Idp, PASSWORD, SESSIONS_API_SECRET, start, with_credentials};

fn runner() -> TestRunner {
    let cases = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(96);
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

fn boot() -> (tokio::runtime::Runtime, Idp) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let idp = rt.block_on(async {
        let db = TestDatabase::sqlite(&idp::MIGRATIONS).await.unwrap();
        let idp = start(db, |_| {}).await;
        idp.user("alice").await;
        idp.authz.login("ch-1");
        idp
    });
    (rt, idp)
}

const NAMES: [&str; 7] = [
    "csrf",
    "login_challenge",
    "username",
    "password",
    "action",
    "remember",
    "x-unknown",
];

#[test]
fn login_form_bodies() {
    let (rt, idp) = boot();
    let mut browser = Browser::new(&idp);
    let csrf = rt.block_on(async {
        let form = browser.get("/login?login_challenge=ch-1").await;
        assert_eq!(form.status, 200, "{}", form.body);
        form.hidden("csrf")
    });
    let value = prop_oneof![
        4 => prop::sample::select(vec![
            csrf.clone(),
            "ch-1".to_owned(),
            "alice".to_owned(),
            "alice@example.com".to_owned(),
            PASSWORD.to_owned(),
            "login".to_owned(),
            "cancel".to_owned(),
        ]),
        2 => ".{0,40}",
        1 => Just("p".repeat(5000)),
    ];
    let pairs = prop::collection::vec(
        (
            prop_oneof![
                6 => prop::sample::select(NAMES.to_vec()).prop_map(str::to_owned),
                1 => ".{0,10}",
            ],
            value,
        ),
        0..9,
    );
    // Often a complete form that the fuzzer then overrides or extends, so cases get past
    // the CSRF check to the password check.
    let base: Vec<(String, String)> = [
        ("csrf", csrf.as_str()),
        ("login_challenge", "ch-1"),
        ("username", "alice"),
        ("password", "not the password"),
        ("action", "login"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let form = (any::<bool>(), pairs).prop_map(move |(complete, extra)| {
        let mut form = if complete { base.clone() } else { Vec::new() };
        for (k, v) in extra {
            match form.iter_mut().find(|(n, _)| *n == k) {
                Some(slot) if v.len() % 2 == 0 => slot.1 = v,
                _ => form.push((k, v)),
            }
        }
        form
    });
    let body = prop_oneof![
        4 => form.prop_map(|p| url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(p.iter())
            .finish()
            .into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..200),
    ];
    let url = format!("{}/login", idp.url);
    let cookie = browser
        .cookies
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    runner()
        .run(&body, |body| {
            let (status, session, text) = rt.block_on(async {
                let res = http
                    .post(&url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .header("cookie", &cookie)
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap();
                let session = res.headers().get_all("set-cookie").iter().any(|c| {
                    let c = c.to_str().unwrap_or_default();
                    c.contains("idp_session=") && !c.contains("idp_session=;")
                });
                (res.status(), session, res.text().await.unwrap())
            });
            let shown = String::from_utf8_lossy(&body);
            prop_assert!(
                !status.is_server_error(),
                "{status} for {shown:?}: {text:.300}"
            );
            if session {
                prop_assert!(
                    shown.contains(
                        &url::form_urlencoded::byte_serialize(PASSWORD.as_bytes())
                            .collect::<String>()
                    ),
                    "a session without the password: {shown:?}"
                );
            }
            Ok(())
        })
        .unwrap();
}

/// Arbitrary bytes as the message of every Sessions method, with authz's credentials,
/// wrong ones or none: never a server fault.
#[test]
fn sessions_api_raw_messages() {
    let (rt, idp) = boot();
    let channel = rt.block_on(async {
        tonic::transport::Endpoint::from_shared(idp.grpc.clone())
            .unwrap()
            .connect()
            .await
            .unwrap()
    });
    let methods = vec![
        "/idp.v1.Sessions/GetUserClaims",
        "/idp.v1.Sessions/CheckSession",
        "/idp.v1.Sessions/EndSession",
    ];
    let secret = prop::option::of(prop::sample::select(vec![SESSIONS_API_SECRET, "wrong"]));
    runner()
        .run(
            &(
                prop::sample::select(methods),
                prop::collection::vec(any::<u8>(), 0..200),
                secret,
            ),
            |(path, bytes, secret)| {
                let result = rt.block_on(async {
                    let mut grpc = tonic::client::Grpc::new(channel.clone());
                    grpc.ready().await.unwrap();
                    let request = match secret {
                        Some(s) => with_credentials(bytes.clone(), "authz", s),
                        None => tonic::Request::new(bytes.clone()),
                    };
                    grpc.unary(
                        request,
                        tonic::codegen::http::uri::PathAndQuery::from_static(path),
                        RawCodec,
                    )
                    .await
                });
                if let Err(status) = result {
                    prop_assert!(
                        !matches!(
                            status.code(),
                            tonic::Code::Internal
                                | tonic::Code::Unknown
                                | tonic::Code::Unavailable
                                | tonic::Code::DataLoss
                        ),
                        "{path} {secret:?} {bytes:?}: {status:?}"
                    );
                }
                Ok(())
            },
        )
        .unwrap();
}
