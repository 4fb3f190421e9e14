//! TLS listeners: start-up failures naming their key, limits over HTTPS, protocol versions,
//! certificate reload, PKCS#12 and mutual TLS on gRPC.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use config::Validate;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::test_pki::{Issued, TestPki, Validity, assert_handshake_refused};
use crate::tls::{ClientAuth, ServerTls};
use crate::{ConnectionCaps, LimitsConfig, ListenConfig, Shutdown, TlsConfig, TlsVersion};

fn client_config(
    ca: &Path,
    versions: &[&'static rustls::SupportedProtocolVersion],
    client: Option<&Issued>,
) -> Arc<rustls::ClientConfig> {
    let roots = crate::tls::load_roots("ca", ca).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match client {
        None => builder.with_no_client_auth(),
        Some(c) => {
            use rustls::pki_types::pem::PemObject;
            let chain = rustls::pki_types::CertificateDer::pem_file_iter(&c.cert_file)
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            let key = rustls::pki_types::PrivateKeyDer::from_pem_file(&c.key_file).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

async fn connect(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    tokio_rustls::TlsConnector::from(config)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
}

/// One request on `stream` (kept alive), and its whole answer.
async fn get(stream: &mut TlsStream<TcpStream>, path: &str) -> String {
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if got.len() >= end + 4 + length {
                return text;
            }
        }
        if n == 0 {
            return String::from_utf8_lossy(&got).into_owned();
        }
    }
}

/// The leaf certificate the server presented on `stream`.
fn presented(stream: &TlsStream<TcpStream>) -> Vec<u8> {
    stream.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

fn serve(tls: &TlsConfig, limits: &LimitsConfig, shutdown: &Shutdown) -> SocketAddr {
    let server_tls = ServerTls::new("http", tls, &[b"http/1.1"], ClientAuth::Required)
        .unwrap()
        .unwrap();
    server_tls.spawn_reload(shutdown.waiter());
    let (listener, addr) = crate::bind("http", &ListenConfig::loopback(0)).unwrap();
    let server = crate::http_server::http_server_tls(
        "http",
        listener,
        || {
            actix_web::App::new()
                .route("/hello", actix_web::web::get().to(|| async { "hello" }))
                .route(
                    "/echo",
                    actix_web::web::post().to(|body: actix_web::web::Bytes| async move {
                        format!("{} bytes", body.len())
                    }),
                )
        },
        1,
        crate::DEFAULT_MAX_BLOCKING_THREADS,
        Duration::from_secs(1),
        limits,
        ConnectionCaps::public(limits),
        Some(server_tls.config),
        None,
    )
    .unwrap();
    let handle = server.handle();
    tokio::spawn(server);
    let stop = shutdown.clone();
    tokio::spawn(async move {
        stop.wait().await;
        handle.stop(false).await;
    });
    addr
}

fn error_of(tls: TlsConfig) -> String {
    ListenConfig::loopback(0)
        .with_tls(tls)
        .validate()
        .map_err(|e| e.within("http"))
        .unwrap_err()
        .to_string()
}

/// Every start-up failure names the key at fault (the service prints it on one line and
/// exits 2, as for any configuration error).
#[test]
fn start_up_failures_name_their_key() {
    let pki = TestPki::new("startup").unwrap();
    let good = pki.server_tls("good").unwrap();
    assert!(
        ListenConfig::loopback(0)
            .with_tls(good.clone())
            .validate()
            .is_ok()
    );
    let other = pki.server_tls("other").unwrap();
    let missing = pki.dir().join("missing.pem");
    let cases = [
        (
            TlsConfig {
                cert_file: Some(missing.clone()),
                ..good.clone()
            },
            "http.tls.cert_file: cannot read",
        ),
        (
            TlsConfig {
                key_file: Some(pki.dir().to_path_buf()),
                ..good.clone()
            },
            "http.tls.key_file: cannot read",
        ),
        (
            TlsConfig {
                key_file: other.key_file.clone(),
                ..good.clone()
            },
            "http.tls.key_file: the private key does not belong to the certificate",
        ),
        (
            TlsConfig {
                key_file: None,
                ..good.clone()
            },
            "http.tls.key_file: required with cert_file",
        ),
        (
            TlsConfig {
                key_file: good.cert_file.clone(),
                ..good.clone()
            },
            "http.tls.key_file:",
        ),
        (
            TlsConfig {
                client_ca_file: Some(missing.clone()),
                ..good.clone()
            },
            "http.tls.client_ca_file: cannot read",
        ),
        (
            TlsConfig {
                client_ca_file: good.key_file.clone(),
                ..good.clone()
            },
            "http.tls.client_ca_file:",
        ),
        (
            TlsConfig {
                client_ca_file: Some(pki.ca_file().to_path_buf()),
                ..TlsConfig::default()
            },
            "http.tls.client_ca_file: needs TLS",
        ),
        (
            TlsConfig {
                pkcs12_file: Some(missing),
                ..good.clone()
            },
            "http.tls.pkcs12_file: set either",
        ),
    ];
    for (tls, wanted) in cases {
        let error = error_of(tls);
        assert!(
            error.starts_with(wanted),
            "{error} does not start with {wanted}"
        );
    }
    let expired = pki
        .issue("expired", &["localhost"], Validity::Expired)
        .unwrap();
    let error = error_of(TlsConfig {
        cert_file: Some(expired.cert_file),
        key_file: Some(expired.key_file),
        ..TlsConfig::default()
    });
    assert!(
        error.starts_with("http.tls.cert_file: the certificate expired on"),
        "{error}"
    );
    let early = pki
        .issue("early", &["localhost"], Validity::NotYetValid)
        .unwrap();
    let error = error_of(TlsConfig {
        cert_file: Some(early.cert_file),
        key_file: Some(early.key_file),
        ..TlsConfig::default()
    });
    assert!(
        error.starts_with("http.tls.cert_file: the certificate is not valid before"),
        "{error}"
    );
}

/// A PKCS#12 file (with its password file) serves like the PEM pair; a wrong password
/// names `pkcs12_file`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pkcs12_identity_serves_and_a_wrong_password_names_the_key() {
    use rustls::pki_types::pem::PemObject;
    let pki = TestPki::new("p12").unwrap();
    let issued = pki
        .issue("server", &["localhost", "127.0.0.1"], Validity::Current)
        .unwrap();
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from_pem_file(&issued.key_file).unwrap();
    let chain = rustls::pki_types::CertificateDer::pem_file_iter(&issued.cert_file)
        .unwrap()
        .map(|c| p12_keystore::Certificate::from_der(&c.unwrap()).unwrap())
        .collect::<Vec<_>>();
    let mut store = p12_keystore::KeyStore::new();
    store.add_entry(
        "server",
        p12_keystore::KeyStoreEntry::PrivateKeyChain(p12_keystore::PrivateKeyChain::new(
            key.secret_pkcs8_der(),
            [1u8; 20],
            chain,
        )),
    );
    let p12 = pki.dir().join("server.p12");
    std::fs::write(&p12, store.writer("pa55").write().unwrap()).unwrap();
    let password = pki.dir().join("password");
    std::fs::write(&password, "pa55\n").unwrap();
    let tls = TlsConfig {
        pkcs12_file: Some(p12),
        pkcs12_password_file: Some(password.clone()),
        ..TlsConfig::default()
    };
    let shutdown = Shutdown::new();
    let addr = serve(&tls, &LimitsConfig::default(), &shutdown);
    let config = client_config(pki.ca_file(), &[&rustls::version::TLS13], None);
    let mut stream = connect(addr, config).await.unwrap();
    assert_eq!(presented(&stream), issued.der);
    assert!(get(&mut stream, "/hello").await.ends_with("hello"));

    std::fs::write(&password, "wrong").unwrap();
    let error = error_of(tls);
    assert!(
        error.starts_with("http.tls.pkcs12_file: cannot open"),
        "{error}"
    );
    shutdown.trigger();
}

/// TLS 1.3 only by default: a TLS 1.2 client's handshake is refused; with `min_version:
/// "1.2"` it is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls12_client_is_refused_unless_min_version_allows_it() {
    let pki = TestPki::new("versions").unwrap();
    let shutdown = Shutdown::new();
    let tls13 = pki.server_tls("server13").unwrap();
    let strict = serve(&tls13, &LimitsConfig::default(), &shutdown);
    let tls12_client = client_config(pki.ca_file(), &[&rustls::version::TLS12], None);
    let refused = connect(strict, Arc::clone(&tls12_client)).await;
    assert!(
        refused.is_err(),
        "TLS 1.2 handshake accepted by a 1.3-only listener"
    );
    let mut modern = connect(
        strict,
        client_config(pki.ca_file(), &[&rustls::version::TLS13], None),
    )
    .await
    .unwrap();
    assert!(get(&mut modern, "/hello").await.ends_with("hello"));

    let lenient = serve(
        &TlsConfig {
            min_version: TlsVersion::Tls12,
            ..pki.server_tls("server12").unwrap()
        },
        &LimitsConfig::default(),
        &shutdown,
    );
    let mut old = connect(lenient, tls12_client).await.unwrap();
    assert_eq!(
        old.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    assert!(get(&mut old, "/hello").await.ends_with("hello"));
    shutdown.trigger();
}

/// A certificate rotated on disk serves the next handshakes within the reload interval
/// while a connection opened before keeps working; a broken new pair keeps the previous
/// certificate. Both are counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_certificate_is_picked_up_and_open_connections_survive() {
    let metrics = telemetry::prometheus().unwrap();
    let pki = TestPki::new("rotation").unwrap();
    let tls = TlsConfig {
        reload_interval: Duration::from_secs(1),
        ..pki.server_tls("server").unwrap()
    };
    let (Some(cert_file), Some(key_file)) = (tls.cert_file.clone(), tls.key_file.clone()) else {
        panic!("no files");
    };
    let shutdown = Shutdown::new();
    let addr = serve(&tls, &LimitsConfig::default(), &shutdown);
    let config = client_config(pki.ca_file(), &[&rustls::version::TLS13], None);
    let mut open = connect(addr, Arc::clone(&config)).await.unwrap();
    let first = presented(&open);
    assert!(get(&mut open, "/hello").await.ends_with("hello"));

    let next = pki
        .issue("next", &["localhost", "127.0.0.1"], Validity::Current)
        .unwrap();
    std::fs::copy(&next.key_file, &key_file).unwrap();
    std::fs::copy(&next.cert_file, &cert_file).unwrap();
    let started = Instant::now();
    loop {
        let stream = connect(addr, Arc::clone(&config)).await.unwrap();
        if presented(&stream) == next.der {
            break;
        }
        assert_eq!(presented(&stream), first);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "rotated certificate not served within the reload interval"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The connection opened before the rotation still answers.
    let answer = get(&mut open, "/hello").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // A key that does not match the new certificate: the previous pair stays.
    let broken = pki
        .issue("broken", &["localhost"], Validity::Current)
        .unwrap();
    std::fs::copy(&broken.cert_file, &cert_file).unwrap();
    let line = r#"tls_certificate_reloads_total{listener="http",outcome="failed"}"#;
    let started = Instant::now();
    while !metrics.render().lines().any(|l| l.starts_with(line)) {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "failed reload not counted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stream = connect(addr, Arc::clone(&config)).await.unwrap();
    assert_eq!(presented(&stream), next.der);
    let page = metrics.render();
    assert!(
        page.contains(r#"tls_certificate_reloads_total{listener="http",outcome="reloaded"} "#),
        "{page}"
    );
    shutdown.trigger();
}

/// HTTPS keeps the listener limits: the per-peer cap sheds with 503 + `Retry-After`, and a
/// stalled body is answered 408 at the request deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_keeps_the_listener_limits() {
    let pki = TestPki::new("limits").unwrap();
    let limits = LimitsConfig {
        request_timeout: Duration::from_millis(300),
        max_connections_per_peer: 1,
        retry_after: Duration::from_secs(7),
        ..LimitsConfig::default()
    };
    let shutdown = Shutdown::new();
    let addr = serve(&pki.server_tls("server").unwrap(), &limits, &shutdown);
    let config = client_config(pki.ca_file(), &[&rustls::version::TLS13], None);

    let mut stalled = connect(addr, Arc::clone(&config)).await.unwrap();
    stalled
        .write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc")
        .await
        .unwrap();
    let mut second = connect(addr, Arc::clone(&config)).await.unwrap();
    let shed = get(&mut second, "/hello").await;
    assert!(shed.starts_with("HTTP/1.1 503"), "{shed}");
    assert!(shed.contains("retry-after: 7"), "{shed}");

    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stalled.read_to_end(&mut got)).await;
    let timed_out = String::from_utf8_lossy(&got);
    assert!(timed_out.starts_with("HTTP/1.1 408"), "{timed_out}");
    shutdown.trigger();
}

/// gRPC over mutual TLS: a client with a certificate from the configured CA is served; a
/// client certificate from another CA, or an expired one, fails in the handshake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_mutual_tls_accepts_the_ca_and_refuses_others() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;

    let pki = TestPki::new("grpc").unwrap();
    let stranger = TestPki::new("stranger").unwrap();
    let tls = TlsConfig {
        client_ca_file: Some(pki.ca_file().to_path_buf()),
        ..pki.server_tls("server").unwrap()
    };
    let shutdown = Shutdown::new();
    let server_tls = ServerTls::new("grpc", &tls, &[b"h2"], ClientAuth::Optional)
        .unwrap()
        .unwrap();
    let (listener, addr) = crate::bind("grpc", &ListenConfig::loopback(0)).unwrap();
    let server = crate::GrpcServer::with_tls(
        crate::GrpcServices::new(&[]),
        listener,
        &shutdown,
        &LimitsConfig::default(),
        Some(server_tls.config),
    )
    .unwrap();
    tokio::spawn(server.serve);
    let url = format!("https://{addr}");
    let check = |client: crate::TlsClientConfig| {
        let url = url.clone();
        async move {
            let channel = client.endpoint("grpc_url", &url).unwrap().connect_lazy();
            HealthClient::new(channel)
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
        }
    };
    let member = pki
        .issue("member", &["member.internal"], Validity::Current)
        .unwrap();
    check(pki.client_tls(Some(&member))).await.unwrap();
    // Without a certificate the handshake succeeds (the services answer UNAUTHENTICATED
    // themselves); health needs no caller identity.
    check(pki.client_tls(None)).await.unwrap();

    let outsider = stranger
        .issue("outsider", &["member.internal"], Validity::Current)
        .unwrap();
    let refused = check(pki.client_tls(Some(&outsider))).await.unwrap_err();
    assert_handshake_refused(&refused);
    let expired = pki
        .issue("expired", &["member.internal"], Validity::Expired)
        .unwrap();
    let mut expired_client = pki.client_tls(None);
    expired_client.cert_file = Some(expired.cert_file.clone());
    expired_client.key_file = Some(expired.key_file.clone());
    // The client side refuses to configure an expired certificate at start…
    assert!(expired_client.validate_for(&url).is_err());
    // …and the server refuses one presented anyway.
    let config = client_config(pki.ca_file(), &[&rustls::version::TLS13], Some(&expired));
    let mut h2 = (*config).clone();
    h2.alpn_protocols = vec![b"h2".to_vec()];
    let handshake = connect(addr, Arc::new(h2)).await;
    let refused = match handshake {
        Err(_) => true,
        // TLS 1.3: the client learns of the refusal on its first read.
        Ok(mut stream) => {
            let _ = stream.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await;
            let mut buf = [0u8; 64];
            matches!(
                tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await,
                Ok(Err(_) | Ok(0))
            )
        }
    };
    assert!(refused, "an expired client certificate was accepted");

    // A server certificate from another CA is refused by the client.
    let wrong_ca = crate::TlsClientConfig {
        ca_file: Some(stranger.ca_file().to_path_buf()),
        ..pki.client_tls(Some(&member))
    };
    let refused = check(wrong_ca).await.unwrap_err();
    assert_handshake_refused(&refused);
    shutdown.trigger();
}

/// `min_version` reads `"1.2"`/`"1.3"` quoted or not (environment variables arrive as
/// numbers) and refuses anything else.
#[test]
fn min_version_reads_quoted_and_unquoted_versions() {
    for (raw, wanted) in [
        (serde_json::json!("1.2"), TlsVersion::Tls12),
        (serde_json::json!(1.2), TlsVersion::Tls12),
        (serde_json::json!("1.3"), TlsVersion::Tls13),
        (serde_json::json!(1.3), TlsVersion::Tls13),
    ] {
        assert_eq!(serde_json::from_value::<TlsVersion>(raw).unwrap(), wanted);
    }
    for bad in [
        serde_json::json!("1.1"),
        serde_json::json!(1.0),
        serde_json::json!("tls13"),
    ] {
        assert!(serde_json::from_value::<TlsVersion>(bad).is_err());
    }
    assert_eq!(
        serde_json::to_value(TlsVersion::Tls12).unwrap(),
        serde_json::json!("1.2")
    );
}

/// A listener that requests client certificates (RFC 8705 §2 on authz's public listener)
/// requires none, accepts a certificate of its CA, of another CA and a self-signed one
/// alike, and hands each to the application with whether its chain verified against
/// `client_ca_file`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_requesting_certificates_reports_them_and_requires_none() {
    let pki = TestPki::new("clients").unwrap();
    let stranger = TestPki::new("stranger").unwrap();
    let tls = TlsConfig {
        client_ca_file: Some(pki.ca_file().to_path_buf()),
        ..pki.server_tls("server").unwrap()
    };
    let server_tls = ServerTls::new("http", &tls, &[b"http/1.1"], ClientAuth::Request)
        .unwrap()
        .unwrap();
    let (listener, addr) = crate::bind("http", &ListenConfig::loopback(0)).unwrap();
    let limits = LimitsConfig::default();
    let server = crate::http_server::http_server_tls(
        "http",
        listener,
        || {
            actix_web::App::new().route(
                "/who",
                actix_web::web::get().to(|req: actix_web::HttpRequest| async move {
                    match req.conn_data::<crate::PeerCertificate>() {
                        None => "none".to_owned(),
                        Some(peer) => format!(
                            "{}:{}",
                            peer.der
                                .iter()
                                .map(|b| format!("{b:02x}"))
                                .collect::<String>(),
                            peer.chain_verified
                        ),
                    }
                }),
            )
        },
        1,
        crate::DEFAULT_MAX_BLOCKING_THREADS,
        Duration::from_secs(1),
        &limits,
        ConnectionCaps::public(&limits),
        Some(server_tls.config),
        server_tls.report,
    )
    .unwrap();
    let handle = server.handle();
    tokio::spawn(server);
    let hex = |der: &[u8]| der.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let who = |client: Option<Issued>| {
        let config = client_config(pki.ca_file(), &[&rustls::version::TLS13], client.as_ref());
        async move {
            let mut stream = connect(addr, config).await.unwrap();
            let answer = get(&mut stream, "/who").await;
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
            answer.rsplit("\r\n\r\n").next().unwrap().to_owned()
        }
    };
    assert_eq!(who(None).await, "none");
    let member = pki
        .issue("member", &["member.example.test"], Validity::Current)
        .unwrap();
    assert_eq!(
        who(Some(member.clone())).await,
        format!("{}:true", hex(&member.der))
    );
    let outsider = stranger
        .issue("outsider", &["member.example.test"], Validity::Current)
        .unwrap();
    assert_eq!(
        who(Some(outsider.clone())).await,
        format!("{}:false", hex(&outsider.der))
    );
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["self.example.test".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let own = Issued {
        cert_file: dir.path().join("self.pem"),
        key_file: dir.path().join("self.key"),
        der: cert.der().to_vec(),
    };
    std::fs::write(&own.cert_file, cert.pem()).unwrap();
    std::fs::write(&own.key_file, key.serialize_pem()).unwrap();
    assert_eq!(
        who(Some(own.clone())).await,
        format!("{}:false", hex(&own.der))
    );
    handle.stop(false).await;
}
