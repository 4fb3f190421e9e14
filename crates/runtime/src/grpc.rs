use std::pin::Pin;

use tonic::transport::server::{Router, TcpIncoming};
use tonic_health::ServingStatus;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::server::HealthReporter;

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
        let addr = listener.local_addr().map_err(|source| RuntimeError::Http {
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

/// The `grpc.health.v1.Health` service with the overall status (`""`) SERVING, switched to
/// NOT_SERVING as soon as `shutdown` triggers so clients stop picking this instance while it
/// drains. The reporter sets per-service statuses.
pub fn grpc_health(shutdown: &Shutdown) -> (HealthReporter, HealthServer<impl Health>) {
    let (reporter, service) = tonic_health::server::health_reporter();
    let on_stop = reporter.clone();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        stop.wait().await;
        on_stop
            .set_service_status("", ServingStatus::NotServing)
            .await;
    });
    (reporter, service)
}
