use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};
use tonic::body::Body;
use tonic::codegen::{Service, http};
use tonic::transport::server::{Connected, TcpConnectInfo};

use crate::limits::{
    ConnectionSlot, ConnectionTable, LimitsConfig, REFUSED_METRIC, SHED_METRIC, TIMEOUT_METRIC,
};

/// Bounds how long data the server sent may stay unacknowledged by the peer
/// (`TCP_USER_TIMEOUT`, RFC 5482), so a client that stops reading cannot hold a
/// connection (and its buffers) past `timeout`. Best effort: where the option is missing
/// the connection keeps the system's default.
pub(crate) fn bound_unacknowledged(stream: &TcpStream, timeout: Duration) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let millis = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
        if let Err(e) = rustix::net::sockopt::set_tcp_user_timeout(stream, millis) {
            tracing::debug!(error = %e, "TCP_USER_TIMEOUT not set");
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = (stream, timeout);
}

/// The accepted connections of the gRPC listener, within the caps of `limits`: a
/// connection beyond `grpc_max_connections` or `max_connections_per_peer` is closed at
/// once (the client sees `UNAVAILABLE` and may retry elsewhere), and every admitted one is
/// a [`GuardedIo`] closed when its peer stalls.
pub(crate) fn guarded_incoming(
    listener: TcpListener,
    limits: &LimitsConfig,
) -> impl Stream<Item = Result<GuardedIo, io::Error>> + Send + 'static {
    let table = ConnectionTable::new(
        "grpc",
        limits.grpc_max_connections,
        limits.max_connections_per_peer,
    );
    let idle = limits.grpc_idle_deadline();
    let unacknowledged = limits.request_timeout;
    futures_util::stream::unfold(listener, move |listener| {
        let table = table.clone();
        async move {
            loop {
                match listener.accept().await {
                    Ok((stream, peer)) => {
                        let slot = table.open(Some(peer.ip()));
                        if !slot.admitted {
                            metrics::counter!(REFUSED_METRIC, "listener" => "grpc").increment(1);
                            tracing::debug!("gRPC connection cap reached: connection closed");
                            continue;
                        }
                        let _ = stream.set_nodelay(true);
                        bound_unacknowledged(&stream, unacknowledged);
                        let io = GuardedIo {
                            stream,
                            _slot: slot,
                            idle,
                            deadline: Box::pin(tokio::time::sleep(idle)),
                        };
                        return Some((Ok(io), listener));
                    }
                    Err(e) => {
                        // Out of descriptors or a connection reset before accept: wait a
                        // moment instead of spinning, then accept again.
                        tracing::debug!(error = %e, "gRPC accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        }
    })
}

/// The TLS sessions over the admitted connections of `incoming`: each handshake runs in its
/// own task (a slow or silent client does not hold up the others) and must finish within
/// `handshake_timeout`; a failed one (wrong CA, expired certificate, TLS 1.2 against a
/// 1.3-only listener, no shared protocol) closes the connection with a log line. Ends when
/// `stop` completes.
pub(crate) fn tls_incoming<S>(
    incoming: S,
    config: Arc<rustls::ServerConfig>,
    handshake_timeout: Duration,
    stop: impl Future<Output = ()> + Send + 'static,
) -> impl Stream<Item = Result<tokio_rustls::server::TlsStream<GuardedIo>, io::Error>> + Send + 'static
where
    S: Stream<Item = Result<GuardedIo, io::Error>> + Send + 'static,
{
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let (sessions, receiver) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        let mut incoming = Box::pin(incoming);
        tokio::pin!(stop);
        loop {
            let io = tokio::select! {
                biased;
                () = &mut stop => break,
                next = futures_util::StreamExt::next(&mut incoming) => match next {
                    Some(Ok(io)) => io,
                    Some(Err(_)) => continue,
                    None => break,
                },
            };
            let acceptor = acceptor.clone();
            let sessions = sessions.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(handshake_timeout, acceptor.accept(io)).await {
                    Ok(Ok(session)) => {
                        let _ = sessions.send(Ok(session)).await;
                    }
                    Ok(Err(e)) => {
                        tracing::info!(error = %e, "gRPC TLS handshake refused");
                    }
                    Err(_) => {
                        metrics::counter!(TIMEOUT_METRIC, "listener" => "grpc").increment(1);
                        tracing::debug!("gRPC TLS handshake not finished in time: closed");
                    }
                }
            });
        }
    });
    futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|session| (session, receiver))
    })
}

/// An accepted gRPC connection, counted in its listener's table while open and closed
/// when the peer sends nothing for `grpc_keepalive_interval + grpc_keepalive_timeout`: a
/// healthy client answers the server's keep-alive PINGs long before, while a half-sent
/// handshake or frame (which hyper alone would wait for forever) ends there.
pub(crate) struct GuardedIo {
    stream: TcpStream,
    _slot: ConnectionSlot,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl AsyncRead for GuardedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    let next = Instant::now() + this.idle;
                    this.deadline.as_mut().reset(next);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    metrics::counter!(TIMEOUT_METRIC, "listener" => "grpc").increment(1);
                    tracing::debug!("gRPC peer sent nothing within the keep-alive bound: closed");
                    Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "peer stalled past limits.grpc_keepalive_interval + grpc_keepalive_timeout",
                    )))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl AsyncWrite for GuardedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

impl Connected for GuardedIo {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream.connect_info()
    }
}

/// A tower layer that sheds gRPC calls beyond `grpc_max_concurrent_requests` in flight
/// over all connections: they are answered `UNAVAILABLE` at once (gRPC `statuscodes.md`:
/// "the service is currently unavailable … may be corrected by retrying with a backoff")
/// instead of queueing behind the others.
#[derive(Debug, Clone)]
pub(crate) struct ShedLayer {
    permits: Arc<Semaphore>,
}

impl ShedLayer {
    /// At most `limit` calls in flight.
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(limit.min(Semaphore::MAX_PERMITS))),
        }
    }
}

impl<S> tower_layer::Layer<S> for ShedLayer {
    type Service = Shed<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Shed {
            inner,
            permits: Arc::clone(&self.permits),
        }
    }
}

/// A service wrapped by [`ShedLayer`].
#[derive(Debug, Clone)]
pub(crate) struct Shed<S> {
    inner: S,
    permits: Arc<Semaphore>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> Service<http::Request<B>> for Shed<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(permit) => {
                let call = self.inner.call(request);
                Box::pin(async move {
                    let answer = call.await;
                    drop(permit);
                    answer
                })
            }
            Err(_) => {
                metrics::counter!(SHED_METRIC, "listener" => "grpc").increment(1);
                tracing::debug!("gRPC concurrency cap reached: call shed with UNAVAILABLE");
                let status = tonic::Status::unavailable(
                    "the server is at its concurrency limit; retry with backoff",
                );
                Box::pin(std::future::ready(Ok(status.into_http())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;

    /// A service that never answers, so every call it takes stays in flight.
    #[derive(Clone)]
    struct Stuck;

    impl Service<http::Request<()>> for Stuck {
        type Response = http::Response<Body>;
        type Error = Infallible;
        type Future = BoxFuture<Result<Self::Response, Self::Error>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: http::Request<()>) -> Self::Future {
            Box::pin(std::future::pending())
        }
    }

    #[tokio::test]
    async fn calls_beyond_the_cap_are_unavailable_at_once_and_a_finished_call_frees_its_place() {
        use tower_layer::Layer;
        let mut shed = ShedLayer::new(1).layer(Stuck);
        let first = shed.call(http::Request::new(()));
        let answer = shed.call(http::Request::new(())).await.unwrap();
        let status = tonic::Status::from_header_map(answer.headers()).unwrap();
        assert_eq!(status.code(), tonic::Code::Unavailable);
        drop(first);
        let third = shed.call(http::Request::new(()));
        assert!(
            tokio::time::timeout(Duration::from_millis(20), third)
                .await
                .is_err(),
            "the place of a dropped call is free again: the next one runs (and stays stuck)"
        );
    }

    #[tokio::test]
    async fn a_stalled_peer_is_closed_after_the_idle_bound_and_an_active_one_is_not() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let limits = LimitsConfig {
            grpc_keepalive_interval: Duration::from_millis(100),
            grpc_keepalive_timeout: Duration::from_millis(100),
            ..LimitsConfig::default()
        };
        let incoming = guarded_incoming(listener, &limits);
        let mut incoming = Box::pin(incoming);
        let mut client = TcpStream::connect(addr).await.unwrap();
        let mut io = futures_util::StreamExt::next(&mut incoming)
            .await
            .unwrap()
            .unwrap();
        // Bytes keep the connection open past the bound…
        let mut buf = [0u8; 8];
        for _ in 0..3 {
            client.write_all(b"ping").await.unwrap();
            tokio::time::sleep(Duration::from_millis(120)).await;
            assert!(io.read(&mut buf).await.unwrap() > 0);
        }
        // …silence ends it within the bound.
        let started = std::time::Instant::now();
        let err = io.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test]
    async fn connections_beyond_the_cap_are_closed_on_accept_until_one_leaves() {
        use tokio::io::AsyncReadExt;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let limits = LimitsConfig {
            grpc_max_connections: 1,
            max_connections_per_peer: 1,
            ..LimitsConfig::default()
        };
        let mut incoming = Box::pin(guarded_incoming(listener, &limits));
        macro_rules! next {
            () => {
                tokio::time::timeout(
                    Duration::from_secs(2),
                    futures_util::StreamExt::next(&mut incoming),
                )
            };
        }
        let _first_client = TcpStream::connect(addr).await.unwrap();
        let first = next!().await.unwrap().unwrap().unwrap();
        // The second is accepted and closed at once: its client reads the end.
        let mut refused = TcpStream::connect(addr).await.unwrap();
        assert!(next!().await.is_err(), "nothing handed on");
        let mut buf = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(2), refused.read(&mut buf))
            .await
            .unwrap();
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        // Once the first leaves, a new connection is taken.
        drop(first);
        let _third_client = TcpStream::connect(addr).await.unwrap();
        assert!(next!().await.unwrap().unwrap().is_ok());
    }
}
