//! The gRPC API of authz: `authz.v1.Introspection` and `grpc.health.v1`
//! (`authz.v1.LoginFlow` joins with the authorization code flow).

mod introspection;

use std::sync::Arc;

use proto::authz::v1::introspection_server::IntrospectionServer;
use runtime::Shutdown;
use tonic::transport::server::Router;
use tonic_health::ServingStatus;

use crate::clients::Clients;
use crate::tokens::Tokens;

/// The gRPC router with every service authz offers, each reported SERVING.
pub(crate) fn router(shutdown: &Shutdown, clients: Arc<Clients>, tokens: Arc<Tokens>) -> Router {
    let (reporter, health) = runtime::grpc_health(shutdown);
    tokio::spawn(async move {
        reporter
            .set_service_status("authz.v1.Introspection", ServingStatus::Serving)
            .await;
    });
    let introspection = introspection::IntrospectionService { clients, tokens };
    tonic::transport::Server::builder()
        .add_service(health)
        .add_service(IntrospectionServer::new(introspection))
}
