//! Mutual TLS on idp's gRPC listener (issue 16): authz's client certificate, its identity
//! mapped by `grpc.identities` to `sessions_api.client_id`, authenticates it without a
//! secret; no certificate, an unmapped identity, or Basic metadata with `basic_auth: false`
//! → `UNAUTHENTICATED`; a certificate from another CA is refused in the handshake.

use std::collections::BTreeMap;

use proto::idp::v1::CheckSessionRequest;
use proto::idp::v1::sessions_client::SessionsClient;
use runtime::test_pki::{TestPki, Validity, assert_handshake_refused};
use runtime::{TlsClientConfig, TlsConfig};
use storage::testing::TestDatabase;
use tonic::Code;

use crate::harness::{SESSIONS_API_SECRET, start};

async fn check(
    grpc: std::net::SocketAddr,
    tls: TlsClientConfig,
    basic: bool,
) -> Result<bool, tonic::Status> {
    let url = format!("https://{grpc}");
    let channel = tls.endpoint("grpc_url", &url).unwrap().connect_lazy();
    let mut request = tonic::Request::new(CheckSessionRequest {
        session_id: "no-such-session".into(),
    });
    if basic {
        request.metadata_mut().insert(
            "authorization",
            domain::basic::encode("authz", SESSIONS_API_SECRET)
                .parse()
                .unwrap(),
        );
    }
    SessionsClient::new(channel)
        .check_session(request)
        .await
        .map(|answer| answer.into_inner().active)
}

async fn authz_authenticates_by_its_certificate(db: TestDatabase) {
    let pki = TestPki::new("idp-mtls").unwrap();
    let stranger = TestPki::new("stranger").unwrap();
    let server_tls = TlsConfig {
        client_ca_file: Some(pki.ca_file().to_path_buf()),
        ..pki.server_tls("idp").unwrap()
    };
    let identities = BTreeMap::from([("authz.internal".to_owned(), "authz".to_owned())]);
    let idp = start(db, |c| {
        c.grpc.tls = server_tls;
        c.grpc.identities = identities;
        c.grpc.basic_auth = false;
    })
    .await;
    let grpc: std::net::SocketAddr = idp.grpc.trim_start_matches("http://").parse().unwrap();

    let authz = pki
        .issue("authz", &["authz.internal"], Validity::Current)
        .unwrap();
    assert!(
        !check(grpc, pki.client_tls(Some(&authz)), false)
            .await
            .unwrap()
    );

    let refused = check(grpc, pki.client_tls(None), false).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    // basic_auth is off: the right secret is not enough.
    let refused = check(grpc, pki.client_tls(None), true).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    let other = pki
        .issue("other", &["rs.internal"], Validity::Current)
        .unwrap();
    let refused = check(grpc, pki.client_tls(Some(&other)), false)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    let forged = stranger
        .issue("authz", &["authz.internal"], Validity::Current)
        .unwrap();
    let refused = check(grpc, pki.client_tls(Some(&forged)), false)
        .await
        .unwrap_err();
    assert_handshake_refused(&refused);
}

storage::backend_tests!(idp::MIGRATIONS;
    authz_authenticates_by_its_certificate,
);
