//! The gRPC API of authz (`grpc.health.v1` now; `LoginFlow` and `Introspection` join it).

use runtime::Shutdown;
use tonic::transport::server::Router;

/// The gRPC router with every service authz offers.
pub(crate) fn router(shutdown: &Shutdown) -> Router {
    let (_reporter, health) = runtime::grpc_health(shutdown);
    tonic::transport::Server::builder().add_service(health)
}
