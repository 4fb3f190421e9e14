//! `loadgen`: a bounded, closed-loop HTTP/1.1 load generator for `make bench`.
//!
//! Opens `--connections` keep-alive connections to one loopback target, each sending the
//! same request back to back for `--warmup` (discarded) then `--duration`, checks every
//! response (status 2xx and, with `--expect`, a body marker), and prints one JSON line with
//! req/s, p50/p99 latency and error counts. With `--metrics URL --route PATTERN` it also
//! reads the server's own `http_request_duration_seconds` histogram before and after, and
//! reports the mean server-side time per request.
//!
//! It is bounded in time and in requests (`--max-requests`, whichever ends first), and it
//! refuses non-loopback targets: load is only ever sent to this machine.
//!
//! `https://` targets are reached over TLS 1.3 only (rustls, ring), one handshake per
//! keep-alive connection, verifying the server against `--ca` (the name checked is
//! `--server-name`, or the target's IP address); `--cert`/`--key` present a client
//! certificate (mutual TLS, e.g. on authz's gRPC port).
//!
//! Two subcommands, chosen by the first argument: `loadgen login` (repeated browser
//! sign-ins, [`login`]) and `loadgen argon2` (the argon2id hash rate of one thread,
//! [`hashes`]).

mod hashes;
mod login;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

/// Command line.
#[derive(Debug, Parser)]
#[command(name = "loadgen", about)]
struct Args {
    /// Target URL, e.g. http://127.0.0.1:8080/.well-known/jwks.json or https://… (loopback only).
    url: String,
    /// PEM CA bundle that signs the server's certificate (required for https:// targets).
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Name checked in the server's certificate (default: the target's IP address).
    #[arg(long)]
    server_name: Option<String>,
    /// PEM client certificate chain for mutual TLS (with --key).
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// PEM private key of --cert.
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// HTTP method.
    #[arg(long, default_value = "GET")]
    method: String,
    /// Form body (sent as application/x-www-form-urlencoded).
    #[arg(long)]
    form: Option<String>,
    /// HTTP Basic client credentials, `id:secret` (split at the first `:`; each part is
    /// form-urlencoded before base64, RFC 6749 §2.3.1).
    #[arg(long)]
    basic: Option<String>,
    /// Extra header, `Name: value` (repeatable).
    #[arg(long = "header")]
    headers: Vec<String>,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Measured duration.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Warm-up before measuring (not counted).
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Substring every response body must contain.
    #[arg(long)]
    expect: Option<String>,
    /// The server's Prometheus endpoint, to read server-side time per request.
    #[arg(long)]
    metrics: Option<String>,
    /// Route label of the measured endpoint in the server's metrics.
    #[arg(long)]
    route: Option<String>,
    /// Label printed with the result.
    #[arg(long, default_value = "")]
    label: String,
    /// Call `authz.v1.Introspection` over gRPC at the URL's host:port instead of HTTP,
    /// introspecting this token (`--basic` authenticates).
    #[arg(long)]
    grpc_introspect: Option<String>,
    /// With --grpc-introspect: tokens per call (1 = `Introspect`, more = `IntrospectBatch`).
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Most measured requests (calls) over all connections; the run ends when they are
    /// sent or when `--duration` is over, whichever comes first.
    #[arg(long, default_value_t = 20_000_000)]
    max_requests: u64,
}

/// Measured requests started so far, over all connections (the `--max-requests` budget).
static STARTED: AtomicU64 = AtomicU64::new(0);

/// Whether a request starting now may be sent: always during the warm-up, then while the
/// budget of `max` measured requests lasts.
fn may_send(warm_until: Instant, max: u64) -> bool {
    Instant::now() < warm_until || STARTED.fetch_add(1, Ordering::Relaxed) < max
}

struct Target {
    addr: SocketAddr,
    path_and_query: String,
    host: String,
    /// `https://`: TLS on every connection.
    tls: bool,
}

fn parse_target(url: &str) -> Result<Target, String> {
    let (rest, tls) = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
        (Some(rest), _) => (rest, false),
        (None, Some(rest)) => (rest, true),
        (None, None) => return Err("only http:// and https:// targets are supported".into()),
    };
    let (authority, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(a, p)| (a, format!("/{p}")));
    let addr: SocketAddr = authority
        .parse()
        .map_err(|_| format!("{authority}: give an IP:port"))?;
    if !addr.ip().is_loopback() {
        return Err(format!(
            "{addr} is not a loopback address: loadgen only targets this machine"
        ));
    }
    Ok(Target {
        addr,
        path_and_query: path,
        host: authority.to_owned(),
        tls,
    })
}

/// What a TLS connection needs: the rustls client (TLS 1.3 only, roots from `--ca`,
/// optional client certificate), the name to verify, and the PEM files for tonic.
struct Tls {
    connector: tokio_rustls::TlsConnector,
    server_name: rustls_pki_types::ServerName<'static>,
    ca_pem: Vec<u8>,
    identity_pem: Option<(Vec<u8>, Vec<u8>)>,
    server_name_text: String,
}

fn tls_setup(args: &Args, target: &Target) -> Result<Option<Tls>, String> {
    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    if !target.tls {
        return Ok(None);
    }
    let ca = args
        .ca
        .as_ref()
        .ok_or("an https:// target needs --ca FILE")?;
    let read = |path: &PathBuf| std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()));
    let ca_pem = read(ca)?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&ca_pem) {
        let cert = cert.map_err(|e| format!("{}: {e}", ca.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("{}: {e}", ca.display()))?;
    }
    // ring is the platform's crypto (issue 16); rustls deprecates this provider only for
    // lacking post-quantum key exchange, which needs aws-lc.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let (config, identity_pem) = match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => {
            let cert_pem = read(cert)?;
            let key_pem = read(key)?;
            let chain = CertificateDer::pem_slice_iter(&cert_pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("{}: {e}", cert.display()))?;
            let private = PrivateKeyDer::from_pem_slice(&key_pem)
                .map_err(|e| format!("{}: {e}", key.display()))?;
            let config = builder
                .with_client_auth_cert(chain, private)
                .map_err(|e| e.to_string())?;
            (config, Some((cert_pem, key_pem)))
        }
        _ => (builder.with_no_client_auth(), None),
    };
    let server_name_text = args
        .server_name
        .clone()
        .unwrap_or_else(|| target.addr.ip().to_string());
    let server_name = ServerName::try_from(server_name_text.clone())
        .map_err(|e| format!("--server-name {server_name_text}: {e}"))?;
    Ok(Some(Tls {
        connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
        server_name,
        ca_pem,
        identity_pem,
        server_name_text,
    }))
}

/// A keep-alive HTTP/1.1 connection to `target`, over TLS when `tls` is given.
async fn open(
    target: &Target,
    tls: Option<&Tls>,
) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>, ()> {
    let stream = tokio::net::TcpStream::connect(target.addr)
        .await
        .map_err(|_| ())?;
    let _ = stream.set_nodelay(true);
    match tls {
        None => {
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|_| ())?;
            tokio::spawn(conn);
            Ok(sender)
        }
        Some(tls) => {
            let stream = tls
                .connector
                .connect(tls.server_name.clone(), stream)
                .await
                .map_err(|_| ())?;
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|_| ())?;
            tokio::spawn(conn);
            Ok(sender)
        }
    }
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    ok: u64,
    bad_status: u64,
    bad_body: u64,
    socket_errors: u64,
}

/// The `Authorization` header of `--basic id:secret` ([`domain::basic::encode`]).
fn basic_header(args: &Args) -> Option<String> {
    let basic = args.basic.as_deref()?;
    let (id, secret) = basic.split_once(':').unwrap_or((basic, ""));
    Some(domain::basic::encode(id, secret))
}

fn request(args: &Args, target: &Target) -> Result<hyper::Request<Full<Bytes>>, String> {
    let mut builder = hyper::Request::builder()
        .method(args.method.as_str())
        .uri(&target.path_and_query)
        .header("host", &target.host);
    if let Some(basic) = basic_header(args) {
        builder = builder.header("authorization", basic);
    }
    for h in &args.headers {
        let (name, value) = h
            .split_once(':')
            .ok_or_else(|| format!("bad header {h:?}"))?;
        builder = builder.header(name.trim(), value.trim());
    }
    let body = match &args.form {
        Some(form) => {
            builder = builder.header("content-type", "application/x-www-form-urlencoded");
            Bytes::from(form.clone())
        }
        None => Bytes::new(),
    };
    builder.body(Full::new(body)).map_err(|e| e.to_string())
}

async fn connection(
    args: &Args,
    target: &Target,
    tls: Option<&Tls>,
    warm_until: Instant,
    stop_at: Instant,
) -> Tally {
    let mut tally = Tally::default();
    'reconnect: while Instant::now() < stop_at {
        let Ok(mut sender) = open(target, tls).await else {
            tally.socket_errors += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        while Instant::now() < stop_at {
            if !may_send(warm_until, args.max_requests) {
                return tally;
            }
            let Ok(req) = request(args, target) else {
                return tally;
            };
            let started = Instant::now();
            let outcome = async {
                let res = sender.send_request(req).await?;
                let status = res.status();
                let body = res.into_body().collect().await?.to_bytes();
                Ok::<_, hyper::Error>((status, body))
            }
            .await;
            let measured = started >= warm_until;
            match outcome {
                Ok((status, body)) => {
                    if !measured {
                        continue;
                    }
                    let micros = u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX);
                    tally.latencies_us.push(micros);
                    if !status.is_success() {
                        tally.bad_status += 1;
                    } else if args
                        .expect
                        .as_ref()
                        .is_some_and(|m| !body.windows(m.len()).any(|w| w == m.as_bytes()))
                    {
                        tally.bad_body += 1;
                    } else {
                        tally.ok += 1;
                    }
                }
                Err(_) => {
                    if measured {
                        tally.socket_errors += 1;
                    }
                    continue 'reconnect;
                }
            }
        }
    }
    tally
}

async fn grpc_connection(
    args: &Args,
    target: &Target,
    tls: Option<&Tls>,
    warm_until: Instant,
    stop_at: Instant,
) -> Tally {
    use proto::authz::v1::introspection_client::IntrospectionClient;
    use proto::authz::v1::{IntrospectBatchRequest, IntrospectRequest};
    let mut tally = Tally::default();
    let Some(token) = &args.grpc_introspect else {
        return tally;
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let Ok(mut endpoint) =
        tonic::transport::Endpoint::from_shared(format!("{scheme}://{}", target.addr))
    else {
        return tally;
    };
    if let Some(tls) = tls {
        let mut config = tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(&tls.ca_pem))
            .domain_name(tls.server_name_text.clone());
        if let Some((cert, key)) = &tls.identity_pem {
            config = config.identity(tonic::transport::Identity::from_pem(cert, key));
        }
        endpoint = match endpoint.tls_config(config) {
            Ok(endpoint) => endpoint,
            Err(_) => {
                tally.socket_errors += 1;
                return tally;
            }
        };
    }
    let Ok(channel) = endpoint.tcp_nodelay(true).connect().await else {
        tally.socket_errors += 1;
        return tally;
    };
    let mut client = IntrospectionClient::new(channel);
    let auth = basic_header(args);
    let one = IntrospectRequest {
        token: token.clone(),
        token_type_hint: String::new(),
    };
    while Instant::now() < stop_at && may_send(warm_until, args.max_requests) {
        let started = Instant::now();
        let outcome: Result<Vec<bool>, tonic::Status> = if args.batch <= 1 {
            let mut req = tonic::Request::new(one.clone());
            if let Some(a) = &auth
                && let Ok(v) = a.parse()
            {
                req.metadata_mut().insert("authorization", v);
            }
            client
                .introspect(req)
                .await
                .map(|r| vec![r.into_inner().active])
        } else {
            let mut req = tonic::Request::new(IntrospectBatchRequest {
                tokens: vec![one.clone(); args.batch],
            });
            if let Some(a) = &auth
                && let Ok(v) = a.parse()
            {
                req.metadata_mut().insert("authorization", v);
            }
            client
                .introspect_batch(req)
                .await
                .map(|r| r.into_inner().results.iter().map(|x| x.active).collect())
        };
        if started < warm_until {
            continue;
        }
        let micros = u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX);
        tally.latencies_us.push(micros);
        match outcome {
            Ok(active) if active.len() == args.batch.max(1) && active.iter().all(|a| *a) => {
                tally.ok += 1
            }
            Ok(_) => tally.bad_body += 1,
            Err(_) => tally.bad_status += 1,
        }
    }
    tally
}

/// `(sum, count)` of the server's latency histogram for `route`.
async fn server_histogram(metrics_url: &str, route: &str) -> Option<(f64, f64)> {
    let target = parse_target(metrics_url).ok()?;
    let stream = tokio::net::TcpStream::connect(target.addr).await.ok()?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    tokio::spawn(conn);
    let req = hyper::Request::get(&target.path_and_query)
        .header("host", &target.host)
        .body(Full::new(Bytes::new()))
        .ok()?;
    let body = sender
        .send_request(req)
        .await
        .ok()?
        .into_body()
        .collect()
        .await
        .ok()?
        .to_bytes();
    let text = String::from_utf8_lossy(&body);
    let needle = format!("route=\"{route}\"");
    let (mut sum, mut count) = (0.0, 0.0);
    for line in text.lines().filter(|l| l.contains(&needle)) {
        let value: f64 = line.rsplit(' ').next()?.parse().ok()?;
        if line.starts_with("http_request_duration_seconds_sum") {
            sum += value;
        } else if line.starts_with("http_request_duration_seconds_count") {
            count += value;
        }
    }
    Some((sum, count))
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    f64::from(sorted[rank.min(sorted.len() - 1)]) / 1000.0
}

fn main() -> std::process::ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    match argv.get(1).map(String::as_str) {
        Some("login") => return login::main(argv[1..].to_vec()),
        Some("argon2") => return hashes::main(argv[1..].to_vec()),
        _ => {}
    }
    let args = Args::parse_from(argv);
    let target = match parse_target(&args.url) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("loadgen: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let tls = match tls_setup(&args, &target) {
        Ok(tls) => tls,
        Err(e) => {
            eprintln!("loadgen: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loadgen: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    rt.block_on(async {
        let before = match (&args.metrics, &args.route) {
            (Some(m), Some(r)) => server_histogram(m, r).await,
            _ => None,
        };
        let start = Instant::now();
        let warm_until = start + args.warmup;
        let stop_at = warm_until + args.duration;
        let local = tokio::task::LocalSet::new();
        let args_ref: &'static Args = Box::leak(Box::new(args));
        let target_ref: &'static Target = Box::leak(Box::new(target));
        let tls_ref: Option<&'static Tls> = tls.map(|tls| &*Box::leak(Box::new(tls)));
        let tallies = local
            .run_until(async {
                let handles: Vec<_> = (0..args_ref.connections)
                    .map(|_| {
                        tokio::task::spawn_local(async move {
                            if args_ref.grpc_introspect.is_some() {
                                grpc_connection(args_ref, target_ref, tls_ref, warm_until, stop_at)
                                    .await
                            } else {
                                connection(args_ref, target_ref, tls_ref, warm_until, stop_at).await
                            }
                        })
                    })
                    .collect();
                let mut out = Vec::new();
                for h in handles {
                    if let Ok(t) = h.await {
                        out.push(t);
                    }
                }
                out
            })
            .await;
        let mut all = Tally::default();
        for t in tallies {
            all.latencies_us.extend(t.latencies_us);
            all.ok += t.ok;
            all.bad_status += t.bad_status;
            all.bad_body += t.bad_body;
            all.socket_errors += t.socket_errors;
        }
        all.latencies_us.sort_unstable();
        // The measured time: the whole duration, or less when the request budget ran out.
        let secs = Instant::now()
            .min(stop_at)
            .saturating_duration_since(warm_until)
            .as_secs_f64()
            .max(f64::EPSILON);
        let after = match (&args_ref.metrics, &args_ref.route) {
            (Some(m), Some(r)) => server_histogram(m, r).await,
            _ => None,
        };
        let server_us = match (before, after) {
            (Some((s0, c0)), Some((s1, c1))) if c1 > c0 => Some((s1 - s0) / (c1 - c0) * 1e6),
            _ => None,
        };
        let result = serde_json::json!({
            "label": args_ref.label,
            "url": args_ref.url,
            "connections": args_ref.connections,
            "seconds": secs,
            "requests": all.latencies_us.len(),
            "rps": (all.latencies_us.len() as f64 / secs).round(),
            "items_per_s": (all.latencies_us.len() as f64 * args_ref.batch.max(1) as f64 / secs).round(),
            "p50_ms": percentile(&all.latencies_us, 50.0),
            "p99_ms": percentile(&all.latencies_us, 99.0),
            "ok": all.ok,
            "bad_status": all.bad_status,
            "bad_body": all.bad_body,
            "socket_errors": all.socket_errors,
            "server_us_per_request": server_us.map(|v| (v * 10.0).round() / 10.0),
        });
        println!("{result}");
        if all.bad_status + all.bad_body + all.socket_errors > 0 || all.ok == 0 {
            eprintln!("loadgen: INVALID RUN (failed responses)");
            return std::process::ExitCode::from(3);
        }
        std::process::ExitCode::SUCCESS
    })
}
