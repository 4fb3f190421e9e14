use std::pin::Pin;

use tonic::transport::server::{Router, TcpIncoming};
pub use tonic_health::server::health_reporter as grpc_health;

use crate::{RuntimeError, Shutdown};

/// A gRPC server bound to its listener, stopping gracefully on the process [`Shutdown`]
/// (no new connections, in-flight calls finish, bounded by the supervisor's grace period).
pub struct GrpcServer {
    pub(crate) serve: Pin<Box<dyn Future<Output = Result<(), tonic::transport::Error>> + Send>>,
}

impl GrpcServer {
    /// Serves `router` on `listener` until `shutdown` triggers. Must run inside a Tokio
    /// runtime.
    pub fn new(
        router: Router,
        listener: std::net::TcpListener,
        shutdown: &Shutdown,
    ) -> Result<Self, RuntimeError> {
        let addr = listener
            .local_addr()
            .map_err(|source| RuntimeError::Http {
                name: "grpc",
                source,
            })?;
        let listener =
            tokio::net::TcpListener::from_std(listener).map_err(|source| RuntimeError::Bind {
                section: "grpc",
                addr,
                source,
            })?;
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        let serve = router.serve_with_incoming_shutdown(incoming, shutdown.waiter());
        Ok(Self {
            serve: Box::pin(serve),
        })
    }
}
