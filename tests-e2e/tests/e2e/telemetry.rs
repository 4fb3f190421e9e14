//! OpenTelemetry export from real processes: spans reach an OTLP collector and continue the
//! caller's W3C trace context, across every gRPC hop (a browser login through authz and idp,
//! an rs request introspected at authz); a collector that is down changes nothing.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use reqwest::{StatusCode, Url};
use serde_json::Value;
use tokio::sync::mpsc;

use demo::browser::{Browser, Page};

use crate::code_flow::{authz_keys, cli, migrate, pairs, random, sha256_b64, write};
use crate::harness::{Service, TEST_KEK, free_port};

/// One exported span: which service sent it, its kind and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Seen {
    service: String,
    kind: &'static str,
    name: String,
}

fn seen(service: &str, kind: &'static str, name: &str) -> Seen {
    Seen {
        service: service.to_owned(),
        kind,
        name: name.to_owned(),
    }
}

/// A minimal OTLP/gRPC trace collector: forwards every span's (trace id, name) and, on a
/// second channel, (trace id, what it saw).
struct Collector(
    mpsc::UnboundedSender<(Vec<u8>, String)>,
    Option<mpsc::UnboundedSender<(Vec<u8>, Seen)>>,
);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        for resource in request.into_inner().resource_spans {
            let service = resource
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|a| a.key == "service.name")
                .and_then(|a| a.value.as_ref()?.value.as_ref())
                .map(|v| match v {
                    any_value::Value::StringValue(s) => s.clone(),
                    other => format!("{other:?}"),
                })
                .unwrap_or_default();
            for scope in resource.scope_spans {
                for span in scope.spans {
                    let kind = match SpanKind::try_from(span.kind) {
                        Ok(SpanKind::Server) => "server",
                        Ok(SpanKind::Client) => "client",
                        _ => "other",
                    };
                    if let Some(all) = &self.1 {
                        let _ = all.send((span.trace_id.clone(), seen(&service, kind, &span.name)));
                    }
                    let _ = self.0.send((span.trace_id, span.name));
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_the_collector_with_the_callers_trace_id() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector_addr = listener.local_addr().unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Collector(tx, None)))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );

    let data = tempfile::tempdir().unwrap();
    let authz = Service::start(
        "authz",
        data.path(),
        &[
            (
                "AUTHZ__TELEMETRY__OTLP_ENDPOINT".into(),
                format!("http://{collector_addr}"),
            ),
            ("OTEL_BSP_SCHEDULE_DELAY".into(), "100".into()),
        ],
    )
    .await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let res = reqwest::Client::new()
        .get(format!("{}/.well-known/jwks.json", authz.url("http")))
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let wanted = trace_bytes(trace_id);
    let found = tokio::time::timeout(Duration::from_secs(15), async {
        while let Some((id, name)) = rx.recv().await {
            if id == wanted && name == "GET /.well-known/jwks.json" {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(
        found,
        Ok(true),
        "no span of the request reached the collector"
    );
    assert_eq!(authz.terminate(Duration::from_secs(5)).await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_is_down_neither_blocks_start_nor_stop() {
    // A port with nothing listening.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let authz = Service::start(
        "authz",
        data.path(),
        &[(
            "AUTHZ__TELEMETRY__OTLP_ENDPOINT".into(),
            format!("http://{dead}"),
        )],
    )
    .await;
    let res = reqwest::get(format!(
        "{}/.well-known/openid-configuration",
        authz.url("http")
    ))
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(authz.terminate(Duration::from_secs(5)).await, Some(0));
}

/// The 16 bytes of a hex trace id.
fn trace_bytes(trace_id: &str) -> Vec<u8> {
    (0..16)
        .map(|i| u8::from_str_radix(&trace_id[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// A collector on a free port that reports (trace id, span) of every span exported to it.
async fn collector() -> (String, mpsc::UnboundedReceiver<(Vec<u8>, Seen)>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (names, _) = mpsc::unbounded_channel();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Collector(names, Some(tx))))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    (format!("http://{addr}"), rx)
}

/// Waits until every span of `expected` has arrived with trace id `trace_id`; fails naming
/// what is missing and listing what did arrive in that trace.
async fn expect_trace(
    spans: &mut mpsc::UnboundedReceiver<(Vec<u8>, Seen)>,
    trace_id: &str,
    expected: &[Seen],
) {
    let wanted = trace_bytes(trace_id);
    let mut got = BTreeSet::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), async {
        while !expected.iter().all(|e| got.contains(e)) {
            match spans.recv().await {
                Some((id, span)) if id == wanted => {
                    got.insert(span);
                }
                Some(_) => {}
                None => return,
            }
        }
    })
    .await;
    let missing: Vec<&Seen> = expected.iter().filter(|e| !got.contains(*e)).collect();
    assert!(
        missing.is_empty(),
        "trace {trace_id} lacks {missing:#?}\nit has {got:#?}"
    );
}

const RS_AUD: &str = "https://rs.example.test";
const REDIRECT_URI: &str = "http://127.0.0.1/cb";
const SCOPE: &str = "openid profile items:read";
const PASSWORD: &str = "correct horse battery staple";

/// The page's first form, which must post.
fn form_of(page: &Page) -> demo::browser::Form {
    assert_eq!(page.status, StatusCode::OK, "{page:?}");
    let form = demo::browser::forms(&page.url, &page.body)
        .unwrap()
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no form in\n{}", page.body));
    assert_eq!(form.method, "post");
    form
}

fn see_other(page: &Page, prefix: &str) -> Url {
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{page:?}");
    let to = page.location.clone().unwrap();
    assert!(to.as_str().starts_with(prefix), "{to} is not {prefix}…");
    to
}

/// A browser login (authorize → idp login → consent → code → token) and an rs request in
/// introspection mode, every request carrying a `traceparent`: each of them is one trace
/// across the HTTP span of the service called and every gRPC client and server span of the
/// hops it makes (idp → authz `LoginFlow`, authz → idp `Sessions`, rs → authz
/// `Introspection`), in all three processes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_spans_every_grpc_hop() {
    let (otlp, mut spans) = collector().await;
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    let (authz_http, authz_grpc, idp_http, idp_grpc) =
        (free_port(), free_port(), free_port(), free_port());
    let issuer = format!("http://localhost:{authz_http}");
    let idp_url = format!("http://localhost:{idp_http}");
    let idp_secret = write(dir, "idp-secret", "idp-calls-authz-loginflow-0123456789");
    let authz_secret = write(dir, "authz-secret", "authz-calls-idp-sessions-0123456789");
    let rs_secret = write(dir, "rs-secret", "rs-calls-authz-introspection-012345");
    let password = write(dir, "password", PASSWORD);

    let mut authz_env = authz_keys();
    authz_env.extend(pairs(&[
        (
            "AUTHZ__DATABASE__URL",
            &format!("sqlite://{}/authz.db", dir.display()),
        ),
        ("AUTHZ__KEYS__ENCRYPTION_KEY", TEST_KEK),
    ]));
    migrate("authz", &authz_env);
    let create = |id: &str, extra: &[&str]| {
        let mut args = vec!["clients", "create", "--id", id, "--name", id, "--json"];
        args.extend_from_slice(extra);
        cli("authz", &authz_env, &args)
    };
    create("idp", &["--secret-file", &idp_secret]);
    create("rs", &["--secret-file", &rs_secret, "--introspect", "true"]);
    let rp_secret = create(
        "rp",
        &[
            "--grant-type",
            "authorization_code",
            "--scope",
            SCOPE,
            "--redirect-uri",
            REDIRECT_URI,
            "--audience",
            RS_AUD,
        ],
    )["client_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let idp_db = pairs(&[(
        "IDP__DATABASE__URL",
        &format!("sqlite://{}/idp.db", dir.display()),
    )]);
    migrate("idp", &idp_db);
    cli(
        "idp",
        &idp_db,
        &[
            "users",
            "create",
            "--username",
            "alice",
            "--password-file",
            &password,
            "--json",
        ],
    );

    let export = |prefix: &str| {
        pairs(&[
            (&format!("{prefix}__TELEMETRY__OTLP_ENDPOINT"), &otlp),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ])
    };
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
    authz_env.extend(export("AUTHZ"));
    let authz = Service::start("authz", dir, &authz_env).await;
    let mut idp_env = pairs(&[
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
    ]);
    idp_env.extend(export("IDP"));
    let idp = Service::start("idp", dir, &idp_env).await;
    let rs_dir = dir.join("rs");
    std::fs::create_dir_all(&rs_dir).unwrap();
    let mut rs_env = pairs(&[
        ("RS__GUARD__MODE", "introspection"),
        ("RS__GUARD__ISSUER", &issuer),
        ("RS__GUARD__AUDIENCE", RS_AUD),
        (
            "RS__GUARD__INTROSPECTION__ENDPOINT",
            &format!("http://127.0.0.1:{authz_grpc}"),
        ),
        ("RS__GUARD__INTROSPECTION__CLIENT_ID", "rs"),
        ("RS__GUARD__INTROSPECTION__CLIENT_SECRET_FILE", &rs_secret),
    ]);
    rs_env.extend(export("RS"));
    let rs = Service::start("rs", &rs_dir, &rs_env).await;

    // The browser sends one traceparent on every request of the login, and so does the RP
    // on the token request.
    let login_trace = "0af7651916cd43dd8448eb211c80319c";
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        "traceparent",
        format!("00-{login_trace}-b7ad6b7169203331-01")
            .parse()
            .unwrap(),
    );
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .unwrap();
    let mut browser = Browser::new(http.clone());
    let verifier = random();
    let authorize = Url::parse_with_params(
        &format!("{issuer}/authorize"),
        [
            ("response_type", "code"),
            ("client_id", "rp"),
            ("redirect_uri", REDIRECT_URI),
            ("scope", SCOPE),
            ("state", "s1"),
            ("nonce", "n1"),
            ("code_challenge", &sha256_b64(verifier.as_bytes())),
            ("code_challenge_method", "S256"),
        ],
    )
    .unwrap();
    let resume = format!("{issuer}/authorize/resume?");
    let page = browser.get(&authorize).await.unwrap();
    let to = see_other(&page, &format!("{idp_url}/login?"));
    let page = browser.get(&to).await.unwrap();
    let form = form_of(&page);
    let extra = [
        ("username", "alice"),
        ("password", PASSWORD),
        ("action", "login"),
    ];
    let to = see_other(&browser.submit(&form, &extra).await.unwrap(), &resume);
    let page = browser.get(&to).await.unwrap();
    let to = see_other(&page, &format!("{idp_url}/consent?"));
    let form = form_of(&browser.get(&to).await.unwrap());
    let page = browser.submit(&form, &[("action", "allow")]).await.unwrap();
    let to = see_other(&page, &resume);
    let to = see_other(&browser.get(&to).await.unwrap(), REDIRECT_URI);
    let code = to
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no code in {to}"));
    let tokens: Value = http
        .post(format!("{issuer}/token"))
        .basic_auth("rp", Some(&rp_secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", &verifier),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = tokens["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{tokens}"));

    let mut expected = vec![
        seen("authz", "server", "GET /authorize"),
        seen("authz", "server", "GET /authorize/resume"),
        seen("authz", "server", "POST /token"),
        seen("idp", "server", "GET /login"),
        seen("idp", "server", "POST /login"),
        seen("idp", "server", "GET /consent"),
        seen("idp", "server", "POST /consent"),
        // authz → idp
        seen("authz", "client", "idp.v1.Sessions/GetUserClaims"),
        seen("idp", "server", "idp.v1.Sessions/GetUserClaims"),
    ];
    // idp → authz
    for method in [
        "GetLoginRequest",
        "AcceptLogin",
        "GetConsentRequest",
        "AcceptConsent",
    ] {
        let name = format!("authz.v1.LoginFlow/{method}");
        expected.push(seen("idp", "client", &name));
        expected.push(seen("authz", "server", &name));
    }
    expect_trace(&mut spans, login_trace, &expected).await;

    let rs_trace = "5c3a4c2b3e1f4a6b8d9e0f1a2b3c4d5e";
    let me = reqwest::Client::new()
        .get(format!("{}/api/v1/me", rs.url("http")))
        .bearer_auth(access)
        .header("traceparent", format!("00-{rs_trace}-1f2e3d4c5b6a7980-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    expect_trace(
        &mut spans,
        rs_trace,
        &[
            seen("rs", "server", "GET /api/v1/me"),
            seen("rs", "client", "authz.v1.Introspection/Introspect"),
            seen("authz", "server", "authz.v1.Introspection/Introspect"),
        ],
    )
    .await;

    // Refused callers: counted with their code on the server.
    let refused = proto::authz::v1::introspection_client::IntrospectionClient::new(
        channel(authz.addr("grpc")).await,
    )
    .introspect(proto::authz::v1::IntrospectRequest {
        token: access.to_owned(),
        token_type_hint: String::new(),
    })
    .await
    .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    let refused =
        proto::idp::v1::sessions_client::SessionsClient::new(channel(idp.addr("grpc")).await)
            .check_session(proto::idp::v1::CheckSessionRequest {
                session_id: "any".into(),
            })
            .await
            .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);

    let series = |side: &str, service: &str, method: &str, code: &str| {
        format!(
            r#"grpc_{side}_requests_total{{service="{service}",method="{method}",code="{code}"}}"#
        )
    };
    let flow = "authz.v1.LoginFlow";
    let sessions = "idp.v1.Sessions";
    let introspection = "authz.v1.Introspection";
    for (service, wanted) in [
        (
            &authz,
            vec![
                series("server", flow, "AcceptLogin", "OK"),
                series("server", flow, "AcceptConsent", "OK"),
                series("server", introspection, "Introspect", "OK"),
                series("server", introspection, "Introspect", "UNAUTHENTICATED"),
                series("client", sessions, "GetUserClaims", "OK"),
            ],
        ),
        (
            &idp,
            vec![
                series("server", sessions, "GetUserClaims", "OK"),
                series("server", sessions, "CheckSession", "UNAUTHENTICATED"),
                series("client", flow, "GetLoginRequest", "OK"),
                series("client", flow, "AcceptLogin", "OK"),
            ],
        ),
        (
            &rs,
            vec![series("client", introspection, "Introspect", "OK")],
        ),
    ] {
        let metrics = metrics(service.addr("admin")).await;
        for series in wanted {
            assert!(
                metric(&metrics, &series) >= 1.0,
                "{series} missing in\n{metrics}"
            );
        }
        assert!(
            metrics.contains("grpc_") && metrics.contains("_request_duration_seconds_bucket{"),
            "{metrics}"
        );
    }

    // Reflection: grpcurl's `list` without the .proto files.
    assert_eq!(
        reflected_services(authz.addr("grpc")).await,
        [
            "authz.v1.Introspection",
            "authz.v1.LoginFlow",
            "grpc.health.v1.Health",
        ]
    );
    assert_eq!(
        reflected_services(idp.addr("grpc")).await,
        ["grpc.health.v1.Health", "idp.v1.Sessions"]
    );

    for service in [rs, idp, authz] {
        assert_eq!(service.terminate(Duration::from_secs(5)).await, Some(0));
    }
}

async fn channel(addr: SocketAddr) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

async fn metrics(admin: SocketAddr) -> String {
    reqwest::get(format!("http://{admin}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of one series (`name{labels}`) in a Prometheus text page; 0 when absent.
fn metric(page: &str, series: &str) -> f64 {
    page.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// The services a server lists over `grpc.reflection.v1` (and, the same, over `v1alpha`),
/// sorted, without the reflection services themselves.
async fn reflected_services(addr: SocketAddr) -> Vec<String> {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::{ServerReflectionRequest, ServerReflectionResponse};
    use tonic_reflection::pb::v1alpha;

    let mut client = ServerReflectionClient::new(channel(addr).await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = client
        .server_reflection_info(tonic::codegen::tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let answer: ServerReflectionResponse = answers.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("not a service list: {answer:?}");
    };
    let mut names: Vec<String> = list
        .service
        .into_iter()
        .map(|s| s.name)
        .filter(|n| !n.starts_with("grpc.reflection."))
        .collect();
    names.sort();

    let mut alpha =
        v1alpha::server_reflection_client::ServerReflectionClient::new(channel(addr).await);
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let answer = alpha
        .server_reflection_info(tonic::codegen::tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner()
        .message()
        .await
        .unwrap()
        .unwrap();
    let Some(v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        answer.message_response
    else {
        panic!("not a service list: {answer:?}");
    };
    let mut alpha_names: Vec<String> = list
        .service
        .into_iter()
        .map(|s| s.name)
        .filter(|n| !n.starts_with("grpc.reflection."))
        .collect();
    alpha_names.sort();
    assert_eq!(alpha_names, names, "v1alpha lists what v1 lists");
    names
}
