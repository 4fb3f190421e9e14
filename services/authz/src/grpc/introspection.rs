//! `authz.v1.Introspection`: RFC 7662 semantics over gRPC for resource servers.
//!
//! Callers authenticate like at the HTTP endpoint, as a client allowed to introspect, with
//! `authorization: Basic base64(urlencode(id):urlencode(secret))` metadata:
//! `UNAUTHENTICATED` without valid credentials, `PERMISSION_DENIED` without the permission.

use std::sync::Arc;

use proto::authz::v1::introspection_server::Introspection;
use proto::authz::v1::{
    IntrospectBatchRequest, IntrospectBatchResponse, IntrospectRequest, IntrospectResponse,
};
use tonic::{Request, Response, Status};

use crate::clients::Clients;
use crate::tokens::{self, Tokens};

/// Most tokens in one `IntrospectBatch`.
pub(crate) const MAX_BATCH: usize = 100;

/// The gRPC introspection service.
pub(crate) struct IntrospectionService {
    pub(crate) clients: Arc<Clients>,
    pub(crate) tokens: Arc<Tokens>,
    pub(crate) auth: Arc<super::GrpcAuth>,
}

impl IntrospectionService {
    /// The caller must be a client allowed to introspect; refusals are counted in
    /// `introspections_total{transport="grpc", result="refused"}`.
    async fn authorize<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let allowed = match super::caller(&self.clients, &self.auth, request).await {
            Ok(client) if client.can_introspect => Ok(()),
            Ok(_) => Err(Status::permission_denied(
                "this client may not introspect tokens",
            )),
            Err(status) => Err(status),
        };
        if let Err(status) = &allowed
            && matches!(
                status.code(),
                tonic::Code::Unauthenticated | tonic::Code::PermissionDenied
            )
        {
            metrics::counter!("introspections_total", "transport" => "grpc", "result" => "refused")
                .increment(1);
        }
        allowed
    }

    async fn run(&self, tokens: &[&str]) -> Result<Vec<IntrospectResponse>, Status> {
        let results = self
            .tokens
            .introspect_many(tokens)
            .await
            .map_err(|failure| super::failure_status(&failure))?;
        Ok(results
            .into_iter()
            .map(|r| {
                metrics::counter!(
                    "introspections_total",
                    "transport" => "grpc",
                    "result" => if r.active { "active" } else { "inactive" }
                )
                .increment(1);
                to_proto(r)
            })
            .collect())
    }
}

fn to_proto(r: tokens::Introspection) -> IntrospectResponse {
    IntrospectResponse {
        active: r.active,
        scope: r.scope.unwrap_or_default(),
        client_id: r.client_id.unwrap_or_default(),
        sub: r.sub.unwrap_or_default(),
        aud: r.aud,
        iss: r.iss.unwrap_or_default(),
        exp: r.exp.unwrap_or_default(),
        iat: r.iat.unwrap_or_default(),
        nbf: 0,
        token_type: r.token_type.unwrap_or_default(),
        jti: r.jti.unwrap_or_default(),
        username: String::new(),
    }
}

#[tonic::async_trait]
impl Introspection for IntrospectionService {
    async fn introspect(
        &self,
        request: Request<IntrospectRequest>,
    ) -> Result<Response<IntrospectResponse>, Status> {
        self.authorize(&request).await?;
        let token = request.into_inner().token;
        if token.is_empty() {
            return Err(Status::invalid_argument("token is required"));
        }
        let mut results = self.run(&[token.as_str()]).await?;
        Ok(Response::new(results.pop().unwrap_or_default()))
    }

    async fn introspect_batch(
        &self,
        request: Request<IntrospectBatchRequest>,
    ) -> Result<Response<IntrospectBatchResponse>, Status> {
        self.authorize(&request).await?;
        let batch = request.into_inner().tokens;
        if batch.len() > MAX_BATCH {
            return Err(Status::invalid_argument(format!(
                "at most {MAX_BATCH} tokens per batch"
            )));
        }
        if batch.iter().any(|t| t.token.is_empty()) {
            return Err(Status::invalid_argument("every token is required"));
        }
        let tokens: Vec<&str> = batch.iter().map(|t| t.token.as_str()).collect();
        let results = self.run(&tokens).await?;
        Ok(Response::new(IntrospectBatchResponse { results }))
    }
}
