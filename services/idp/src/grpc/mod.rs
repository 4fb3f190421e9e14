//! The gRPC API of idp (`grpc.health.v1` now; `Sessions` joins it).

use runtime::Shutdown;
use tonic::transport::server::Router;

/// The gRPC router with every service idp offers.
pub(crate) fn router(shutdown: &Shutdown) -> Router {
    let (_reporter, health) = runtime::grpc_health(shutdown);
    tonic::transport::Server::builder().add_service(health)
}
