//! authz's client of idp's `idp.v1.Sessions` gRPC API: user claims for ID tokens and
//! userinfo, and the liveness and end of idp browser sessions.
//!
//! Every call authenticates with `authorization: Basic` client credentials (RFC 6749
//! §2.3.1, [`domain::basic::encode`]; the `idp` configuration section) in its metadata,
//! carries a deadline (`grpc-timeout`, and enforced locally as well), and maps idp's
//! status codes once, here. The channel is the
//! runtime's observed one: each call carries the W3C trace context and is counted in
//! `grpc_client_requests_total{service,method,code}`.

use std::time::Duration;

use domain::ScopeSet;
use proto::idp::v1::sessions_client::SessionsClient;
use proto::idp::v1::{
    CheckSessionRequest, EndSessionRequest, GetUserClaimsRequest, UserClaims, end_session_request,
};
use runtime::GrpcChannel;
use tonic::metadata::AsciiMetadataValue;
use tracing::instrument;

use crate::AuthzError;
use crate::config::IdpConfig;

/// Why a call to idp did not give an answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum IdpError {
    /// The user is unknown, deleted (`NOT_FOUND`) or disabled (`PERMISSION_DENIED`): the
    /// grant must fail (`invalid_grant`, `invalid_token`).
    #[error("the user is no longer active")]
    UserGone,
    /// idp could not be reached in time or is overloaded: the client may retry.
    #[error("idp unavailable: {0}")]
    Unavailable(String),
    /// idp answered with an error that is not about the user (including refusing authz's
    /// own credentials): a server error.
    #[error("idp refused the call: {0}")]
    Failed(String),
}

/// What idp says about one of its browser sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IdpSession {
    /// The session is alive.
    pub(crate) active: bool,
    /// Its user.
    pub(crate) subject: String,
}

/// The `idp.v1.Sessions` client: one lazily connected channel shared by every request.
pub(crate) struct Idp {
    client: SessionsClient<GrpcChannel>,
    authorization: Option<AsciiMetadataValue>,
    timeout: Duration,
}

impl Idp {
    /// A client for `config.grpc_url`; connects on first use and reconnects as needed.
    pub(crate) fn new(config: &IdpConfig) -> Result<Self, AuthzError> {
        let endpoint = config
            .tls
            .endpoint("grpc_url", &config.grpc_url)
            .map_err(|e| AuthzError::Invalid(e.within("idp").to_string()))?
            .connect_timeout(config.timeout)
            .timeout(config.timeout)
            .tcp_nodelay(true);
        let authorization = match &config.client_secret {
            Some(secret) => {
                let value = domain::basic::encode(&config.client_id, secret.expose());
                Some(value.parse().map_err(|_| {
                    AuthzError::Invalid("idp.client_secret: not encodable as metadata".into())
                })?)
            }
            None if config.tls.presents_certificate(&config.grpc_url) => None,
            None => {
                tracing::warn!(
                    "idp.client_secret is not set and no client certificate is configured: idp will refuse authz's calls and the authorization code flow cannot complete"
                );
                None
            }
        };
        Ok(Self {
            client: SessionsClient::new(runtime::grpc_channel(endpoint.connect_lazy())),
            authorization,
            timeout: config.timeout,
        })
    }

    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(self.timeout);
        if let Some(value) = &self.authorization {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        request
    }

    /// Runs one call with the deadline enforced locally too, counting the outcome in
    /// `idp_calls_total{method, code}`.
    async fn call<T, F>(&self, method: &'static str, call: F) -> Result<T, tonic::Status>
    where
        F: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let result = match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result.map(tonic::Response::into_inner),
            Err(_) => Err(tonic::Status::deadline_exceeded(
                "idp did not answer in time",
            )),
        };
        let code = match &result {
            Ok(_) => tonic::Code::Ok,
            Err(status) => status.code(),
        };
        metrics::counter!("idp_calls_total", "method" => method, "code" => format!("{code:?}"))
            .increment(1);
        result
    }

    /// `GetUserClaims`: the OpenID Connect standard claims (Core §5.1) of `subject` that
    /// `scopes` allow. A deleted or disabled user is [`IdpError::UserGone`].
    #[instrument(skip_all)]
    pub(crate) async fn user_claims(
        &self,
        subject: &str,
        scopes: &ScopeSet,
    ) -> Result<UserClaims, IdpError> {
        let request = self.request(GetUserClaimsRequest {
            subject: subject.to_owned(),
            scopes: scopes.iter().map(str::to_owned).collect(),
        });
        let mut client = self.client.clone();
        match self
            .call("GetUserClaims", client.get_user_claims(request))
            .await
        {
            Ok(claims) => Ok(claims),
            Err(s)
                if matches!(
                    s.code(),
                    tonic::Code::NotFound | tonic::Code::PermissionDenied
                ) =>
            {
                Err(IdpError::UserGone)
            }
            Err(s) => Err(classify(&s)),
        }
    }

    /// `CheckSession`: whether idp's browser session `session_id` is alive and whose it is.
    /// A session idp does not know (`NOT_FOUND`) or whose user is disabled is inactive.
    #[instrument(skip_all)]
    pub(crate) async fn check_session(&self, session_id: &str) -> Result<IdpSession, IdpError> {
        let request = self.request(CheckSessionRequest {
            session_id: session_id.to_owned(),
        });
        let mut client = self.client.clone();
        match self
            .call("CheckSession", client.check_session(request))
            .await
        {
            Ok(r) => Ok(IdpSession {
                active: r.active,
                subject: r.subject,
            }),
            Err(s)
                if matches!(
                    s.code(),
                    tonic::Code::NotFound | tonic::Code::PermissionDenied
                ) =>
            {
                Ok(IdpSession {
                    active: false,
                    subject: String::new(),
                })
            }
            Err(s) => Err(classify(&s)),
        }
    }

    /// `EndSession` of one idp browser session; returns how many sessions idp ended (an
    /// unknown session is simply none).
    #[instrument(skip_all)]
    pub(crate) async fn end_session(&self, session_id: &str) -> Result<u32, IdpError> {
        let request = self.request(EndSessionRequest {
            target: Some(end_session_request::Target::SessionId(
                session_id.to_owned(),
            )),
        });
        let mut client = self.client.clone();
        match self.call("EndSession", client.end_session(request)).await {
            Ok(r) => Ok(r.ended),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(0),
            Err(s) => Err(classify(&s)),
        }
    }
}

fn classify(status: &tonic::Status) -> IdpError {
    match status.code() {
        tonic::Code::Unavailable
        | tonic::Code::DeadlineExceeded
        | tonic::Code::ResourceExhausted
        | tonic::Code::Cancelled
        | tonic::Code::Unknown => {
            IdpError::Unavailable(format!("{:?}: {}", status.code(), status.message()))
        }
        code => {
            if code == tonic::Code::Unauthenticated {
                tracing::error!(
                    "idp refused authz's credentials (check idp.client_id and idp.client_secret)"
                );
            }
            IdpError::Failed(format!("{code:?}: {}", status.message()))
        }
    }
}

/// A failed idp call below a request: the edges answer `temporarily_unavailable` /
/// `UNAVAILABLE` when idp could not be reached in time ([`IdpError::Unavailable`]) and an
/// internal error otherwise. Callers that give [`IdpError::UserGone`] a meaning of their
/// own (`invalid_grant`, `invalid_token`) match it before converting.
impl From<IdpError> for crate::error::Failure {
    fn from(e: IdpError) -> Self {
        Self::Idp(e)
    }
}
