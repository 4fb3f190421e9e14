use std::sync::Arc;
use std::time::Duration;

use actix_http::{Request, Response};
use actix_service::IntoServiceFactory;
use actix_web::body::MessageBody;
use actix_web::dev::{AppConfig, Service, ServiceFactory};

use crate::RuntimeError;
use crate::http_limits::HttpGuard;
use crate::limits::{ConnectionTable, LimitsConfig};

/// Starts an actix-web server on an already bound listener the way every service needs it:
/// `workers` workers, no signal handling of its own (the [`crate::Supervisor`] owns
/// shutdown), in-flight requests drained for at most `grace` on stop, and the default
/// [`LimitsConfig`] of a public listener (see [`http_server_with_limits`]).
pub fn http_server<F, I, S, B>(
    name: &'static str,
    listener: std::net::TcpListener,
    factory: F,
    workers: usize,
    grace: Duration,
) -> Result<actix_web::dev::Server, RuntimeError>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: IntoServiceFactory<S, Request>,
    S: ServiceFactory<Request, Config = AppConfig> + 'static,
    S::Error: Into<actix_web::Error> + 'static,
    S::InitError: std::fmt::Debug,
    S::Response: Into<Response<B>> + 'static,
    <S::Service as Service<Request>>::Future: 'static,
    S::Service: 'static,
    B: MessageBody + 'static,
{
    let limits = LimitsConfig::default();
    let caps = ConnectionCaps::public(&limits);
    http_server_with_limits(name, listener, factory, workers, grace, &limits, caps)
}

/// The connection caps of one HTTP listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionCaps {
    /// Open connections beyond this are answered 503 + `Retry-After` and closed.
    pub max: usize,
    /// Open connections from one address (IPv6: one /64) beyond this likewise.
    pub per_peer: usize,
    /// Beyond this many open connections the listener stops accepting (the backlog
    /// holds new ones): the ceiling that keeps the process below its file-descriptor
    /// limit.
    pub hard: usize,
}

impl ConnectionCaps {
    /// The public listener's caps: `limits.max_connections`,
    /// `limits.max_connections_per_peer`, and a hard ceiling a quarter above.
    pub fn public(limits: &LimitsConfig) -> Self {
        Self {
            max: limits.max_connections,
            per_peer: limits.max_connections_per_peer,
            hard: limits.http_hard_ceiling(),
        }
    }

    /// The admin listener's caps: `limits.admin_max_connections` in total, no cap per
    /// address (operators and probes share few addresses), the same hard ceiling rule.
    pub fn admin(limits: &LimitsConfig) -> Self {
        let max = limits.admin_max_connections;
        Self {
            max,
            per_peer: max,
            hard: max.saturating_add(max / 4).max(max + 1),
        }
    }
}

/// [`http_server`] with explicit limits (issue 14): a request's head must arrive within
/// `limits.header_timeout` (else 408, actix's `client_request_timeout`); the rest of the
/// request, body included, and its answer within `limits.request_timeout` (else 408 with
/// `Connection: close`, counted in `http_request_timeouts_total{listener}`); idle
/// keep-alive connections close after `limits.keep_alive`; unacknowledged response data
/// ends the connection after `limits.request_timeout` (slow readers); and beyond `caps`
/// requests are shed with 503, `Retry-After: limits.retry_after` and `Connection: close`
/// (counted in `http_requests_shed_total{listener}`), with the JSON body
/// `{"error":"temporarily_unavailable",…}` (RFC 6749 §5.2's shape).
pub fn http_server_with_limits<F, I, S, B>(
    name: &'static str,
    listener: std::net::TcpListener,
    factory: F,
    workers: usize,
    grace: Duration,
    limits: &LimitsConfig,
    caps: ConnectionCaps,
) -> Result<actix_web::dev::Server, RuntimeError>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: IntoServiceFactory<S, Request>,
    S: ServiceFactory<Request, Config = AppConfig> + 'static,
    S::Error: Into<actix_web::Error> + 'static,
    S::InitError: std::fmt::Debug,
    S::Response: Into<Response<B>> + 'static,
    <S::Service as Service<Request>>::Future: 'static,
    S::Service: 'static,
    B: MessageBody + 'static,
{
    http_server_tls(
        name,
        listener,
        factory,
        workers,
        crate::DEFAULT_MAX_BLOCKING_THREADS,
        grace,
        limits,
        caps,
        None,
        None,
    )
}

/// [`http_server_with_limits`] serving HTTPS with `tls` when given (the rustls configuration
/// of the listener, see [`crate::tls::ServerTls`]); the limits and caps apply alike. With
/// `report`, each connection's client certificate is in its data ([`crate::PeerCertificate`]).
/// Each worker's blocking pool has at most `max_blocking_threads` threads.
#[allow(clippy::too_many_arguments)]
pub(crate) fn http_server_tls<F, I, S, B>(
    name: &'static str,
    listener: std::net::TcpListener,
    factory: F,
    workers: usize,
    max_blocking_threads: usize,
    grace: Duration,
    limits: &LimitsConfig,
    caps: ConnectionCaps,
    tls: Option<Arc<rustls::ServerConfig>>,
    report: Option<crate::tls::CertificateReport>,
) -> Result<actix_web::dev::Server, RuntimeError>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: IntoServiceFactory<S, Request>,
    S: ServiceFactory<Request, Config = AppConfig> + 'static,
    S::Error: Into<actix_web::Error> + 'static,
    S::InitError: std::fmt::Debug,
    S::Response: Into<Response<B>> + 'static,
    <S::Service as Service<Request>>::Future: 'static,
    S::Service: 'static,
    B: MessageBody + 'static,
{
    let addr = listener
        .local_addr()
        .map_err(|source| RuntimeError::Http { name, source })?;
    let workers = workers.max(1);
    let guard = HttpGuard::<B, S::InitError>::new(
        name,
        ConnectionTable::new(name, caps.max, caps.per_peer),
        limits.request_timeout,
        limits.retry_after_secs(),
        limits.request_timeout,
    );
    let on_connect = guard.on_connect(report);
    let server = actix_web::HttpServer::new(move || {
        actix_service::apply(guard.clone(), factory().into_factory())
    })
    .on_connect(on_connect)
    .workers(workers)
    .worker_max_blocking_threads(max_blocking_threads.max(1))
    .max_connections(caps.hard.div_ceil(workers).max(1))
    .client_request_timeout(limits.header_timeout)
    .client_disconnect_timeout(limits.disconnect_timeout)
    .keep_alive(actix_web::http::KeepAlive::Timeout(limits.keep_alive))
    .disable_signals()
    .shutdown_timeout(grace.as_secs().max(1));
    let server = match tls {
        // The handshake shares the request-head deadline.
        Some(config) => server
            .tls_handshake_timeout(limits.header_timeout)
            .listen_rustls_0_23(listener, (*config).clone()),
        None => server.listen(listener),
    };
    Ok(server
        .map_err(|source| RuntimeError::Bind {
            section: name,
            addr,
            source,
        })?
        .run())
}

/// The base of every public application: request observation (span, metrics) around
/// everything, and a JSON 404 for unknown paths. Services add their routes to it.
pub fn base_app() -> actix_web::App<
    impl ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    actix_web::App::new()
        .wrap(actix_web::middleware::from_fn(crate::observe_requests))
        .default_service(actix_web::web::to(not_found))
}

/// Unknown paths: a JSON 404 rather than an empty body.
async fn not_found() -> actix_web::HttpResponse {
    actix_web::HttpResponse::NotFound().json(serde_json::json!({ "error": "not_found" }))
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;
    use crate::ListenConfig;

    async fn stalled_body(addr: std::net::SocketAddr) -> TcpStream {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc")
            .await
            .unwrap();
        stream
    }

    async fn answer(mut stream: TcpStream) -> String {
        let mut got = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut got)).await;
        String::from_utf8_lossy(&got).into_owned()
    }

    async fn post(addr: std::net::SocketAddr) -> String {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            .await
            .unwrap();
        answer(stream).await
    }

    /// A stalled body is answered 408 with `Connection: close` at the request deadline;
    /// beyond the per-peer cap requests are shed with 503 + `Retry-After` at once, and a
    /// closed connection frees its place.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stalled_bodies_time_out_and_the_per_peer_cap_sheds() {
        let limits = LimitsConfig {
            request_timeout: Duration::from_millis(300),
            max_connections_per_peer: 2,
            retry_after: Duration::from_secs(7),
            ..LimitsConfig::default()
        };
        let (listener, addr) = crate::bind("http", &ListenConfig::loopback(0)).unwrap();
        let server = http_server_with_limits(
            "test",
            listener,
            || {
                actix_web::App::new().route(
                    "/echo",
                    actix_web::web::post().to(|body: actix_web::web::Bytes| async move {
                        format!("{} bytes", body.len())
                    }),
                )
            },
            1,
            Duration::from_secs(1),
            &limits,
            ConnectionCaps::public(&limits),
        )
        .unwrap();
        let handle = server.handle();
        tokio::spawn(server);

        assert!(post(addr).await.ends_with("2 bytes"));
        let started = Instant::now();
        let timed_out = answer(stalled_body(addr).await).await;
        assert!(timed_out.starts_with("HTTP/1.1 408"), "{timed_out}");
        assert!(timed_out.contains("connection: close"), "{timed_out}");
        assert!(started.elapsed() >= Duration::from_millis(250));
        assert!(started.elapsed() < Duration::from_secs(3));

        let first = stalled_body(addr).await;
        let second = stalled_body(addr).await;
        let shed = post(addr).await;
        assert!(shed.starts_with("HTTP/1.1 503"), "{shed}");
        assert!(shed.contains("retry-after: 7"), "{shed}");
        assert!(shed.contains("temporarily_unavailable"), "{shed}");
        drop(first);
        drop(second);
        let deadline = Instant::now() + Duration::from_secs(3);
        while !post(addr).await.ends_with("2 bytes") {
            assert!(
                Instant::now() < deadline,
                "not back after the stalled ones left"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        handle.stop(false).await;
    }

    /// A chunked body (RFC 9112 §7.1) that stalls, sent to an endpoint that never reads its
    /// body: the answer comes with `Connection: close` and the connection ends soon after,
    /// instead of actix draining the rest of the body with no deadline.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unread_stalled_chunked_body_does_not_hold_the_connection() {
        let limits = LimitsConfig {
            disconnect_timeout: Duration::from_millis(500),
            ..LimitsConfig::default()
        };
        let (listener, addr) = crate::bind("http", &ListenConfig::loopback(0)).unwrap();
        let server = http_server_with_limits(
            "test",
            listener,
            || {
                actix_web::App::new()
                    .route("/ignore", actix_web::web::post().to(|| async { "ignored" }))
                    .route(
                        "/echo",
                        actix_web::web::post().to(|body: actix_web::web::Bytes| async move {
                            format!("{} bytes", body.len())
                        }),
                    )
            },
            1,
            Duration::from_secs(1),
            &limits,
            ConnectionCaps::public(&limits),
        )
        .unwrap();
        let handle = server.handle();
        tokio::spawn(server);

        let started = Instant::now();
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"POST /ignore HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
            .await
            .unwrap();
        let mut got = Vec::new();
        let closed =
            tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut got)).await;
        let got = String::from_utf8_lossy(&got);
        assert!(closed.is_ok(), "connection still open after 5 s: {got}");
        assert!(got.starts_with("HTTP/1.1 200"), "{got}");
        assert!(got.contains("connection: close"), "{got}");
        assert!(started.elapsed() < Duration::from_secs(4));

        // A chunked body that is read to its end keeps the connection alive.
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
            .await
            .unwrap();
        let mut buf = vec![0u8; 1024];
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        let first = String::from_utf8_lossy(&buf[..n]);
        assert!(first.ends_with("3 bytes"), "{first}");
        assert!(!first.contains("connection: close"), "{first}");
        handle.stop(false).await;
    }

    /// Eight requests that each hold a blocking-pool thread at once run on no more threads
    /// than `max_blocking_threads`: the rest wait for a thread instead of each getting a
    /// new one (actix's default would start one per request here).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_worker_runs_blocking_work_on_at_most_max_blocking_threads() {
        let limits = LimitsConfig::default();
        let (listener, addr) = crate::bind("http", &ListenConfig::loopback(0)).unwrap();
        let threads = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
        let seen = Arc::clone(&threads);
        let server = http_server_tls(
            "test",
            listener,
            move || {
                let seen = Arc::clone(&seen);
                actix_web::App::new().route(
                    "/block",
                    actix_web::web::get().to(move || {
                        let seen = Arc::clone(&seen);
                        async move {
                            tokio::task::spawn_blocking(move || {
                                seen.lock().unwrap().insert(std::thread::current().id());
                                std::thread::sleep(Duration::from_millis(100));
                            })
                            .await
                            .unwrap();
                            "done"
                        }
                    }),
                )
            },
            1,
            2,
            Duration::from_secs(1),
            &limits,
            ConnectionCaps::public(&limits),
            None,
            None,
        )
        .unwrap();
        let handle = server.handle();
        tokio::spawn(server);
        let requests = (0..8).map(|_| async move {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            stream
                .write_all(b"GET /block HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            answer(stream).await
        });
        for answer in futures_util::future::join_all(requests).await {
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        }
        let used = threads.lock().unwrap().len();
        assert!((1..=2).contains(&used), "{used} blocking threads");
        handle.stop(false).await;
    }
}
