//! A stand-in for authz's `authz.v1.LoginFlow`, for idp's own integration tests only (the
//! end-to-end tests use the real authz): it serves canned login and consent requests,
//! insists on idp's client credentials, and records every call with its metadata.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use proto::authz::v1::login_flow_server::{LoginFlow, LoginFlowServer};
use proto::authz::v1::{
    AcceptConsentRequest, AcceptLoginRequest, Client, CompletedRequest, ConsentRequest,
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
    ListConsentsRequest, ListConsentsResponse, RememberedConsent, RevokeConsentRequest,
    RevokeConsentResponse,
};
use tonic::{Request, Response, Status};

pub const CLIENT_ID: &str = "idp";
pub const CLIENT_SECRET: &str = "idp-secret-for+tests/only";

/// One completing call idp made.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    AcceptLogin(AcceptLoginRequest),
    RejectLogin(RejectRequest),
    AcceptConsent(AcceptConsentRequest),
    RejectConsent(RejectRequest),
    RevokeSubject(RevokeSubjectRequest),
    SessionEnded(SessionEndedRequest),
    AcceptDevice(AcceptDeviceRequest),
    RejectDevice(RejectDeviceRequest),
    // account page
    RevokeConsent(RevokeConsentRequest),
}

/// Metadata seen on a call.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: &'static str,
    pub grpc_timeout: Option<String>,
}

#[derive(Default)]
struct State {
    logins: HashMap<String, (LoginRequest, String)>,
    consents: HashMap<String, (ConsentRequest, String)>,
    /// Pending device requests by canonical user code.
    devices: HashMap<String, DeviceRequest>,
    calls: Vec<Call>,
    seen: Vec<Seen>,
    // account page
    /// Remembered consents by subject.
    remembered: HashMap<String, Vec<RememberedConsent>>,
}

/// The fake; cheap to clone.
#[derive(Clone, Default)]
pub struct FakeAuthz {
    state: Arc<Mutex<State>>,
}

pub fn client(name: &str) -> Option<Client> {
    Some(Client {
        client_id: "demo-app".into(),
        name: name.into(),
        first_party: false,
    })
}

impl FakeAuthz {
    /// Serves on a free loopback port until the test ends.
    pub async fn start() -> (Self, SocketAddr) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        (Self::serve(listener), addr)
    }

    // account page
    /// Serves on a listener the test already holds (authz coming back on the address
    /// idp was configured with, which nobody else could take meanwhile).
    pub fn serve(listener: tokio::net::TcpListener) -> Self {
        let fake = Self::default();
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        let server = tonic::transport::Server::builder()
            .add_service(LoginFlowServer::new(fake.clone()))
            .serve_with_incoming(incoming);
        tokio::spawn(server);
        fake
    }

    /// A pending login request; `AcceptLogin` on it answers `accept_to`. authz always
    /// sends a pending request's expiry: one left at 0 never expires.
    pub fn add_login(&self, mut request: LoginRequest, accept_to: &str) {
        if request.expires_at == 0 {
            request.expires_at = i64::MAX;
        }
        let mut s = self.state.lock().unwrap();
        s.logins
            .insert(request.challenge.clone(), (request, accept_to.to_owned()));
    }

    /// A plain login request from "Demo App" for `openid profile email`.
    pub fn login(&self, challenge: &str) -> LoginRequest {
        let request = LoginRequest {
            challenge: challenge.into(),
            client: client("Demo App"),
            requested_scopes: vec!["openid".into(), "profile".into(), "email".into()],
            expires_at: i64::MAX,
            ..LoginRequest::default()
        };
        self.add_login(
            request.clone(),
            &format!("https://authz.test/resume?login={challenge}"),
        );
        request
    }

    /// A pending consent request; `AcceptConsent` on it answers `accept_to`.
    pub fn add_consent(&self, request: ConsentRequest, accept_to: &str) {
        let mut s = self.state.lock().unwrap();
        s.consents
            .insert(request.challenge.clone(), (request, accept_to.to_owned()));
    }

    /// A pending device request of "Demo TV" for `openid profile` with `user_code`
    /// (display form, `XXXX-XXXX`); found however it is typed, answered once.
    pub fn device(&self, user_code: &str) {
        let request = DeviceRequest {
            user_code: user_code.to_owned(),
            client: Some(Client {
                client_id: "demo-tv".into(),
                name: "Demo TV".into(),
                first_party: false,
            }),
            requested_scopes: vec!["openid".into(), "profile".into()],
            expires_at: i64::MAX,
        };
        let key = canonical(user_code).unwrap();
        self.state.lock().unwrap().devices.insert(key, request);
    }

    // account page
    /// `subject` remembers consent for `client_id` (named `name`) with `scopes`.
    pub fn remember(&self, subject: &str, client_id: &str, name: &str, scopes: &[&str]) {
        self.state
            .lock()
            .unwrap()
            .remembered
            .entry(subject.to_owned())
            .or_default()
            .push(RememberedConsent {
                client: Some(Client {
                    client_id: client_id.into(),
                    name: name.into(),
                    first_party: false,
                }),
                scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
                updated_at: 1_700_000_000,
            });
    }

    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    fn check<T>(&self, method: &'static str, request: &Request<T>) -> Result<(), Status> {
        let meta = request.metadata();
        let text = |k: &str| meta.get(k).and_then(|v| v.to_str().ok()).map(str::to_owned);
        self.state.lock().unwrap().seen.push(Seen {
            method,
            grpc_timeout: text("grpc-timeout"),
        });
        let expected = domain::basic::encode(CLIENT_ID, CLIENT_SECRET);
        if text("authorization").as_deref() == Some(expected.as_str()) {
            Ok(())
        } else {
            Err(Status::unauthenticated("client authentication failed"))
        }
    }

    fn completed(to: String) -> Result<Response<CompletedRequest>, Status> {
        Ok(Response::new(CompletedRequest { redirect_to: to }))
    }
}

#[tonic::async_trait]
impl LoginFlow for FakeAuthz {
    async fn get_login_request(
        &self,
        request: Request<GetLoginRequestRequest>,
    ) -> Result<Response<LoginRequest>, Status> {
        self.check("GetLoginRequest", &request)?;
        let s = self.state.lock().unwrap();
        s.logins
            .get(&request.get_ref().login_challenge)
            .map(|(r, _)| Response::new(r.clone()))
            .ok_or_else(|| Status::not_found("no such login request"))
    }

    async fn accept_login(
        &self,
        request: Request<AcceptLoginRequest>,
    ) -> Result<Response<CompletedRequest>, Status> {
        self.check("AcceptLogin", &request)?;
        let r = request.into_inner();
        let mut s = self.state.lock().unwrap();
        let (_, to) = s
            .logins
            .remove(&r.login_challenge)
            .ok_or_else(|| Status::not_found("no such login request"))?;
        s.calls.push(Call::AcceptLogin(r));
        Self::completed(to)
    }

    async fn reject_login(
        &self,
        request: Request<RejectRequest>,
    ) -> Result<Response<CompletedRequest>, Status> {
        self.check("RejectLogin", &request)?;
        let r = request.into_inner();
        let mut s = self.state.lock().unwrap();
        s.logins
            .remove(&r.challenge)
            .ok_or_else(|| Status::not_found("no such login request"))?;
        let to = format!("https://client.test/cb?error={}", r.error);
        s.calls.push(Call::RejectLogin(r));
        Self::completed(to)
    }

    async fn get_consent_request(
        &self,
        request: Request<GetConsentRequestRequest>,
    ) -> Result<Response<ConsentRequest>, Status> {
        self.check("GetConsentRequest", &request)?;
        let s = self.state.lock().unwrap();
        s.consents
            .get(&request.get_ref().consent_challenge)
            .map(|(r, _)| Response::new(r.clone()))
            .ok_or_else(|| Status::not_found("no such consent request"))
    }

    async fn accept_consent(
        &self,
        request: Request<AcceptConsentRequest>,
    ) -> Result<Response<CompletedRequest>, Status> {
        self.check("AcceptConsent", &request)?;
        let r = request.into_inner();
        let mut s = self.state.lock().unwrap();
        let (pending, to) = s
            .consents
            .remove(&r.consent_challenge)
            .ok_or_else(|| Status::not_found("no such consent request"))?;
        if !r
            .granted_scopes
            .iter()
            .all(|g| pending.requested_scopes.contains(g))
        {
            return Err(Status::invalid_argument("granted scopes not requested"));
        }
        s.calls.push(Call::AcceptConsent(r));
        Self::completed(to)
    }

    async fn reject_consent(
        &self,
        request: Request<RejectRequest>,
    ) -> Result<Response<CompletedRequest>, Status> {
        self.check("RejectConsent", &request)?;
        let r = request.into_inner();
        let mut s = self.state.lock().unwrap();
        s.consents
            .remove(&r.challenge)
            .ok_or_else(|| Status::not_found("no such consent request"))?;
        let to = format!("https://client.test/cb?error={}", r.error);
        s.calls.push(Call::RejectConsent(r));
        Self::completed(to)
    }

    async fn revoke_subject(
        &self,
        request: Request<RevokeSubjectRequest>,
    ) -> Result<Response<RevokeSubjectResponse>, Status> {
        self.check("RevokeSubject", &request)?;
        let r = request.into_inner();
        let mut s = self.state.lock().unwrap();
        s.calls.push(Call::RevokeSubject(r));
        Ok(Response::new(RevokeSubjectResponse {
            grants_revoked: 2,
            sessions_ended: 1,
        }))
    }

    async fn session_ended(
        &self,
        request: Request<SessionEndedRequest>,
    ) -> Result<Response<SessionEndedResponse>, Status> {
        self.check("SessionEnded", &request)?;
        let r = request.into_inner();
        let mut s = self.state.lock().unwrap();
        s.calls.push(Call::SessionEnded(r));
        Ok(Response::new(SessionEndedResponse {
            sessions_ended: 1,
            grants_revoked: 1,
            logout_tokens_queued: 1,
        }))
    }
    async fn get_device_request(
        &self,
        request: Request<GetDeviceRequestRequest>,
    ) -> Result<Response<DeviceRequest>, Status> {
        self.check("GetDeviceRequest", &request)?;
        let s = self.state.lock().unwrap();
        canonical(&request.get_ref().user_code)
            .and_then(|k| s.devices.get(&k))
            .map(|r| Response::new(r.clone()))
            .ok_or_else(|| Status::not_found("no such device request"))
    }

    async fn accept_device(
        &self,
        request: Request<AcceptDeviceRequest>,
    ) -> Result<Response<DeviceAnswered>, Status> {
        self.check("AcceptDevice", &request)?;
        let r = request.into_inner();
        let mut s = self.state.lock().unwrap();
        canonical(&r.user_code)
            .and_then(|k| s.devices.remove(&k))
            .ok_or_else(|| Status::not_found("no such device request"))?;
        s.calls.push(Call::AcceptDevice(r));
        Ok(Response::new(DeviceAnswered {}))
    }

    async fn reject_device(
        &self,
        request: Request<RejectDeviceRequest>,
    ) -> Result<Response<DeviceAnswered>, Status> {
        self.check("RejectDevice", &request)?;
        let r = request.into_inner();
        let mut s = self.state.lock().unwrap();
        canonical(&r.user_code)
            .and_then(|k| s.devices.remove(&k))
            .ok_or_else(|| Status::not_found("no such device request"))?;
        s.calls.push(Call::RejectDevice(r));
        Ok(Response::new(DeviceAnswered {}))
    }

    // account page
    async fn list_consents(
        &self,
        request: Request<ListConsentsRequest>,
    ) -> Result<Response<ListConsentsResponse>, Status> {
        self.check("ListConsents", &request)?;
        let s = self.state.lock().unwrap();
        let consents = s
            .remembered
            .get(&request.get_ref().subject)
            .cloned()
            .unwrap_or_default();
        Ok(Response::new(ListConsentsResponse { consents }))
    }

    async fn revoke_consent(
        &self,
        request: Request<RevokeConsentRequest>,
    ) -> Result<Response<RevokeConsentResponse>, Status> {
        self.check("RevokeConsent", &request)?;
        let r = request.into_inner();
        let mut s = self.state.lock().unwrap();
        let mut forgotten = false;
        if let Some(list) = s.remembered.get_mut(&r.subject) {
            let before = list.len();
            list.retain(|c| c.client.as_ref().is_none_or(|c| c.client_id != r.client_id));
            forgotten = list.len() < before;
        }
        s.calls.push(Call::RevokeConsent(r));
        Ok(Response::new(RevokeConsentResponse {
            consent_forgotten: forgotten,
            grants_revoked: u32::from(forgotten),
        }))
    }
}

/// A user code as authz reads it.
fn canonical(typed: &str) -> Option<String> {
    domain::device::UserCode::parse(typed).map(|c| c.canonical().to_owned())
}
