//! Fuzz targets for authz's network-facing parsers (issue 14), property-based with proptest
//! against the in-process server: the authorization request (RFC 6749 §4.1.1, OpenID
//! Connect Core §3.1.2.1) by GET and POST, token request bodies (RFC 6749 §3.2, §5.2)
//! with and without Basic credentials (§2.3.1), and the protobuf messages of the
//! `LoginFlow` and `Introspection` gRPC services, both as raw bytes and as well-formed
//! messages with arbitrary field values.
//!
//! Each target runs `FUZZ_CASES` cases (default 96, so `make test` stays fast);
//! `FUZZ_CASES=20000 cargo nextest run -p authz -E 'test(fuzz::)'` fuzzes for longer.
//! What must hold whatever arrives: no 5xx and no `INTERNAL`/`UNKNOWN` (the database is
//! healthy, so any of them is a parser or handler bug), OAuth errors in the RFC 6749 JSON
//! shape with a registered code, and no redirect to a URI that is not exactly a registered
//! redirect URI of the request's client (RFC 9700 §4.1).

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use proto::authz::v1::introspection_client::IntrospectionClient;
use proto::authz::v1::{
    AcceptConsentRequest, AcceptLoginRequest, GetConsentRequestRequest, GetLoginRequestRequest,
    IntrospectBatchRequest, IntrospectRequest, RejectRequest, RevokeSubjectRequest,
};
use reqwest::StatusCode;
use runtime::testing::RawCodec;
use serde_json::Value;
use storage::testing::TestDatabase;

use crate::flow_env::*;

/// Cases per target: `FUZZ_CASES`, default 96.
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

/// A tokio runtime and authz on a fresh SQLite database, with the per-address allowance
/// of pending requests raised so that the fuzzer's many requests from one address reach
/// the parser rather than the limit.
fn boot() -> (tokio::runtime::Runtime, Env, TestDatabase) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (env, db) = rt.block_on(async {
        let db = TestDatabase::sqlite(&authz::MIGRATIONS).await.unwrap();
        let env = start_with(&db, |c| {
            c.authorize.pending_requests_per_address = 1_000_000;
        })
        .await;
        (env, db)
    });
    (rt, env, db)
}

/// The registered redirect URIs of the test clients (see `flow_env::client`).
const REGISTERED: [&str; 3] = [
    WEB_CB,
    "http://127.0.0.1/native",
    "https://spa.example.test/cb",
];

/// Parameter names of an authorization request, and one that means nothing.
const AUTHORIZE_NAMES: [&str; 20] = [
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "response_mode",
    "prompt",
    "max_age",
    "request",
    "request_uri",
    "id_token_hint",
    "login_hint",
    "resource",
    "ui_locales",
    "acr_values",
    "claims",
    "x-unknown",
];

/// Values that are valid for some parameter, so that requests get past the first checks.
const GOOD_VALUES: [&str; 24] = [
    "web",
    "spa",
    "m2m",
    "first",
    WEB_CB,
    "http://127.0.0.1/native",
    "http://127.0.0.1:8123/native",
    "https://spa.example.test/cb",
    "https://rp.example.test/cb/",
    "code",
    "code id_token",
    "token",
    "openid",
    "openid profile offline_access",
    "api:read",
    "S256",
    "plain",
    "query",
    "form_post",
    "fragment",
    "login consent",
    "none",
    "0",
    "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
];

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(GOOD_VALUES.to_vec()).prop_map(str::to_owned),
        2 => ".{0,40}",
        1 => "[ -~]{0,300}",
        1 => Just("x".repeat(5000)),
    ]
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(AUTHORIZE_NAMES.to_vec()).prop_map(str::to_owned),
        1 => ".{0,12}",
    ]
}

/// An authorization request: often a valid base that the fuzzer then overrides, extends
/// or repeats parameters of, sometimes only random pairs.
fn authorization_request() -> impl Strategy<Value = Vec<(String, String)>> {
    (
        any::<bool>(),
        prop::collection::vec((name(), value()), 0..10),
    )
        .prop_map(|(base, extra)| {
            let mut params: Vec<(String, String)> = Vec::new();
            if base {
                let (_, challenge) = pkce();
                for (k, v) in code_request("web", WEB_CB, "openid", &challenge, &[]) {
                    params.push((k.to_owned(), v.to_owned()));
                }
            }
            for (k, v) in extra {
                // Half the time an extra pair replaces the base's value, else it is added
                // (a repeated parameter is a case of its own).
                match params.iter_mut().find(|(n, _)| *n == k) {
                    Some(slot) if v.len() % 2 == 0 => slot.1 = v,
                    _ => params.push((k, v)),
                }
            }
            params
        })
}

/// Undoes the HTML escaping of an attribute value.
fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Whether `uri` is a registered redirect URI, loopback ports aside (RFC 8252 §7.3).
fn registered(uri: &str) -> bool {
    if REGISTERED.contains(&uri) {
        return true;
    }
    uri.strip_prefix("http://127.0.0.1:")
        .and_then(|rest| rest.split_once('/'))
        .is_some_and(|(port, path)| {
            !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && path == "native"
        })
}

/// What a response to an authorization request may be, whatever the request held.
fn check_authorization_response(
    params: &[(String, String)],
    status: StatusCode,
    location: Option<&str>,
    content_type: &str,
    body: &str,
) -> Result<(), TestCaseError> {
    prop_assert!(
        !status.is_server_error(),
        "{status} for {params:?}: {body:.300}"
    );
    let targets: Vec<&str> = params
        .iter()
        .filter(|(k, _)| k == "redirect_uri")
        .map(|(_, v)| v.as_str())
        .collect();
    let trusted =
        |to: &str| targets.len() == 1 && registered(targets[0]) && to.starts_with(targets[0]);
    if let Some(to) = location {
        prop_assert!(
            to.starts_with(IDP_URL) || trusted(to),
            "redirect to {to} for {params:?}"
        );
    } else if content_type.starts_with("text/html")
        && let Some((_, rest)) = body.split_once("action=\"")
    {
        // response_mode=form_post: the form may only post to the trusted redirect URI.
        let action = unescape(rest.split('"').next().unwrap_or_default());
        prop_assert!(trusted(&action), "form posts to {action} for {params:?}");
    }
    Ok(())
}

#[test]
fn authorization_requests() {
    let (rt, env, _db) = boot();
    let base = format!("http://{}/authorize", env.addrs.http);
    runner()
        .run(
            &(authorization_request(), any::<bool>()),
            |(params, post)| {
                let (status, location, content_type, body) = rt.block_on(async {
                    let req = if post {
                        env.http.post(&base).form(&params)
                    } else {
                        env.http.get(&base).query(&params)
                    };
                    let res = req.send().await.unwrap();
                    let header = |name: &str| {
                        res.headers()
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned)
                    };
                    let location = header("location");
                    let content_type = header("content-type").unwrap_or_default();
                    (
                        res.status(),
                        location,
                        content_type,
                        res.text().await.unwrap(),
                    )
                });
                check_authorization_response(
                    &params,
                    status,
                    location.as_deref(),
                    &content_type,
                    &body,
                )
            },
        )
        .unwrap();
}

/// Raw query strings, not produced by a form serialiser: invalid percent-escapes, bytes
/// that are not UTF-8 once decoded, stray `&` and `=`.
#[test]
fn raw_authorization_queries() {
    let (rt, env, _db) = boot();
    let base = format!("http://{}/authorize", env.addrs.http);
    let raw = prop::collection::vec(
        prop_oneof![
            Just("&".to_owned()),
            Just("=".to_owned()),
            Just("%".to_owned()),
            Just("%ff".to_owned()),
            Just("%00".to_owned()),
            Just("+".to_owned()),
            Just("client_id=web".to_owned()),
            Just(format!("redirect_uri={}", url_encode(WEB_CB))),
            Just("response_type=code".to_owned()),
            "[a-zA-Z0-9_.~-]{0,8}",
        ],
        0..24,
    )
    .prop_map(|parts| parts.concat());
    runner()
        .run(&raw, |query| {
            let (status, location, body) = rt.block_on(async {
                let res = env
                    .http
                    .get(format!("{base}?{query}"))
                    .send()
                    .await
                    .unwrap();
                let location = res
                    .headers()
                    .get("location")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                (res.status(), location, res.text().await.unwrap())
            });
            prop_assert!(
                !status.is_server_error(),
                "{status} for {query}: {body:.300}"
            );
            if let Some(to) = location {
                prop_assert!(
                    to.starts_with(IDP_URL) || to.starts_with(WEB_CB),
                    "redirect to {to} for {query}"
                );
            }
            Ok(())
        })
        .unwrap();
}

fn url_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The error codes of RFC 6749 §5.2 and RFC 8707 §2 that the token endpoint may answer.
const TOKEN_ERRORS: [&str; 7] = [
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
    "invalid_target",
];

const TOKEN_NAMES: [&str; 12] = [
    "grant_type",
    "client_id",
    "client_secret",
    "code",
    "redirect_uri",
    "code_verifier",
    "refresh_token",
    "scope",
    "resource",
    "audience",
    "client_assertion",
    "x-unknown",
];

/// A token request body: form pairs built from the parameter names, or raw bytes.
fn token_body() -> impl Strategy<Value = Vec<u8>> {
    let grant = prop::sample::select(vec![
        "client_credentials",
        "authorization_code",
        "refresh_token",
        "password",
        "urn:ietf:params:oauth:grant-type:device_code",
    ])
    .prop_map(|g| ("grant_type".to_owned(), g.to_owned()));
    let pair = (
        prop::sample::select(TOKEN_NAMES.to_vec()).prop_map(str::to_owned),
        prop_oneof![
            3 => prop::sample::select(vec!["m2m", "web", "spa", SECRET, "api:read", "openid", WEB_CB])
                .prop_map(str::to_owned),
            2 => ".{0,40}",
        ],
    );
    prop_oneof![
        3 => (prop::option::of(grant), prop::collection::vec(pair, 0..8)).prop_map(|(g, rest)| {
            let mut s = url::form_urlencoded::Serializer::new(String::new());
            s.extend_pairs(g.iter());
            s.extend_pairs(rest.iter());
            s.finish().into_bytes()
        }),
        1 => prop::collection::vec(any::<u8>(), 0..300),
    ]
}

/// The `Authorization` header of a token request: none, valid Basic, Basic with other
/// credentials, or arbitrary text.
fn token_authorization() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some(basic("m2m", SECRET))),
        (".{0,20}", ".{0,20}").prop_map(|(id, secret)| Some(basic(&id, &secret))),
        "[ -~]{0,60}".prop_map(Some),
        "Basic [A-Za-z0-9+/=]{0,40}".prop_map(Some),
    ]
}

#[test]
fn token_request_bodies() {
    let (rt, env, _db) = boot();
    let url = format!("http://{}/token", env.addrs.http);
    runner()
        .run(
            &(token_body(), token_authorization(), any::<bool>()),
            |(body, authorization, form_type)| {
                let (status, headers, text) = rt.block_on(async {
                    let mut req = env.http.post(&url).body(body.clone());
                    if form_type {
                        req = req.header("content-type", "application/x-www-form-urlencoded");
                    }
                    if let Some(a) = &authorization {
                        req = req.header("authorization", a);
                    }
                    let res = req.send().await.unwrap();
                    let headers = res.headers().clone();
                    (res.status(), headers, res.text().await.unwrap())
                });
                let shown = String::from_utf8_lossy(&body);
                prop_assert!(
                    [200, 400, 401].contains(&status.as_u16()),
                    "{status} for {shown:?}: {text:.300}"
                );
                prop_assert_eq!(
                    headers.get("cache-control").map(|v| v.as_bytes()),
                    Some(&b"no-store"[..])
                );
                let json: Value = serde_json::from_str(&text)
                    .map_err(|e| TestCaseError::fail(format!("{e}: {text:.300}")))?;
                if status == StatusCode::OK {
                    prop_assert!(json["access_token"].is_string(), "{json}");
                } else {
                    let error = json["error"].as_str().unwrap_or_default();
                    prop_assert!(
                        TOKEN_ERRORS.contains(&error),
                        "{status} {json} for {shown:?}"
                    );
                    if status == StatusCode::UNAUTHORIZED {
                        prop_assert_eq!(error, "invalid_client");
                        prop_assert!(headers.contains_key("www-authenticate"));
                    }
                }
                Ok(())
            },
        )
        .unwrap();
}

/// gRPC statuses that mean the server failed, not the caller.
const SERVER_FAULTS: [tonic::Code; 5] = [
    tonic::Code::Internal,
    tonic::Code::Unknown,
    tonic::Code::Unavailable,
    tonic::Code::DataLoss,
    tonic::Code::Unimplemented,
];

const METHODS: [&str; 9] = [
    "/authz.v1.LoginFlow/GetLoginRequest",
    "/authz.v1.LoginFlow/AcceptLogin",
    "/authz.v1.LoginFlow/RejectLogin",
    "/authz.v1.LoginFlow/GetConsentRequest",
    "/authz.v1.LoginFlow/AcceptConsent",
    "/authz.v1.LoginFlow/RejectConsent",
    "/authz.v1.LoginFlow/RevokeSubject",
    "/authz.v1.Introspection/Introspect",
    "/authz.v1.Introspection/IntrospectBatch",
];

/// Arbitrary bytes as the message of every method, with idp's, rs's or no credentials:
/// an undecodable message is `INVALID_ARGUMENT`, a decodable one reaches authentication
/// and the handler, and nothing is a server fault.
#[test]
fn grpc_raw_messages() {
    let (rt, env, _db) = boot();
    let channel = rt.block_on(async {
        tonic::transport::Endpoint::from_shared(format!("http://{}", env.addrs.grpc.unwrap()))
            .unwrap()
            .connect()
            .await
            .unwrap()
    });
    let auth = prop::sample::select(vec![None, Some("idp"), Some("rs"), Some("nobody")]);
    runner()
        .run(
            &(
                prop::sample::select(METHODS.to_vec()),
                prop::collection::vec(any::<u8>(), 0..200),
                auth,
            ),
            |(path, bytes, who)| {
                let result = rt.block_on(async {
                    let mut grpc = tonic::client::Grpc::new(channel.clone());
                    grpc.ready().await.unwrap();
                    grpc.unary(
                        as_client(bytes.clone(), who.map(|id| (id, SECRET))),
                        tonic::codegen::http::uri::PathAndQuery::from_static(path),
                        RawCodec,
                    )
                    .await
                });
                if let Err(status) = result {
                    prop_assert!(
                        !SERVER_FAULTS.contains(&status.code()),
                        "{path} {who:?} {bytes:?}: {status:?}"
                    );
                }
                Ok(())
            },
        )
        .unwrap();
}

/// A request as idp, the one client allowed on `LoginFlow`.
fn idp<T>(message: T) -> tonic::Request<T> {
    as_client(message, Some(("idp", SECRET)))
}

/// A request as rs, a client allowed to introspect.
fn rs<T>(message: T) -> tonic::Request<T> {
    as_client(message, Some(("rs", SECRET)))
}

/// Well-formed messages whose fields hold arbitrary strings and numbers, sent with the
/// credentials each service expects: the handlers validate them (no server fault).
#[test]
fn grpc_message_fields() {
    let (rt, env, _db) = boot();
    let (flow, introspection) = rt.block_on(async {
        let flow = env.login_flow().await;
        let channel =
            tonic::transport::Endpoint::from_shared(format!("http://{}", env.addrs.grpc.unwrap()))
                .unwrap()
                .connect()
                .await
                .unwrap();
        let introspection = IntrospectionClient::new(channel);
        (flow, introspection)
    });
    let text =
        || prop_oneof![3 => ".{0,30}", 1 => Just("x".repeat(3000)), 1 => Just(String::new())];
    let strings = move || prop::collection::vec(text(), 0..5);
    let case = (
        0usize..8,
        text(),
        text(),
        text(),
        any::<i64>(),
        strings(),
        strings(),
    );
    runner()
        .run(&case, |(which, a, b, c, n, list, list2)| {
            let (mut flow, mut introspection) = (flow.clone(), introspection.clone());
            let result: Result<(), tonic::Status> = rt.block_on(async {
                match which {
                    0 => flow
                        .get_login_request(idp(GetLoginRequestRequest { login_challenge: a }))
                        .await
                        .map(drop),
                    1 => flow
                        .accept_login(idp(AcceptLoginRequest {
                            login_challenge: a,
                            subject: b,
                            session_id: c,
                            auth_time: n,
                            amr: list,
                            acr: list2.concat(),
                        }))
                        .await
                        .map(drop),
                    2 => flow
                        .reject_login(idp(RejectRequest {
                            challenge: a,
                            error: b,
                            error_description: c,
                        }))
                        .await
                        .map(drop),
                    3 => flow
                        .get_consent_request(idp(GetConsentRequestRequest {
                            consent_challenge: a,
                        }))
                        .await
                        .map(drop),
                    4 => flow
                        .accept_consent(idp(AcceptConsentRequest {
                            consent_challenge: a,
                            granted_scopes: list,
                            ..AcceptConsentRequest::default()
                        }))
                        .await
                        .map(drop),
                    5 => flow
                        .revoke_subject(idp(RevokeSubjectRequest { subject: a }))
                        .await
                        .map(drop),
                    6 => introspection
                        .introspect(rs(IntrospectRequest {
                            token: a,
                            token_type_hint: b,
                        }))
                        .await
                        .map(drop),
                    _ => introspection
                        .introspect_batch(rs(IntrospectBatchRequest {
                            tokens: list
                                .into_iter()
                                .zip(list2.into_iter().chain(std::iter::repeat(c)))
                                .map(|(token, token_type_hint)| IntrospectRequest {
                                    token,
                                    token_type_hint,
                                })
                                .collect(),
                        }))
                        .await
                        .map(drop),
                }
            });
            if let Err(status) = result {
                prop_assert!(
                    !SERVER_FAULTS.contains(&status.code()),
                    "case {which}: {status:?}"
                );
            }
            Ok(())
        })
        .unwrap();
}
