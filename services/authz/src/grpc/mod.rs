//! The gRPC API of authz: `authz.v1.LoginFlow` (for idp), `authz.v1.Introspection` (for
//! resource servers), and from the runtime `grpc.health.v1` and server reflection.

mod introspection;
mod login_flow;

use std::collections::BTreeMap;
use std::sync::Arc;

use domain::basic::BasicError;
use proto::authz::v1::introspection_server::IntrospectionServer;
use proto::authz::v1::login_flow_server::LoginFlowServer;
use runtime::GrpcServices;
use tonic::{Request, Status};

use crate::clients::{Client, ClientAuthError, Clients, Credentials};
use crate::device::Devices;
use crate::error::Failure;
use crate::flow::Flow;
use crate::grants::Grants;
use crate::logout::Logouts;

/// Every gRPC service authz offers; the runtime serves them with health (each SERVING),
/// reflection, trace context and request metrics.
pub(crate) fn router(
    clients: Arc<Clients>,
    flow: Arc<Flow>,
    grants: Arc<Grants>,
    logouts: Arc<Logouts>,
    devices: Arc<Devices>,
    auth: GrpcAuth,
) -> GrpcServices {
    let auth = Arc::new(auth);
    let introspection = introspection::IntrospectionService {
        clients: Arc::clone(&clients),
        grants: Arc::clone(&grants),
        auth: Arc::clone(&auth),
    };
    let login_flow = login_flow::LoginFlowService {
        clients,
        flow,
        grants,
        logouts,
        devices,
        auth,
    };
    GrpcServices::new(proto::FILE_DESCRIPTOR_SET)
        .add_service(IntrospectionServer::new(introspection))
        .add_service(LoginFlowServer::new(login_flow))
}

/// How gRPC callers authenticate (the `grpc` section): by a client certificate whose
/// identity `identities` maps to a client id, and, when `basic_auth` is on, by client
/// credentials in the metadata.
#[derive(Debug, Clone)]
pub(crate) struct GrpcAuth {
    /// Certificate identity (SAN DNS name or URI) → client id.
    pub(crate) identities: BTreeMap<String, String>,
    /// Whether `authorization: Basic` metadata is accepted.
    pub(crate) basic_auth: bool,
}

/// The registered client calling, by the first of:
/// - mutual TLS: the verified client certificate's identity mapped to a registered client
///   by `grpc.identities` (RFC 8705 §2's idea of a certificate-bound client, applied to the
///   service links);
/// - when `grpc.basic_auth` is on: `authorization: Basic base64(urlencode(id):urlencode(secret))`
///   metadata (RFC 6749 §2.3.1 encoding; ids and secrets without reserved characters read
///   the same unencoded), authenticated like at the token endpoint.
///
/// `UNAUTHENTICATED` otherwise: no certificate and no (accepted) credentials, an unmapped
/// identity, or a mapped client that is not registered. Logged without the credentials.
#[tracing::instrument(skip_all)]
pub(crate) async fn caller<T>(
    clients: &Clients,
    auth: &GrpcAuth,
    request: &Request<T>,
) -> Result<Arc<Client>, Status> {
    if let Some(client_id) = runtime::mtls_client_id(request, &auth.identities) {
        return match clients.find(&client_id).await {
            Ok(Some(client)) => Ok(client),
            Ok(None) => {
                tracing::info!(
                    client_id,
                    "client certificate maps to an unregistered client"
                );
                Err(Status::unauthenticated("client authentication failed"))
            }
            Err(e) => Err(failure_status(&Failure::from(e))),
        };
    }
    if request.peer_certs().is_some_and(|certs| !certs.is_empty()) {
        tracing::info!("client certificate identity not mapped to a client (grpc.identities)");
    }
    if !auth.basic_auth {
        return Err(Status::unauthenticated(
            "a client certificate mapped to a client is required",
        ));
    }
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
        .authenticate(&Credentials::Basic { id, secret }, &Default::default())
        .await
        .map_err(|e| match e {
            ClientAuthError::Invalid => Status::unauthenticated("client authentication failed"),
            // clientauth
            e @ (ClientAuthError::WrongMethod { .. } | ClientAuthError::Assertion(_)) => {
                Status::unauthenticated(e.to_string())
            }
            ClientAuthError::Storage(e) => failure_status(&Failure::from(e)),
        })
}

/// authz's one gRPC reading of a [`Failure`], logging its cause once (a warning when it is
/// transient, an error otherwise; the call's span adds its context): `UNAVAILABLE` when
/// trying again shortly may work ([`Failure::is_transient`]), `INTERNAL` otherwise. The
/// cause is never sent to the caller.
pub(crate) fn failure_status(failure: &Failure) -> Status {
    if failure.is_transient() {
        tracing::warn!(error = %failure, "dependency unavailable");
        Status::unavailable("try again later")
    } else {
        tracing::error!(error = %failure, "call failed");
        Status::internal("internal error")
    }
}
