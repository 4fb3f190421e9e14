//! The gRPC API of idp: `idp.v1.Sessions` (for authz) and `grpc.health.v1`.

mod auth;
pub(crate) mod observe;
mod sessions;

use proto::idp::v1::sessions_server::SessionsServer;
use runtime::Shutdown;
use tonic::transport::server::Router;
use tonic_health::ServingStatus;

pub(crate) use auth::Callers;
pub use auth::SessionsApiConfig;

use crate::sessions::Sessions;
use crate::users::Users;

/// The gRPC router with every service idp offers, each reported SERVING.
pub(crate) fn router(
    shutdown: &Shutdown,
    users: Users,
    sessions: Sessions,
    callers: Callers,
) -> Router {
    let (reporter, health) = runtime::grpc_health(shutdown);
    tokio::spawn(async move {
        reporter
            .set_service_status(sessions::SERVICE, ServingStatus::Serving)
            .await;
    });
    let service = sessions::SessionsService {
        users,
        sessions,
        callers,
    };
    tonic::transport::Server::builder()
        .add_service(health)
        .add_service(SessionsServer::new(service))
}
