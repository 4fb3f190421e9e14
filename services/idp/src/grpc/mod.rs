//! The gRPC API of idp: `idp.v1.Sessions` (for authz), and from the runtime
//! `grpc.health.v1` and server reflection.

mod auth;
mod sessions;

use proto::idp::v1::sessions_server::SessionsServer;
use runtime::GrpcServices;

pub(crate) use auth::Callers;

use crate::sessions::Sessions;
use crate::users::Users;

/// Every gRPC service idp offers; the runtime serves them with health (each SERVING),
/// reflection, trace context and request metrics.
pub(crate) fn router(users: Users, sessions: Sessions, callers: Callers) -> GrpcServices {
    let service = sessions::SessionsService {
        users,
        sessions,
        callers,
    };
    GrpcServices::new(proto::FILE_DESCRIPTOR_SET).add_service(SessionsServer::new(service))
}
