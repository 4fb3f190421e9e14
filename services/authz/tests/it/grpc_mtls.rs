//! Mutual TLS on authz's gRPC listener (issue 16): a caller whose client certificate
//! identity `grpc.identities` maps to a registered client is that client without a secret;
//! no certificate, an unmapped identity, an unregistered mapped client, or Basic metadata
//! with `basic_auth: false` → `UNAUTHENTICATED`; a certificate from another CA or an
//! expired one is refused in the handshake.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use authz::clients::{Client, Clients, NewClient};
use authz::{Application, AuthzConfig};
use domain::{AccessTokenFormat, ClientId, GrantType, ScopeSet, TokenEndpointAuthMethod};
use issuer::SystemClock;
use proto::authz::v1::IntrospectRequest;
use proto::authz::v1::introspection_client::IntrospectionClient;
use runtime::test_pki::{TestPki, Validity, assert_handshake_refused};
use runtime::{GrpcListenConfig, ListenConfig, Shutdown, TlsClientConfig, TlsConfig};
use storage::Database;
use storage::testing::TestDatabase;
use tonic::Code;

use crate::cli::TEST_KEK;

const SECRET: &str = "mtls-test-secret";

fn client(id: &str, introspect: bool) -> Client {
    Client {
        id: ClientId::parse(id).unwrap(),
        name: id.to_owned(),
        auth_method: TokenEndpointAuthMethod::ClientSecretBasic,
        redirect_uris: Vec::new(),
        post_logout_redirect_uris: Vec::new(),
        grant_types: vec![GrantType::ClientCredentials],
        scopes: ScopeSet::parse("api:read").unwrap(),
        audiences: vec!["https://api.example.test".into()],
        access_token_format: AccessTokenFormat::Opaque,
        access_token_ttl: 600,
        refresh_token_ttl: 3600,
        id_token_ttl: 600,
        signing_alg: None,
        first_party: false,
        can_introspect: introspect,
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

struct Server {
    grpc: std::net::SocketAddr,
    http: std::net::SocketAddr,
    shutdown: Shutdown,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

async fn start(db: &TestDatabase, pki: &TestPki, basic_auth: bool) -> Server {
    let identities = BTreeMap::from([
        ("rs.internal".to_owned(), "rs".to_owned()),
        ("spiffe://test/ghost".to_owned(), "ghost".to_owned()),
    ]);
    let mut config = AuthzConfig {
        issuer: "http://127.0.0.1:9/".to_owned(),
        http: ListenConfig::loopback(0),
        grpc: GrpcListenConfig {
            tls: TlsConfig {
                client_ca_file: Some(pki.ca_file().to_path_buf()),
                ..pki.server_tls("authz").unwrap()
            },
            identities,
            basic_auth,
            ..GrpcListenConfig::loopback(0)
        },
        admin: ListenConfig::loopback(0),
        database: db.config().clone(),
        ..AuthzConfig::default()
    };
    config.keys.encryption_key = Some(config::Secret::new(TEST_KEK.to_owned()));
    config.clients.cache_ttl = Duration::ZERO;
    let shutdown = Shutdown::new();
    let app = Application::build_with_clock(config, shutdown.clone(), Arc::new(SystemClock))
        .await
        .unwrap();
    let addrs = app.addresses();
    tokio::spawn(app.run());
    Server {
        grpc: addrs.grpc.unwrap(),
        http: addrs.http,
        shutdown,
    }
}

async fn introspect(
    server: &Server,
    tls: TlsClientConfig,
    basic: Option<(&str, &str)>,
    token: &str,
) -> Result<bool, tonic::Status> {
    let url = format!("https://{}", server.grpc);
    let channel = tls.endpoint("grpc_url", &url).unwrap().connect_lazy();
    let mut request = tonic::Request::new(IntrospectRequest {
        token: token.to_owned(),
        token_type_hint: String::new(),
    });
    if let Some((id, secret)) = basic {
        request.metadata_mut().insert(
            "authorization",
            domain::basic::encode(id, secret).parse().unwrap(),
        );
    }
    IntrospectionClient::new(channel)
        .introspect(request)
        .await
        .map(|answer| answer.into_inner().active)
}

async fn mapped_client_certificates_authenticate_callers(db: TestDatabase) {
    let pki = TestPki::new("authz-mtls").unwrap();
    let stranger = TestPki::new("stranger").unwrap();
    let pool = Database::connect(db.config(), &authz::MIGRATIONS)
        .await
        .unwrap();
    let clients = Clients::new(pool, Arc::new(SystemClock), Duration::ZERO);
    for (id, introspect) in [("rs", true), ("svc", false)] {
        clients
            .create(NewClient {
                client: client(id, introspect),
                secret: Some(SECRET.to_owned()),
            })
            .await
            .unwrap();
    }
    let server = start(&db, &pki, true).await;
    let token: serde_json::Value = reqwest::Client::new()
        .post(format!("http://{}/token", server.http))
        .header("authorization", domain::basic::encode("svc", SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();

    let rs = pki
        .issue("rs", &["rs.internal"], Validity::Current)
        .unwrap();
    // The certificate alone authenticates rs: its token answer is active.
    assert!(
        introspect(&server, pki.client_tls(Some(&rs)), None, &token)
            .await
            .unwrap()
    );
    // Basic metadata still works where basic_auth is on (dev), over TLS.
    assert!(
        introspect(&server, pki.client_tls(None), Some(("rs", SECRET)), &token)
            .await
            .unwrap()
    );
    // No certificate and no credentials.
    let refused = introspect(&server, pki.client_tls(None), None, &token)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    // A certificate of the CA whose identity is not mapped.
    let unmapped = pki
        .issue("unmapped", &["other.internal"], Validity::Current)
        .unwrap();
    let refused = introspect(&server, pki.client_tls(Some(&unmapped)), None, &token)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    // Mapped (by URI SAN) to a client that is not registered.
    let ghost = pki
        .issue("ghost", &["spiffe://test/ghost"], Validity::Current)
        .unwrap();
    let refused = introspect(&server, pki.client_tls(Some(&ghost)), None, &token)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    // A certificate with the mapped identity from another CA: refused in the handshake.
    let forged = stranger
        .issue("rs", &["rs.internal"], Validity::Current)
        .unwrap();
    let refused = introspect(&server, pki.client_tls(Some(&forged)), None, &token)
        .await
        .unwrap_err();
    assert_handshake_refused(&refused);

    // mTLS only: Basic metadata with the right secret is refused, the certificate works.
    let strict = start(&db, &pki, false).await;
    let refused = introspect(&strict, pki.client_tls(None), Some(("rs", SECRET)), &token)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    assert!(
        introspect(&strict, pki.client_tls(Some(&rs)), None, &token)
            .await
            .unwrap()
    );
    // An expired certificate with the mapped identity: refused in the handshake.
    let expired = pki
        .issue("rs-expired", &["rs.internal"], Validity::Expired)
        .unwrap();
    let url = format!("https://{}", strict.grpc);
    let expired_tls = pki.client_tls(Some(&expired));
    assert!(expired_tls.validate_for(&url).is_err());
    let channel = tonic::transport::Endpoint::from_shared(url)
        .unwrap()
        .tls_config(
            tonic::transport::ClientTlsConfig::new()
                .ca_certificate(tonic::transport::Certificate::from_pem(
                    std::fs::read(pki.ca_file()).unwrap(),
                ))
                .identity(tonic::transport::Identity::from_pem(
                    std::fs::read(&expired.cert_file).unwrap(),
                    std::fs::read(&expired.key_file).unwrap(),
                ))
                .domain_name("localhost"),
        )
        .unwrap()
        .connect_lazy();
    let refused = IntrospectionClient::new(channel)
        .introspect(IntrospectRequest {
            token,
            token_type_hint: String::new(),
        })
        .await
        .unwrap_err();
    assert_handshake_refused(&refused);
}

storage::backend_tests!(
    authz::MIGRATIONS;
    mapped_client_certificates_authenticate_callers,
);
