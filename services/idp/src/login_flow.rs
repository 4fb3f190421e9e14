//! The client of authz's `authz.v1.LoginFlow` (proto/authz/v1/login_flow.proto): idp reads
//! pending login and consent requests and completes them, and signs a disabled or deleted
//! user out everywhere at authz (`RevokeSubject`).
//!
//! Every call authenticates as the client configured in `authz` (metadata `authorization:
//! Basic base64(urlencode(id):urlencode(secret))`, RFC 6749 §2.3.1), carries a deadline
//! (`authz.timeout`, also sent as `grpc-timeout`) and the W3C trace context of the browser
//! request it serves, and is counted in `grpc_client_requests_total{service,method,code}`
//! (all three by the runtime's observed channel).

use std::time::Duration;

use config::{ConfigError, Secret, Validate};
use proto::authz::v1::login_flow_client::LoginFlowClient;
use proto::authz::v1::{
    AcceptConsentRequest, AcceptLoginRequest, CompletedRequest, ConsentRequest,
    GetConsentRequestRequest, GetLoginRequestRequest, LoginRequest, RejectRequest,
    RevokeSubjectRequest, RevokeSubjectResponse, SessionEndedRequest, SessionEndedResponse,
};
// device grant (RFC 8628)
use proto::authz::v1::{
    AcceptDeviceRequest, DeviceAnswered, DeviceRequest, GetDeviceRequestRequest,
    RejectDeviceRequest,
};
// account page
use proto::authz::v1::{
    ListConsentsRequest, RememberedConsent, RevokeConsentRequest, RevokeConsentResponse,
};
use runtime::GrpcChannel;
use serde::{Deserialize, Serialize};
use tonic::metadata::AsciiMetadataValue;
use tonic::{Code, Request, Response, Status};

use crate::IdpError;

/// The `authz` section: how idp reaches authz's `LoginFlow`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthzClientConfig {
    /// authz's gRPC endpoint (`http://host:port`, or `https://` for TLS).
    pub grpc_url: String,
    /// The client idp authenticates as (registered at authz, named there by
    /// `login.idp_client_id`).
    pub client_id: String,
    /// Its secret. Secret: give it as `client_secret_file`. Without it authz refuses every
    /// call and logins fail with an error page.
    pub client_secret: Option<Secret<String>>,
    /// Deadline of each call.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// TLS of the link when `grpc_url` is `https://`: the CA bundle authz's certificate
    /// must chain to (required), the name expected in it, and idp's client certificate
    /// (mutual TLS: authz maps it to a client id, so no secret is needed).
    pub tls: runtime::TlsClientConfig,
}

impl Default for AuthzClientConfig {
    fn default() -> Self {
        Self {
            grpc_url: "http://127.0.0.1:50051".to_owned(),
            client_id: "idp".to_owned(),
            client_secret: None,
            timeout: Duration::from_secs(5),
            tls: runtime::TlsClientConfig::default(),
        }
    }
}

impl Validate for AuthzClientConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let url = url::Url::parse(&self.grpc_url)
            .map_err(|e| ConfigError::new("grpc_url", e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(ConfigError::new(
                "grpc_url",
                "must be an http:// or https:// URL with a host",
            ));
        }
        if self.client_id.trim().is_empty() {
            return Err(ConfigError::new("client_id", "must not be empty"));
        }
        if self.timeout < Duration::from_millis(100) || self.timeout > Duration::from_secs(60) {
            return Err(ConfigError::new("timeout", "must be between 100ms and 60s"));
        }
        self.tls
            .validate_for(&self.grpc_url)
            .map_err(|e| e.within("tls"))
    }
}

/// authz's `LoginFlow`, as idp calls it. Cheap to clone.
#[derive(Clone)]
pub(crate) struct LoginFlow {
    client: LoginFlowClient<GrpcChannel>,
    authorization: Option<AsciiMetadataValue>,
    timeout: Duration,
}

impl LoginFlow {
    /// A client of `config.grpc_url`; connects on first use (must run inside a Tokio
    /// runtime), so idp starts whether or not authz is up.
    pub(crate) fn new(config: &AuthzClientConfig) -> Result<Self, IdpError> {
        let invalid = |key: &str, message: String| {
            IdpError::Config(ConfigError::new(key, message).within("authz"))
        };
        let channel = config
            .tls
            .endpoint("grpc_url", &config.grpc_url)
            .map_err(|e| IdpError::Config(e.within("authz")))?
            .connect_timeout(config.timeout)
            .tcp_nodelay(true)
            .connect_lazy();
        let authorization = match &config.client_secret {
            Some(secret) => Some(
                domain::basic::encode(&config.client_id, secret.expose())
                    .parse()
                    .map_err(|_| invalid("client_secret", "not usable in a header".into()))?,
            ),
            None if config.tls.presents_certificate(&config.grpc_url) => None,
            None => {
                tracing::warn!(
                    "authz.client_secret is not set and no client certificate is configured: authz will refuse the login flow calls"
                );
                None
            }
        };
        Ok(Self {
            client: LoginFlowClient::new(runtime::grpc_channel(channel)),
            authorization,
            timeout: config.timeout,
        })
    }

    async fn call<Req, Resp, Fut>(
        &self,
        method: &'static str,
        message: Req,
        send: impl FnOnce(LoginFlowClient<GrpcChannel>, Request<Req>) -> Fut,
    ) -> Result<Resp, IdpError>
    where
        Fut: Future<Output = Result<Response<Resp>, Status>>,
    {
        let mut request = Request::new(message);
        request.set_timeout(self.timeout);
        if let Some(authorization) = &self.authorization {
            request
                .metadata_mut()
                .insert("authorization", authorization.clone());
        }
        let result =
            match tokio::time::timeout(self.timeout, send(self.client.clone(), request)).await {
                Ok(result) => result,
                Err(_) => Err(Status::deadline_exceeded("no answer within authz.timeout")),
            };
        result
            .map(Response::into_inner)
            .map_err(|status| error(method, &status))
    }

    /// `GetLoginRequest`; [`IdpError::Gone`] when the challenge is unknown, expired or used.
    pub(crate) async fn get_login_request(
        &self,
        challenge: &str,
    ) -> Result<LoginRequest, IdpError> {
        let message = GetLoginRequestRequest {
            login_challenge: challenge.to_owned(),
        };
        self.call("GetLoginRequest", message, |mut c, r| async move {
            c.get_login_request(r).await
        })
        .await
    }

    /// `AcceptLogin`; returns where to send the browser.
    pub(crate) async fn accept_login(
        &self,
        message: AcceptLoginRequest,
    ) -> Result<String, IdpError> {
        self.call("AcceptLogin", message, |mut c, r| async move {
            c.accept_login(r).await
        })
        .await
        .map(|c: CompletedRequest| c.redirect_to)
    }

    /// `RejectLogin`; returns where to send the browser.
    pub(crate) async fn reject_login(&self, message: RejectRequest) -> Result<String, IdpError> {
        self.call("RejectLogin", message, |mut c, r| async move {
            c.reject_login(r).await
        })
        .await
        .map(|c: CompletedRequest| c.redirect_to)
    }

    /// `GetConsentRequest`; [`IdpError::Gone`] when the challenge is unknown, expired or
    /// used.
    pub(crate) async fn get_consent_request(
        &self,
        challenge: &str,
    ) -> Result<ConsentRequest, IdpError> {
        let message = GetConsentRequestRequest {
            consent_challenge: challenge.to_owned(),
        };
        self.call("GetConsentRequest", message, |mut c, r| async move {
            c.get_consent_request(r).await
        })
        .await
    }

    /// `AcceptConsent`; returns where to send the browser.
    pub(crate) async fn accept_consent(
        &self,
        message: AcceptConsentRequest,
    ) -> Result<String, IdpError> {
        self.call("AcceptConsent", message, |mut c, r| async move {
            c.accept_consent(r).await
        })
        .await
        .map(|c: CompletedRequest| c.redirect_to)
    }

    /// `RevokeSubject`: authz revokes every grant of `subject` (refresh tokens, and the
    /// access tokens issued from them) and ends its authz browser sessions, in one
    /// transaction; idempotent, so a failed call can simply be repeated. Returns authz's
    /// count of what this call revoked. [`IdpError::Unavailable`] when authz cannot be
    /// reached in time.
    pub(crate) async fn revoke_subject(
        &self,
        subject: &str,
    ) -> Result<RevokeSubjectResponse, IdpError> {
        let message = RevokeSubjectRequest {
            subject: subject.to_owned(),
        };
        self.call("RevokeSubject", message, |mut c, r| async move {
            c.revoke_subject(r).await
        })
        .await
    }

    /// logout: `SessionEnded`: tells authz that idp session `session_id` ended here, so
    /// authz ends the authz sessions backed by it, revokes their grants (except
    /// `offline_access`) and queues back-channel logout tokens for their clients.
    /// Idempotent. [`IdpError::Unavailable`] when authz cannot be reached in time.
    pub(crate) async fn session_ended(
        &self,
        session_id: &str,
    ) -> Result<SessionEndedResponse, IdpError> {
        let message = SessionEndedRequest {
            session_id: session_id.to_owned(),
        };
        self.call("SessionEnded", message, |mut c, r| async move {
            c.session_ended(r).await
        })
        .await
    }

    /// `RejectConsent`; returns where to send the browser.
    pub(crate) async fn reject_consent(&self, message: RejectRequest) -> Result<String, IdpError> {
        self.call("RejectConsent", message, |mut c, r| async move {
            c.reject_consent(r).await
        })
        .await
        .map(|c: CompletedRequest| c.redirect_to)
    }

    // device grant (RFC 8628 §3.3)
    /// `GetDeviceRequest`; [`IdpError::Gone`] when the user code is malformed, unknown,
    /// expired or already answered.
    pub(crate) async fn get_device_request(
        &self,
        user_code: &str,
    ) -> Result<DeviceRequest, IdpError> {
        let message = GetDeviceRequestRequest {
            user_code: user_code.to_owned(),
        };
        self.call("GetDeviceRequest", message, |mut c, r| async move {
            c.get_device_request(r).await
        })
        .await
    }

    /// `AcceptDevice`: the signed-in user approved the device.
    pub(crate) async fn accept_device(&self, message: AcceptDeviceRequest) -> Result<(), IdpError> {
        self.call("AcceptDevice", message, |mut c, r| async move {
            c.accept_device(r).await
        })
        .await
        .map(|_: DeviceAnswered| ())
    }

    /// `RejectDevice`: the user denied the device.
    pub(crate) async fn reject_device(&self, user_code: &str) -> Result<(), IdpError> {
        let message = RejectDeviceRequest {
            user_code: user_code.to_owned(),
        };
        self.call("RejectDevice", message, |mut c, r| async move {
            c.reject_device(r).await
        })
        .await
        .map(|_: DeviceAnswered| ())
    }

    // account page
    /// `ListConsents`: the applications `subject` asked authz to remember consent for.
    pub(crate) async fn list_consents(
        &self,
        subject: &str,
    ) -> Result<Vec<RememberedConsent>, IdpError> {
        let message = ListConsentsRequest {
            subject: subject.to_owned(),
        };
        self.call("ListConsents", message, |mut c, r| async move {
            c.list_consents(r).await
        })
        .await
        .map(|r: proto::authz::v1::ListConsentsResponse| r.consents)
    }

    /// `RevokeConsent`: authz revokes `client_id`'s grants for `subject` and forgets the
    /// remembered consent, in one transaction; idempotent.
    pub(crate) async fn revoke_consent(
        &self,
        subject: &str,
        client_id: &str,
    ) -> Result<RevokeConsentResponse, IdpError> {
        let message = RevokeConsentRequest {
            subject: subject.to_owned(),
            client_id: client_id.to_owned(),
        };
        self.call("RevokeConsent", message, |mut c, r| async move {
            c.revoke_consent(r).await
        })
        .await
    }
}

/// What the browser is shown for a sign-in request that expired or was answered (410).
pub(crate) fn expired_request() -> IdpError {
    IdpError::Gone("This sign-in request has expired or was already completed.".to_owned())
}

/// Maps authz's answer to what the browser is shown: an expired or used challenge is the
/// user's problem (410), an unreachable authz a temporary one (503), anything else means
/// the two services disagree (credentials, contract) and is logged loudly.
fn error(method: &str, status: &Status) -> IdpError {
    match status.code() {
        Code::NotFound => expired_request(),
        Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted | Code::Cancelled => {
            tracing::warn!(method, code = ?status.code(), message = status.message(), "authz unavailable");
            IdpError::Unavailable(status.message().to_owned())
        }
        code => {
            tracing::error!(
                method,
                ?code,
                message = status.message(),
                "authz refused a login flow call"
            );
            IdpError::Upstream(format!("{method}: {code:?}"))
        }
    }
}
