//! `authz.v1.LoginFlow`: idp reads and answers the login and consent challenges of
//! pending authorization requests.
//!
//! Only idp may call it: the caller authenticates with `authorization: Basic
//! base64(client_id:client_secret)` metadata as a registered confidential client, and that
//! client must be the one named by `login.idp_client_id`. Bad or missing credentials are
//! `UNAUTHENTICATED`, another valid client is `PERMISSION_DENIED`. A challenge that is
//! unknown, expired or already answered is `NOT_FOUND`.
//!
//! `RevokeSubject` is idp's way to sign a disabled or deleted user out everywhere: every
//! grant of the subject is revoked and its authz browser sessions end, in one transaction.

use std::sync::Arc;

use proto::authz::v1::login_flow_server::LoginFlow;
use proto::authz::v1::{
    AcceptConsentRequest, AcceptLoginRequest, Client as ClientView, CompletedRequest,
    ConsentRequest, GetConsentRequestRequest, GetLoginRequestRequest, LoginRequest, RejectRequest,
    RevokeSubjectRequest, RevokeSubjectResponse,
};
use tonic::{Request, Response, Status};

use crate::clients::Clients;
use crate::flow::{Flow, FlowError, Login, PendingRequest};
use crate::grants::Grants;

/// The gRPC login-flow service.
pub(crate) struct LoginFlowService {
    pub(crate) clients: Arc<Clients>,
    pub(crate) flow: Arc<Flow>,
    pub(crate) grants: Arc<Grants>,
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
        let revoked = self
            .grants
            .revoke_subject(&subject)
            .await
            .map_err(|e| super::failure_status(&e))?;
        metrics::counter!("login_flow_total", "step" => "revoke_subject", "result" => "revoked")
            .increment(1);
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Ok(Response::new(RevokeSubjectResponse {
            grants_revoked: count(revoked.grants),
            sessions_ended: count(revoked.sessions),
        }))
    }
}
