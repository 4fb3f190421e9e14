//! `authz.v1.LoginFlow`: idp reads and answers the login and consent challenges of
//! pending authorization requests.
//!
//! Only idp may call it: the caller authenticates with `authorization: Basic
//! base64(client_id:client_secret)` metadata as a registered confidential client, and that
//! client must be the one named by `login.idp_client_id`. Bad or missing credentials are
//! `UNAUTHENTICATED`, another valid client is `PERMISSION_DENIED`. A challenge that is
//! unknown, expired or already answered is `NOT_FOUND`.
//!
//! `GetDeviceRequest`, `AcceptDevice` and `RejectDevice` serve idp's device verification
//! page (RFC 8628 §3.3): a user code that is malformed, unknown, expired or already
//! answered is `NOT_FOUND`.
//!
//! `RevokeSubject` is idp's way to sign a disabled or deleted user out everywhere: every
//! grant of the subject is revoked and its authz browser sessions end, in one transaction.
//!
//! `ListConsents` and `RevokeConsent` serve idp's account page: the user sees the
//! applications with a remembered consent and withdraws one, which revokes that client's
//! grants for the user (Keycloak's account console "Applications").

use std::sync::Arc;

use proto::authz::v1::login_flow_server::LoginFlow;
use proto::authz::v1::{
    AcceptConsentRequest, AcceptLoginRequest, Client as ClientView, CompletedRequest,
    ConsentRequest, GetConsentRequestRequest, GetLoginRequestRequest, LoginRequest, RejectRequest,
    RevokeSubjectRequest, RevokeSubjectResponse, SessionEndedRequest, SessionEndedResponse,
};
// account page
use proto::authz::v1::{
    ListConsentsRequest, ListConsentsResponse, RememberedConsent, RevokeConsentRequest,
    RevokeConsentResponse,
};
// device grant (RFC 8628)
use proto::authz::v1::{
    AcceptDeviceRequest, DeviceAnswered, DeviceRequest, GetDeviceRequestRequest,
    RejectDeviceRequest,
};
use tonic::{Request, Response, Status};

use crate::clients::Clients;
use crate::device::Devices;
use crate::flow::{Flow, FlowError, Login, PendingRequest};
use crate::grants::Grants;
use crate::logout::Logouts;

/// The gRPC login-flow service.
pub(crate) struct LoginFlowService {
    pub(crate) clients: Arc<Clients>,
    pub(crate) flow: Arc<Flow>,
    pub(crate) grants: Arc<Grants>,
    /// logout: back-channel logout propagation.
    pub(crate) logouts: Arc<Logouts>,
    /// Device authorizations (RFC 8628).
    pub(crate) devices: Arc<Devices>,
    pub(crate) auth: Arc<super::GrpcAuth>,
}

fn words(s: &str) -> Vec<String> {
    s.split(' ')
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

fn status(e: FlowError) -> Status {
    match e {
        FlowError::NotFound => Status::not_found(e.to_string()),
        FlowError::Invalid(m) => Status::invalid_argument(m),
        FlowError::Precondition(m) => Status::failed_precondition(m),
        FlowError::Failed(failure) => super::failure_status(&failure),
    }
}

fn client_view(p: &PendingRequest) -> ClientView {
    ClientView {
        client_id: p.client.id.as_str().to_owned(),
        name: p.client.name.clone(),
        first_party: p.client.first_party,
    }
}

impl LoginFlowService {
    async fn authorize<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let client = super::caller(&self.clients, &self.auth, request).await?;
        if client.id.as_str() != self.flow.idp_client_id() {
            return Err(Status::permission_denied(
                "only the identity provider may drive the login flow",
            ));
        }
        Ok(())
    }
}

fn completed(redirect_to: String) -> Response<CompletedRequest> {
    Response::new(CompletedRequest { redirect_to })
}

#[tonic::async_trait]
impl LoginFlow for LoginFlowService {
    async fn get_login_request(
        &self,
        request: Request<GetLoginRequestRequest>,
    ) -> Result<Response<LoginRequest>, Status> {
        self.authorize(&request).await?;
        let challenge = request.into_inner().login_challenge;
        let p = self.flow.login_request(&challenge).await.map_err(status)?;
        Ok(Response::new(LoginRequest {
            challenge,
            client: Some(client_view(&p)),
            requested_scopes: words(&p.row.request.scope),
            prompt: words(&p.row.request.prompt),
            max_age: p.row.request.max_age,
            login_hint: p.row.request.login_hint.clone(),
            ui_locales: words(&p.row.request.ui_locales),
            acr_values: words(&p.row.request.acr_values),
            subject_hint: p.row.request.subject_hint.clone(),
            expires_at: p.row.expires_at,
        }))
    }

    async fn accept_login(
        &self,
        request: Request<AcceptLoginRequest>,
    ) -> Result<Response<CompletedRequest>, Status> {
        self.authorize(&request).await?;
        let r = request.into_inner();
        let login = Login {
            subject: r.subject,
            idp_session_id: r.session_id,
            auth_time: r.auth_time,
            amr: r.amr,
            acr: r.acr,
        };
        let to = self
            .flow
            .accept_login(&r.login_challenge, login)
            .await
            .map_err(status)?;
        metrics::counter!("login_flow_total", "step" => "login", "result" => "accepted")
            .increment(1);
        Ok(completed(to))
    }

    async fn reject_login(
        &self,
        request: Request<RejectRequest>,
    ) -> Result<Response<CompletedRequest>, Status> {
        self.authorize(&request).await?;
        let r = request.into_inner();
        let to = self
            .flow
            .reject(&r.challenge, false, &r.error, &r.error_description)
            .await
            .map_err(status)?;
        metrics::counter!("login_flow_total", "step" => "login", "result" => "rejected")
            .increment(1);
        Ok(completed(to))
    }

    async fn get_consent_request(
        &self,
        request: Request<GetConsentRequestRequest>,
    ) -> Result<Response<ConsentRequest>, Status> {
        self.authorize(&request).await?;
        let challenge = request.into_inner().consent_challenge;
        let p = self
            .flow
            .consent_request(&challenge)
            .await
            .map_err(status)?;
        Ok(Response::new(ConsentRequest {
            challenge,
            client: Some(client_view(&p)),
            subject: p
                .row
                .login
                .as_ref()
                .map(|l| l.subject.clone())
                .unwrap_or_default(),
            requested_scopes: words(&p.row.request.scope),
            granted_scopes: p.remembered.iter().map(str::to_owned).collect(),
            prompt: words(&p.row.request.prompt),
            ui_locales: words(&p.row.request.ui_locales),
            expires_at: p.row.expires_at,
        }))
    }

    async fn accept_consent(
        &self,
        request: Request<AcceptConsentRequest>,
    ) -> Result<Response<CompletedRequest>, Status> {
        self.authorize(&request).await?;
        let r = request.into_inner();
        let to = self
            .flow
            .accept_consent(&r.consent_challenge, &r.granted_scopes, r.remember)
            .await
            .map_err(status)?;
        metrics::counter!("login_flow_total", "step" => "consent", "result" => "accepted")
            .increment(1);
        Ok(completed(to))
    }

    async fn reject_consent(
        &self,
        request: Request<RejectRequest>,
    ) -> Result<Response<CompletedRequest>, Status> {
        self.authorize(&request).await?;
        let r = request.into_inner();
        let to = self
            .flow
            .reject(&r.challenge, true, &r.error, &r.error_description)
            .await
            .map_err(status)?;
        metrics::counter!("login_flow_total", "step" => "consent", "result" => "rejected")
            .increment(1);
        Ok(completed(to))
    }

    async fn revoke_subject(
        &self,
        request: Request<RevokeSubjectRequest>,
    ) -> Result<Response<RevokeSubjectResponse>, Status> {
        self.authorize(&request).await?;
        let subject = request.into_inner().subject;
        if subject.is_empty() {
            return Err(Status::invalid_argument("subject is required"));
        }
        // logout: the sessions about to end, whose clients get logout tokens.
        let sids = self
            .logouts
            .sids_of_subject(&subject)
            .await
            .map_err(|e| super::failure_status(&e.into()))?;
        let revoked = self
            .grants
            .revoke_subject(&subject)
            .await
            .map_err(|e| super::failure_status(&e))?;
        for sid in &sids {
            self.logouts.session_ended(sid).await;
        }
        metrics::counter!("login_flow_total", "step" => "revoke_subject", "result" => "revoked")
            .increment(1);
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Ok(Response::new(RevokeSubjectResponse {
            grants_revoked: count(revoked.grants),
            sessions_ended: count(revoked.sessions),
        }))
    }

    async fn session_ended(
        &self,
        request: Request<SessionEndedRequest>,
    ) -> Result<Response<SessionEndedResponse>, Status> {
        self.authorize(&request).await?;
        let session_id = request.into_inner().session_id;
        if session_id.is_empty() {
            return Err(Status::invalid_argument("session_id is required"));
        }
        let ended = self
            .logouts
            .idp_session_ended(&session_id)
            .await
            .map_err(|e| super::failure_status(&e))?;
        metrics::counter!("login_flow_total", "step" => "session_ended", "result" => "ended")
            .increment(1);
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Ok(Response::new(SessionEndedResponse {
            sessions_ended: count(ended.sessions),
            grants_revoked: count(ended.grants),
            logout_tokens_queued: count(ended.queued),
        }))
    }

    // device grant (RFC 8628 §3.3)
    async fn get_device_request(
        &self,
        request: Request<GetDeviceRequestRequest>,
    ) -> Result<Response<DeviceRequest>, Status> {
        self.authorize(&request).await?;
        let typed = request.into_inner().user_code;
        let d = self.devices.request(&typed).await.map_err(status)?;
        Ok(Response::new(DeviceRequest {
            user_code: domain::device::UserCode::parse(&typed)
                .map(|c| c.display())
                .unwrap_or_default(),
            client: Some(ClientView {
                client_id: d.client.id.as_str().to_owned(),
                name: d.client.name.clone(),
                first_party: d.client.first_party,
            }),
            requested_scopes: d.scope.iter().map(str::to_owned).collect(),
            expires_at: d.expires_at,
        }))
    }

    async fn accept_device(
        &self,
        request: Request<AcceptDeviceRequest>,
    ) -> Result<Response<DeviceAnswered>, Status> {
        self.authorize(&request).await?;
        let r = request.into_inner();
        let login = Login {
            subject: r.subject,
            idp_session_id: r.session_id,
            auth_time: r.auth_time,
            amr: r.amr,
            acr: r.acr,
        };
        self.devices
            .approve(&r.user_code, &login)
            .await
            .map_err(status)?;
        metrics::counter!("login_flow_total", "step" => "device", "result" => "accepted")
            .increment(1);
        Ok(Response::new(DeviceAnswered {}))
    }

    async fn reject_device(
        &self,
        request: Request<RejectDeviceRequest>,
    ) -> Result<Response<DeviceAnswered>, Status> {
        self.authorize(&request).await?;
        let user_code = request.into_inner().user_code;
        self.devices.deny(&user_code).await.map_err(status)?;
        metrics::counter!("login_flow_total", "step" => "device", "result" => "rejected")
            .increment(1);
        Ok(Response::new(DeviceAnswered {}))
    }

    // account page
    async fn list_consents(
        &self,
        request: Request<ListConsentsRequest>,
    ) -> Result<Response<ListConsentsResponse>, Status> {
        self.authorize(&request).await?;
        let subject = request.into_inner().subject;
        if subject.is_empty() {
            return Err(Status::invalid_argument("subject is required"));
        }
        let rows = self
            .grants
            .consents_of(&subject)
            .await
            .map_err(|e| super::failure_status(&e))?;
        let mut consents = Vec::with_capacity(rows.len());
        for row in rows {
            let client = self
                .clients
                .find(&row.client_id)
                .await
                .map_err(|e| super::failure_status(&e.into()))?;
            consents.push(RememberedConsent {
                client: Some(ClientView {
                    name: client.as_ref().map(|c| c.name.clone()).unwrap_or_default(),
                    first_party: client.as_ref().is_some_and(|c| c.first_party),
                    client_id: row.client_id,
                }),
                scopes: words(&row.scope),
                updated_at: row.updated_at,
            });
        }
        Ok(Response::new(ListConsentsResponse { consents }))
    }

    async fn revoke_consent(
        &self,
        request: Request<RevokeConsentRequest>,
    ) -> Result<Response<RevokeConsentResponse>, Status> {
        self.authorize(&request).await?;
        let r = request.into_inner();
        if r.subject.is_empty() || r.client_id.is_empty() {
            return Err(Status::invalid_argument(
                "subject and client_id are required",
            ));
        }
        let revoked = self
            .grants
            .revoke_client_of_subject(&r.subject, &r.client_id)
            .await
            .map_err(|e| super::failure_status(&e))?;
        metrics::counter!("login_flow_total", "step" => "revoke_consent", "result" => "revoked")
            .increment(1);
        Ok(Response::new(RevokeConsentResponse {
            consent_forgotten: revoked.consent,
            grants_revoked: u32::try_from(revoked.grants).unwrap_or(u32::MAX),
        }))
    }
}
