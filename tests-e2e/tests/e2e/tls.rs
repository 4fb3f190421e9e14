//! TLS everywhere (issue 16): authz, idp and rs started by the harness with TLS on every
//! listener (public HTTP, gRPC, admin) and mutual TLS on the gRPC links (idp → authz
//! LoginFlow, authz → idp Sessions, rs → authz Introspection), Basic metadata off
//! (`grpc.basic_auth: false`), every certificate from the dev PKI (`tools/pki`). A browser
//! login, a client_credentials token and rs in introspection mode pass; on the wire, authz's
//! gRPC port refuses a caller without a client certificate, one from another CA, an expired
//! one and an unmapped identity, and a TLS 1.2 client fails its handshake with the TLS
//! 1.3-only public listener. The demo tool (`demo walk` with `--ca-file`, the https client
//! of `demo app` as well) walks every flow against the demo data over https, as against the
//! compose demo profile.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use demo::browser;
use proto::authz::v1::IntrospectRequest;
use proto::authz::v1::introspection_client::IntrospectionClient;
use reqwest::StatusCode;
use serde_json::Value;
use tonic::Code;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

use crate::code_flow::{authz_keys, cli, migrate, pairs, random, sha256_b64, write};
use crate::harness::{Service, free_port, https_client, https_client_builder};

const USERNAME: &str = "alice";
const PASSWORD: &str = "correct horse battery staple";
const REDIRECT_URI: &str = "https://rp.example.test/callback";
const RS_AUD: &str = "https://rs.example.test";
const SCOPE: &str = "openid profile items:read";
/// How tonic reports a call whose TLS handshake the server refused.
const HANDSHAKE_REFUSED: [Code; 3] = [Code::Unavailable, Code::Unknown, Code::Cancelled];

/// A leaf of `dir`'s CA for `name`, with `dns` names (plus `localhost` and 127.0.0.1),
/// server and client usage.
fn leaf(dir: &Path, name: &str, dns: &str, validity: pki::Validity) -> pki::LeafFiles {
    let mut options = pki::IssueOptions::new(dir, name).unwrap();
    options.dns = vec![dns.to_owned(), "localhost".to_owned()];
    options.ips = vec!["127.0.0.1".parse().unwrap()];
    options.validity = validity;
    pki::issue(&options).unwrap()
}

fn current() -> pki::Validity {
    pki::Validity::days_from_now(30).unwrap()
}

/// `<PREFIX>__<LISTENER>__TLS__CERT_FILE` / `KEY_FILE` for every listener of a service.
fn listener_tls(prefix: &str, listeners: &[&str], leaf: &pki::LeafFiles) -> Vec<(String, String)> {
    let mut env = Vec::new();
    for listener in listeners {
        env.push((
            format!("{prefix}__{listener}__TLS__CERT_FILE"),
            leaf.fullchain.display().to_string(),
        ));
        env.push((
            format!("{prefix}__{listener}__TLS__KEY_FILE"),
            leaf.key.display().to_string(),
        ));
    }
    env
}

/// The client side of a gRPC link: the CA for the server, `leaf` for mTLS.
fn client_tls(prefix: &str, ca: &Path, leaf: &pki::LeafFiles) -> Vec<(String, String)> {
    pairs(&[
        (
            &format!("{prefix}__TLS__CA_FILE"),
            &ca.display().to_string(),
        ),
        (
            &format!("{prefix}__TLS__CERT_FILE"),
            &leaf.fullchain.display().to_string(),
        ),
        (
            &format!("{prefix}__TLS__KEY_FILE"),
            &leaf.key.display().to_string(),
        ),
    ])
}

/// `Introspection.Introspect` at `url` over TLS verified against `ca`, presenting
/// `identity` when given; no Basic metadata.
async fn introspect(
    url: &str,
    ca: &Path,
    identity: Option<&pki::LeafFiles>,
    token: &str,
) -> Result<bool, tonic::Status> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(std::fs::read(ca).unwrap()))
        .domain_name("localhost");
    if let Some(leaf) = identity {
        tls = tls.identity(Identity::from_pem(
            std::fs::read(&leaf.fullchain).unwrap(),
            std::fs::read(&leaf.key).unwrap(),
        ));
    }
    let channel = Endpoint::from_shared(url.to_owned())
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect_lazy();
    IntrospectionClient::new(channel)
        .introspect(IntrospectRequest {
            token: token.to_owned(),
            token_type_hint: String::new(),
        })
        .await
        .map(|answer| answer.into_inner().active)
}

/// A TLS handshake with `addr` offering only TLS 1.2, trusting `ca`.
async fn tls12_handshake(addr: std::net::SocketAddr, ca: &Path) -> Result<(), std::io::Error> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await
        .map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_everywhere_and_mtls_between_the_services() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    let pki_dir = dir.join("pki");
    let ca_files = pki::init(&pki::InitOptions::new(&pki_dir)).unwrap();
    let ca: PathBuf = ca_files.ca_pem.clone();
    let authz_leaf = leaf(&pki_dir, "authz", "authz", current());
    let idp_leaf = leaf(&pki_dir, "idp", "idp", current());
    let rs_leaf = leaf(&pki_dir, "rs", "rs", current());

    let (authz_http, authz_grpc, idp_http, idp_grpc) =
        (free_port(), free_port(), free_port(), free_port());
    let issuer = format!("https://localhost:{authz_http}");
    let idp_url = format!("https://localhost:{idp_http}");
    let authz_grpc_url = format!("https://localhost:{authz_grpc}");

    let password = write(dir, "password", PASSWORD);
    let mut authz_env = authz_keys();
    authz_env.extend(pairs(&[(
        "AUTHZ__DATABASE__URL",
        &format!("sqlite://{}/authz.db", dir.display()),
    )]));
    migrate("authz", &authz_env);
    // idp's LoginFlow client and the introspecting client of rs: no secret is ever sent,
    // their certificates authenticate them.
    cli(
        "authz",
        &authz_env,
        &[
            "clients", "create", "--id", "idp", "--name", "idp", "--json",
        ],
    );
    cli(
        "authz",
        &authz_env,
        &[
            "clients",
            "create",
            "--id",
            "rs",
            "--name",
            "rs",
            "--introspect",
            "true",
            "--json",
        ],
    );
    let rp_secret = cli(
        "authz",
        &authz_env,
        &[
            "clients",
            "create",
            "--id",
            "rp",
            "--name",
            "TLS RP",
            "--grant-type",
            "authorization_code",
            "--grant-type",
            "client_credentials",
            "--scope",
            SCOPE,
            "--redirect-uri",
            REDIRECT_URI,
            "--audience",
            RS_AUD,
            "--json",
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
            USERNAME,
            "--email",
            "alice@example.test",
            "--password-file",
            &password,
            "--json",
        ],
    );

    authz_env.extend(pairs(&[
        ("AUTHZ__ISSUER", &issuer),
        ("AUTHZ__HTTP__PORT", &authz_http.to_string()),
        ("AUTHZ__GRPC__PORT", &authz_grpc.to_string()),
        (
            "AUTHZ__GRPC__TLS__CLIENT_CA_FILE",
            &ca.display().to_string(),
        ),
        ("AUTHZ__GRPC__IDENTITIES__IDP", "idp"),
        ("AUTHZ__GRPC__IDENTITIES__RS", "rs"),
        ("AUTHZ__GRPC__BASIC_AUTH", "false"),
        ("AUTHZ__LOGIN__IDP_CLIENT_ID", "idp"),
        ("AUTHZ__IDP__PUBLIC_URL", &idp_url),
        (
            "AUTHZ__IDP__GRPC_URL",
            &format!("https://localhost:{idp_grpc}"),
        ),
        ("AUTHZ__IDP__CLIENT_ID", "authz"),
    ]));
    authz_env.extend(listener_tls(
        "AUTHZ",
        &["HTTP", "GRPC", "ADMIN"],
        &authz_leaf,
    ));
    authz_env.extend(client_tls("AUTHZ__IDP", &ca, &authz_leaf));
    let authz = Service::start_tls("authz", dir, &authz_env, &ca).await;

    let mut idp_env = pairs(&[
        ("IDP__PUBLIC_URL", &idp_url),
        ("IDP__HTTP__PORT", &idp_http.to_string()),
        ("IDP__GRPC__PORT", &idp_grpc.to_string()),
        ("IDP__GRPC__TLS__CLIENT_CA_FILE", &ca.display().to_string()),
        ("IDP__GRPC__IDENTITIES__AUTHZ", "authz"),
        ("IDP__GRPC__BASIC_AUTH", "false"),
        ("IDP__AUTHZ__GRPC_URL", &authz_grpc_url),
        ("IDP__AUTHZ__CLIENT_ID", "idp"),
        ("IDP__SESSIONS_API__CLIENT_ID", "authz"),
        (
            "IDP__CSRF__KEY",
            "c2VjcmV0LWNzcmYta2V5LWZvci10aGUtdGxzLXRlc3QhIQ==",
        ),
    ]);
    idp_env.extend(listener_tls("IDP", &["HTTP", "GRPC", "ADMIN"], &idp_leaf));
    idp_env.extend(client_tls("IDP__AUTHZ", &ca, &idp_leaf));
    let idp = Service::start_tls("idp", dir, &idp_env, &ca).await;

    let mut rs_env = pairs(&[
        ("RS__GUARD__MODE", "introspection"),
        ("RS__GUARD__ISSUER", &issuer),
        ("RS__GUARD__AUDIENCE", RS_AUD),
        ("RS__GUARD__INTROSPECTION__ENDPOINT", &authz_grpc_url),
        ("RS__GUARD__INTROSPECTION__CACHE_TTL", "0s"),
    ]);
    rs_env.extend(listener_tls("RS", &["HTTP", "ADMIN"], &rs_leaf));
    rs_env.extend(client_tls("RS__GUARD__INTROSPECTION", &ca, &rs_leaf));
    let rs = Service::start_tls("rs", dir, &rs_env, &ca).await;
    assert!(authz.url("admin").starts_with("https://"));
    assert!(idp.url("http").starts_with("https://"));

    // Discovery over https, verified against the demo CA only.
    let http = https_client(&ca);
    let doc: Value = http
        .get(format!("{issuer}/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["issuer"], issuer.as_str());
    // A client without the CA does not get through.
    let untrusting = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .build()
        .unwrap();
    assert!(
        untrusting
            .get(format!("{issuer}/.well-known/openid-configuration"))
            .send()
            .await
            .is_err()
    );

    // 1. Browser login: authorize → idp login (LoginFlow over mTLS) → consent → code, then
    //    the code for tokens (the ID token's claims come over Sessions, mTLS too).
    let mut browser = browser::Browser::new(
        https_client_builder(&ca)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    );
    let (state, nonce, verifier) = (random(), random(), random());
    let challenge = sha256_b64(verifier.as_bytes());
    let authorize = reqwest::Url::parse_with_params(
        doc["authorization_endpoint"].as_str().unwrap(),
        [
            ("response_type", "code"),
            ("client_id", "rp"),
            ("redirect_uri", REDIRECT_URI),
            ("scope", SCOPE),
            ("state", &state),
            ("nonce", &nonce),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    )
    .unwrap();
    let first = browser.get(&authorize).await.unwrap();
    let (callback, filled) = browser
        .through_login(first, REDIRECT_URI, USERNAME, PASSWORD)
        .await
        .unwrap();
    assert_eq!(filled, ["login", "consent"]);
    let params: std::collections::HashMap<String, String> =
        callback.query_pairs().into_owned().collect();
    assert_eq!(params["state"], state);
    assert_eq!(params["iss"], issuer);
    let res = http
        .post(doc["token_endpoint"].as_str().unwrap())
        .basic_auth("rp", Some(&rp_secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", params["code"].as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let tokens: Value = res.json().await.unwrap();
    assert!(tokens["id_token"].is_string(), "{tokens}");
    let userinfo: Value = http
        .get(doc["userinfo_endpoint"].as_str().unwrap())
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(userinfo["sub"].is_string(), "{userinfo}");

    // 2. client_credentials over https, 3. rs (introspection mode, over mTLS) accepts it.
    let res = http
        .post(doc["token_endpoint"].as_str().unwrap())
        .basic_auth("rp", Some(&rp_secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "items:read"),
            ("resource", RS_AUD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let m2m: Value = res.json().await.unwrap();
    let token = m2m["access_token"].as_str().unwrap().to_owned();
    let res = http
        .get(format!("{}/api/v1/me", rs.url("http")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{}", rs.logs());
    let me: Value = res.json().await.unwrap();
    assert_eq!(me["sub"], "rp", "{me}");
    let res = http
        .get(format!("{}/api/v1/me", rs.url("http")))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // Refusals on authz's gRPC port. The mapped certificate works (control).
    assert!(
        introspect(&authz_grpc_url, &ca, Some(&rs_leaf), &token)
            .await
            .unwrap()
    );
    // No client certificate (and Basic is off): UNAUTHENTICATED.
    let refused = introspect(&authz_grpc_url, &ca, None, &token)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    // A certificate of this CA whose SANs map to no client: UNAUTHENTICATED.
    let stranger = leaf(&pki_dir, "stranger", "stranger", current());
    let refused = introspect(&authz_grpc_url, &ca, Some(&stranger), &token)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    // The mapped name `rs`, but from another CA: refused in the handshake (tonic reports the
    // TLS alert as UNAVAILABLE, UNKNOWN or, under TLS 1.3, CANCELLED).
    let other_dir = dir.join("other-pki");
    pki::init(&pki::InitOptions::new(&other_dir)).unwrap();
    let forged = leaf(&other_dir, "rs", "rs", current());
    let refused = introspect(&authz_grpc_url, &ca, Some(&forged), &token)
        .await
        .unwrap_err();
    assert!(HANDSHAKE_REFUSED.contains(&refused.code()), "{refused:?}");
    // The mapped name `rs` from this CA, but expired: refused in the handshake.
    let now = time::OffsetDateTime::now_utc();
    let expired = leaf(
        &pki_dir,
        "rs-expired",
        "rs",
        pki::Validity {
            not_before: now - time::Duration::days(10),
            not_after: now - time::Duration::days(1),
        },
    );
    let refused = introspect(&authz_grpc_url, &ca, Some(&expired), &token)
        .await
        .unwrap_err();
    assert!(HANDSHAKE_REFUSED.contains(&refused.code()), "{refused:?}");

    // TLS 1.2 against the TLS 1.3-only listeners: the handshake fails; TLS 1.3 works.
    for addr in [authz.addr("http"), authz.addr("grpc"), idp.addr("admin")] {
        let error = tls12_handshake(addr, &ca).await.unwrap_err();
        assert!(
            error.to_string().to_lowercase().contains("protocol")
                || error.to_string().to_lowercase().contains("version"),
            "{addr}: {error}"
        );
    }
    let status = http
        .get(format!("{}/readyz", authz.url("admin")))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::OK);
}

/// The compose demo profile's shape on this machine: authz and idp run `serve --demo` (the
/// demo clients and user) with https on their public listeners and mTLS on the gRPC links,
/// rs in hybrid mode fetches discovery and the JWKS over https trusting the CA
/// (`guard.jwks.ca_file`); `demo walk --ca-file` then passes every step over https, and
/// without `--ca-file` it trusts no server; `demo app` with `DEMO_CA_FILE` signs the demo
/// user in through the https pages and calls rs over https.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_walk_over_https_trusts_the_ca_file() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    let pki_dir = dir.join("pki");
    let ca: PathBuf = pki::init(&pki::InitOptions::new(&pki_dir)).unwrap().ca_pem;
    let authz_leaf = leaf(&pki_dir, "authz", "authz", current());
    let idp_leaf = leaf(&pki_dir, "idp", "idp", current());
    let rs_leaf = leaf(&pki_dir, "rs", "rs", current());
    let (authz_http, authz_grpc, idp_http, idp_grpc, rs_http, app_port) = (
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    let app_url = format!("http://localhost:{app_port}/");
    let issuer = format!("https://localhost:{authz_http}");
    let idp_url = format!("https://localhost:{idp_http}");
    let authz_grpc_url = format!("https://localhost:{authz_grpc}");
    let rs_url = format!("https://localhost:{rs_http}");

    let mut authz_env = authz_keys();
    authz_env.extend(pairs(&[(
        "AUTHZ__DATABASE__URL",
        &format!("sqlite://{}/authz.db", dir.display()),
    )]));
    migrate("authz", &authz_env);
    // idp's LoginFlow client (compose's authz-seed job); it authenticates by certificate.
    cli(
        "authz",
        &authz_env,
        &[
            "clients", "create", "--id", "idp", "--name", "idp", "--json",
        ],
    );
    authz_env.extend(pairs(&[
        ("AUTHZ__ISSUER", &issuer),
        ("AUTHZ__HTTP__PORT", &authz_http.to_string()),
        ("AUTHZ__GRPC__PORT", &authz_grpc.to_string()),
        (
            "AUTHZ__GRPC__TLS__CLIENT_CA_FILE",
            &ca.display().to_string(),
        ),
        ("AUTHZ__GRPC__IDENTITIES__IDP", "idp"),
        ("AUTHZ__GRPC__IDENTITIES__RS", "demo-rs"),
        ("AUTHZ__GRPC__BASIC_AUTH", "false"),
        ("AUTHZ__LOGIN__IDP_CLIENT_ID", "idp"),
        ("AUTHZ__IDP__PUBLIC_URL", &idp_url),
        (
            "AUTHZ__IDP__GRPC_URL",
            &format!("https://localhost:{idp_grpc}"),
        ),
        ("AUTHZ__IDP__CLIENT_ID", "authz"),
    ]));
    authz_env.extend(listener_tls("AUTHZ", &["HTTP", "GRPC"], &authz_leaf));
    authz_env.extend(client_tls("AUTHZ__IDP", &ca, &authz_leaf));
    let demo = ["serve".to_owned(), "--demo".to_owned()];
    let authz_demo = [
        "serve".to_owned(),
        "--demo".to_owned(),
        "--demo-app-url".to_owned(),
        app_url.clone(),
    ];
    // Admin stays plain http, as in compose.
    let _authz = Service::start_with("authz", &authz_demo, dir, &authz_env).await;

    let mut idp_env = pairs(&[
        ("IDP__PUBLIC_URL", &idp_url),
        ("IDP__HTTP__PORT", &idp_http.to_string()),
        ("IDP__GRPC__PORT", &idp_grpc.to_string()),
        ("IDP__GRPC__TLS__CLIENT_CA_FILE", &ca.display().to_string()),
        ("IDP__GRPC__IDENTITIES__AUTHZ", "authz"),
        ("IDP__GRPC__BASIC_AUTH", "false"),
        ("IDP__AUTHZ__GRPC_URL", &authz_grpc_url),
        ("IDP__AUTHZ__CLIENT_ID", "idp"),
        ("IDP__SESSIONS_API__CLIENT_ID", "authz"),
        (
            "IDP__CSRF__KEY",
            "c2VjcmV0LWNzcmYta2V5LWZvci10aGUtdGxzLXRlc3QhIQ==",
        ),
    ]);
    idp_env.extend(listener_tls("IDP", &["HTTP", "GRPC"], &idp_leaf));
    idp_env.extend(client_tls("IDP__AUTHZ", &ca, &idp_leaf));
    let _idp = Service::start_with("idp", &demo, dir, &idp_env).await;

    let mut rs_env = pairs(&[
        ("RS__HTTP__PORT", &rs_http.to_string()),
        ("RS__GUARD__MODE", "hybrid"),
        ("RS__GUARD__ISSUER", &issuer),
        ("RS__GUARD__JWKS__CA_FILE", &ca.display().to_string()),
        ("RS__GUARD__INTROSPECTION__ENDPOINT", &authz_grpc_url),
        ("RS__GUARD__INTROSPECTION__CACHE_TTL", "0s"),
        // rs_delegate: the token exchange to authz and the downstream call, both over
        // https trusted through guard.jwks.ca_file.
        ("RS__EXCHANGE__ENABLED", "true"),
        ("RS__EXCHANGE__CLIENT_ID", "demo-rs"),
        ("RS__EXCHANGE__CLIENT_SECRET", "demo-rs-secret"),
    ]);
    rs_env.extend(listener_tls("RS", &["HTTP"], &rs_leaf));
    rs_env.extend(client_tls("RS__GUARD__INTROSPECTION", &ca, &rs_leaf));
    let _rs = Service::start_with("rs", &["serve".to_owned()], dir, &rs_env).await;

    let walk = {
        let (issuer, rs_url, app_url) = (issuer.clone(), rs_url.clone(), app_url.clone());
        move |extra: &[&str]| {
            let out = std::process::Command::new(crate::harness::binary("demo"))
                .current_dir(crate::harness::workspace())
                .args(["walk", "--json"])
                .args(["--issuer", &issuer, "--rs", &rs_url, "--app", &app_url])
                .args(extra)
                .env_remove("DEMO_CA_FILE")
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
                panic!(
                    "demo walk --json printed no JSON ({e}): {stdout}\n{}",
                    String::from_utf8_lossy(&out.stderr)
                )
            });
            (out.status.code(), report)
        }
    };
    let ca_arg = ca.display().to_string();
    let (code, report) = tokio::task::spawn_blocking({
        let walk = walk.clone();
        let ca_arg = ca_arg.clone();
        move || walk(&["--ca-file", &ca_arg])
    })
    .await
    .unwrap();
    let steps = report["steps"].as_array().unwrap();
    let failed: Vec<&Value> = steps.iter().filter(|s| s["ok"] != true).collect();
    assert!(failed.is_empty(), "failed steps over https: {failed:?}");
    assert_eq!(code, Some(0), "{report}");
    let names: Vec<&str> = steps.iter().map(|s| s["name"].as_str().unwrap()).collect();
    for name in [
        "discovery",
        "browser_login",
        "code_exchange",
        "rs_me",
        "revoke",
    ] {
        assert!(names.contains(&name), "no step {name}: {names:?}");
    }
    // Without the CA bundle the walk trusts no https server: discovery fails on the
    // certificate, and the walk exits 1.
    let (code, report) = tokio::task::spawn_blocking(move || walk(&[]))
        .await
        .unwrap();
    assert_eq!(code, Some(1), "{report}");
    let discovery = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "discovery")
        .unwrap()
        .clone();
    assert_eq!(discovery["ok"], false, "{report}");
    let detail = discovery["detail"].as_str().unwrap().to_ascii_lowercase();
    assert!(detail.contains("certificate"), "{discovery}");

    // The demo app (the demo binary the walk just ran) with the CA from DEMO_CA_FILE: a
    // sign-in through authz's and idp's https pages, then rs over https.
    let binary = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| crate::harness::workspace().join("target"), PathBuf::from)
        .join("debug/demo");
    let _app = tokio::process::Command::new(binary)
        .args(["app", "--listen", &format!("127.0.0.1:{app_port}")])
        .args([
            "--public-url",
            &app_url,
            "--issuer",
            &issuer,
            "--rs",
            &rs_url,
        ])
        .env("DEMO_CA_FILE", &ca)
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let browser_http = https_client_builder(&ca)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let health = browser_http.get(format!("{app_url}healthz")).send().await;
        if health.is_ok_and(|r| r.status() == StatusCode::OK) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "demo app not healthy");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let mut browser = browser::Browser::new(browser_http);
    let home = reqwest::Url::parse(&app_url).unwrap();
    let page = browser.get(&home).await.unwrap();
    assert_eq!(page.status, StatusCode::OK);
    let (page, filled) = crate::demo::sign_in(&mut browser, &app_url, &page, "web").await;
    assert!(filled.contains(&"login"), "{filled:?}");
    assert!(
        page.body.contains("Signed in as Demo User"),
        "{}",
        page.body
    );
    let form = browser::forms(&page.url, &page.body)
        .unwrap()
        .into_iter()
        .find(|f| f.action.path() == "/call" && f.field("what") == Some("me"))
        .unwrap_or_else(|| panic!("no call to rs on\n{}", page.body));
    let res = browser.submit(&form, &[]).await.unwrap();
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{res:?}");
    let page = browser.get(&home).await.unwrap();
    assert!(
        page.body.contains(&format!("GET {rs_url}/api/v1/me")) && page.body.contains("200 OK"),
        "{}",
        page.body
    );
}
