//! The load generator's bounds, run as the real binary against a minimal loopback server:
//! it stops after `--max-requests` measured requests even when `--duration` is far away,
//! and it refuses targets that are not on this machine. `loadgen login` against a fake authz
//! and idp counts a login only on a 200 token answer with an access token; `loadgen argon2`
//! stops at its bound.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// An HTTP/1.1 keep-alive server answering `200 ok` to every request, counting them.
fn server() -> (String, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let served = Arc::new(AtomicU64::new(0));
    let count = Arc::clone(&served);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let count = Arc::clone(&count);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                loop {
                    line.clear();
                    match reader.read_line(&mut line) {
                        Ok(0) | Err(_) => return,
                        Ok(_) if line == "\r\n" => {
                            count.fetch_add(1, Ordering::SeqCst);
                            let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                            if stream.write_all(reply).is_err() {
                                return;
                            }
                        }
                        Ok(_) => {}
                    }
                }
            });
        }
    });
    (url, served)
}

#[test]
fn stops_at_max_requests_long_before_the_duration() {
    let (url, served) = server();
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            &url,
            "--connections",
            "4",
            "--warmup",
            "0s",
            "--duration",
            "60s",
            "--max-requests",
            "200",
            "--expect",
            "ok",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the request budget did not end the run"
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["requests"], 200, "{report}");
    assert_eq!(report["ok"], 200, "{report}");
    assert!(report["seconds"].as_f64().unwrap() < 30.0, "{report}");
    assert_eq!(served.load(Ordering::SeqCst), 200);
}

#[test]
fn refuses_targets_off_this_machine() {
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["http://192.0.2.1:8080/", "--duration", "1s"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}

/// One parsed request of the fake login stack: method, target, body.
fn read_request(reader: &mut BufReader<std::net::TcpStream>) -> Option<(String, String, String)> {
    use std::io::Read;
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut length = 0;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 {
            return None;
        }
        if header == "\r\n" {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((method, target, String::from_utf8(body).ok()?))
}

fn param(query: &str, name: &str) -> String {
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
        .unwrap_or_default()
        .to_owned()
}

/// A fake authz + idp on one loopback port: `/authorize` redirects to a login page whose
/// form carries a CSRF token, a correct password redirects to the client's redirect URI
/// with a code, and `/token` answers the n-th exchange with `token(n)` (status, body).
/// Returns the issuer URL and the number of token requests served.
fn login_stack(token: fn(u64) -> (u16, &'static str)) -> (String, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let exchanges = Arc::new(AtomicU64::new(0));
    let count = Arc::clone(&exchanges);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let count = Arc::clone(&count);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                while let Some((method, target, body)) = read_request(&mut reader) {
                    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
                    let (status, location, body) = match (method.as_str(), path) {
                        ("GET", "/authorize") => {
                            assert_eq!(param(query, "code_challenge_method"), "S256");
                            assert_eq!(param(query, "prompt"), "login");
                            let to = format!("/login?state={}", param(query, "state"));
                            (302, to, String::new())
                        }
                        ("GET", "/login") => (
                            200,
                            String::new(),
                            format!(
                                "<form method=\"post\" action=\"/login\">\
                                 <input type=\"hidden\" name=\"csrf\" value=\"t0k\">\
                                 <input type=\"hidden\" name=\"state\" value=\"{}\">\
                                 <input name=\"username\"><input type=\"password\" name=\"password\">\
                                 </form>",
                                param(query, "state")
                            ),
                        ),
                        ("POST", "/login")
                            if param(&body, "csrf") == "t0k"
                                && param(&body, "password") == "demo-password" =>
                        {
                            let to = format!(
                                "http://localhost:3000/callback?code=c&state={}",
                                param(&body, "state")
                            );
                            (302, to, String::new())
                        }
                        ("POST", "/token") if param(&body, "code") == "c" => {
                            let n = count.fetch_add(1, Ordering::SeqCst);
                            let (status, body) = token(n);
                            (status, String::new(), body.to_owned())
                        }
                        _ => (403, String::new(), "refused".to_owned()),
                    };
                    let location = if location.is_empty() {
                        String::new()
                    } else {
                        format!("location: {location}\r\n")
                    };
                    let reply = format!(
                        "HTTP/1.1 {status} X\r\n{location}content-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if stream.write_all(reply.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (issuer, exchanges)
}

fn login_run(issuer: &str, max_logins: &str) -> (Option<i32>, serde_json::Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            "login",
            "--issuer",
            issuer,
            "--users",
            "2",
            "--warmup",
            "0s",
            "--duration",
            "60s",
            "--max-logins",
            max_logins,
            "--timeout",
            "5s",
        ])
        .output()
        .unwrap();
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code(), report)
}

#[test]
fn a_login_counts_only_on_a_200_token_answer_with_an_access_token() {
    // Of every four exchanges: one 200 with a token, one 400, one 200 without a token, one
    // 200 with an empty token.
    let (issuer, exchanges) = login_stack(|n| match n % 4 {
        0 => (200, r#"{"access_token":"at","token_type":"Bearer"}"#),
        1 => (400, r#"{"error":"invalid_grant"}"#),
        2 => (200, r#"{"token_type":"Bearer"}"#),
        _ => (200, r#"{"access_token":""}"#),
    });
    let started = Instant::now();
    let (code, report) = login_run(&issuer, "8");
    assert!(started.elapsed() < Duration::from_secs(30), "{report}");
    assert_eq!(exchanges.load(Ordering::SeqCst), 8, "{report}");
    assert_eq!(report["requests"], 8, "{report}");
    assert_eq!(report["ok"], 2, "{report}");
    assert_eq!(report["bad_status"], 2, "{report}");
    assert_eq!(report["bad_body"], 4, "{report}");
    assert_eq!(
        code,
        Some(3),
        "a run with failed logins is invalid: {report}"
    );

    let (issuer, exchanges) =
        login_stack(|_| (200, r#"{"access_token":"at","token_type":"Bearer"}"#));
    let (code, report) = login_run(&issuer, "6");
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["ok"], 6, "{report}");
    assert_eq!(exchanges.load(Ordering::SeqCst), 6, "{report}");
    assert!(report["rps"].as_f64().unwrap() > 0.0, "{report}");
}

#[test]
fn login_refuses_an_issuer_off_this_machine() {
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            "login",
            "--issuer",
            "http://192.0.2.1:8080",
            "--duration",
            "1s",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}

#[test]
fn argon2_hashes_within_its_bound_with_the_given_parameters() {
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            "argon2",
            "--seconds",
            "30",
            "--max-hashes",
            "3",
            "--memory-kib",
            "1024",
            "--iterations",
            "1",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["hashes"], 3, "{report}");
    assert_eq!(report["memory_kib"], 1024, "{report}");
    assert!(report["seconds"].as_f64().unwrap() < 30.0, "{report}");
    assert!(report["hashes_per_s"].as_f64().unwrap() > 0.0, "{report}");
}

/// A dev PKI with a server leaf for 127.0.0.1, in a temporary directory.
fn pki_with_server_leaf() -> (tempfile::TempDir, pki::LeafFiles) {
    let dir = tempfile::tempdir().unwrap();
    pki::init(&pki::InitOptions::new(dir.path())).unwrap();
    let mut leaf = pki::IssueOptions::new(dir.path(), "server").unwrap();
    leaf.dns = vec!["localhost".to_owned()];
    leaf.ips = vec!["127.0.0.1".parse().unwrap()];
    let files = pki::issue(&leaf).unwrap();
    (dir, files)
}

/// The keep-alive `200 ok` server of [`server`] over TLS (only `version`), counting
/// requests and completed handshakes.
fn tls_server(
    files: &pki::LeafFiles,
    version: &'static rustls::SupportedProtocolVersion,
) -> (String, Arc<AtomicU64>, Arc<AtomicU64>) {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(&files.fullchain)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(&files.key).unwrap();
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[version])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}/", listener.local_addr().unwrap());
    let served = Arc::new(AtomicU64::new(0));
    let handshakes = Arc::new(AtomicU64::new(0));
    let (count, shaken) = (Arc::clone(&served), Arc::clone(&handshakes));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let (count, shaken, config) =
                (Arc::clone(&count), Arc::clone(&shaken), Arc::clone(&config));
            std::thread::spawn(move || {
                let Ok(connection) = rustls::ServerConnection::new(config) else {
                    return;
                };
                let mut tls = rustls::StreamOwned::new(connection, stream);
                let mut line = String::new();
                let mut reader = Vec::new();
                let mut byte = [0u8; 1];
                let mut counted_handshake = false;
                loop {
                    use std::io::Read;
                    match tls.read(&mut byte) {
                        Ok(0) | Err(_) => return,
                        Ok(_) => reader.push(byte[0]),
                    }
                    if !counted_handshake && !tls.conn.is_handshaking() {
                        counted_handshake = true;
                        shaken.fetch_add(1, Ordering::SeqCst);
                    }
                    if byte[0] != b'\n' {
                        continue;
                    }
                    line.clear();
                    line.push_str(&String::from_utf8_lossy(&reader));
                    reader.clear();
                    if line == "\r\n" {
                        count.fetch_add(1, Ordering::SeqCst);
                        let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if tls.write_all(reply).and_then(|()| tls.flush()).is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (url, served, handshakes)
}

fn loadgen_https(url: &str, ca: &std::path::Path, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([url, "--ca", ca.to_str().unwrap(), "--warmup", "0s"])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn https_runs_over_tls13_keep_alive_connections_verified_against_the_ca() {
    let (dir, files) = pki_with_server_leaf();
    let (url, served, handshakes) = tls_server(&files, &rustls::version::TLS13);
    let out = loadgen_https(
        &url,
        &dir.path().join("ca.pem"),
        &[
            "--connections",
            "2",
            "--duration",
            "60s",
            "--max-requests",
            "100",
            "--expect",
            "ok",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], 100, "{report}");
    assert_eq!(served.load(Ordering::SeqCst), 100);
    assert_eq!(
        handshakes.load(Ordering::SeqCst),
        2,
        "one handshake per keep-alive connection"
    );
}

#[test]
fn https_refuses_another_ca_a_tls12_server_and_a_missing_ca() {
    let (_dir, files) = pki_with_server_leaf();
    let (other_dir, _) = pki_with_server_leaf();
    let other_ca = other_dir.path().join("ca.pem");
    let (url, served, _) = tls_server(&files, &rustls::version::TLS13);
    let out = loadgen_https(&url, &other_ca, &["--connections", "1", "--duration", "1s"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], 0, "{report}");
    assert!(report["socket_errors"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(served.load(Ordering::SeqCst), 0);

    let (dir, files) = pki_with_server_leaf();
    let (url, served, handshakes) = tls_server(&files, &rustls::version::TLS12);
    let out = loadgen_https(
        &url,
        &dir.path().join("ca.pem"),
        &["--connections", "1", "--duration", "1s"],
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "a TLS 1.2-only server is refused"
    );
    assert_eq!(served.load(Ordering::SeqCst), 0);
    assert_eq!(handshakes.load(Ordering::SeqCst), 0);

    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([url.as_str(), "--duration", "1s"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--ca"));
}
