//! The gRPC API of authz: `authz.v1.LoginFlow` (for idp), `authz.v1.Introspection` (for
//! resource servers) and `grpc.health.v1`.

mod introspection;
mod login_flow;

use std::sync::Arc;

use domain::basic::BasicError;
use proto::authz::v1::introspection_server::IntrospectionServer;
use proto::authz::v1::login_flow_server::LoginFlowServer;
use runtime::Shutdown;
use tonic::transport::server::Router;
use tonic::{Request, Status};
use tonic_health::ServingStatus;

use crate::clients::{Client, ClientAuthError, Clients, Credentials};
use crate::flow::Flow;
use crate::tokens::Tokens;

/// The gRPC router with every service authz offers, each reported SERVING.
pub(crate) fn router(
    shutdown: &Shutdown,
    clients: Arc<Clients>,
    tokens: Arc<Tokens>,
    flow: Arc<Flow>,
) -> Router {
    let (reporter, health) = runtime::grpc_health(shutdown);
    tokio::spawn(async move {
        for service in ["authz.v1.Introspection", "authz.v1.LoginFlow"] {
            reporter
                .set_service_status(service, ServingStatus::Serving)
                .await;
        }
    });
    let introspection = introspection::IntrospectionService {
        clients: Arc::clone(&clients),
        tokens,
    };
    let login_flow = login_flow::LoginFlowService { clients, flow };
    tonic::transport::Server::builder()
        .add_service(health)
        .add_service(IntrospectionServer::new(introspection))
        .add_service(LoginFlowServer::new(login_flow))
}

/// The registered client calling: `authorization: Basic base64(urlencode(id):urlencode(secret))`
/// metadata (RFC 6749 §2.3.1 encoding; ids and secrets without reserved characters read the
/// same unencoded), authenticated like at the token endpoint. `UNAUTHENTICATED` without
/// valid credentials.
pub(crate) async fn caller<T>(
    clients: &Clients,
    request: &Request<T>,
) -> Result<Arc<Client>, Status> {
    let header = request
        .metadata()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| Status::unauthenticated("client credentials required"))?;
    let (id, secret) = domain::basic::parse(header).map_err(|e| match e {
        BasicError::NotBasic => Status::unauthenticated("use Basic client credentials"),
        _ => Status::unauthenticated("malformed credentials"),
    })?;
    clients
        .authenticate(&Credentials::Basic { id, secret })
        .await
        .map_err(|e| match e {
            ClientAuthError::Invalid => Status::unauthenticated("client authentication failed"),
            ClientAuthError::Storage(e) => {
                tracing::warn!(error = %e, "client registry unavailable");
                Status::unavailable("try again later")
            }
        })
}
