//! `idp.v1.Sessions` (proto/idp/v1/sessions.proto): what authz asks about users and
//! browser sessions. Every call first authenticates the caller (`UNAUTHENTICATED`
//! otherwise).

use proto::idp::v1::sessions_server::Sessions as SessionsApi;
use proto::idp::v1::{
    CheckSessionRequest, CheckSessionResponse, EndSessionRequest, EndSessionResponse,
    GetUserClaimsRequest, UserClaims, end_session_request::Target,
};
use tonic::{Request, Response, Status};

use super::auth::Callers;
use crate::IdpError;
use crate::sessions::Sessions;
use crate::users::{User, Users};

/// The gRPC `Sessions` service.
pub(crate) struct SessionsService {
    pub(crate) users: Users,
    pub(crate) sessions: Sessions,
    pub(crate) callers: Callers,
}

/// One mapping of the crate error to gRPC codes; causes are logged, not sent.
fn status(e: IdpError) -> Status {
    match e {
        IdpError::Storage(e) if e.is_transient() => {
            tracing::warn!(error = %e, "database unavailable");
            Status::unavailable("try again later")
        }
        IdpError::Invalid(m) => Status::invalid_argument(m),
        IdpError::NotFound(m) => Status::not_found(m),
        other => {
            tracing::error!(error = %other, "Sessions call failed");
            Status::internal("internal error")
        }
    }
}

/// The claims of OpenID Connect Core 1.0 §5.4 that `scopes` allow: `profile` → name,
/// given_name, family_name, preferred_username, picture, locale, updated_at; `email` →
/// email, email_verified. `sub` always.
fn claims(user: User, scopes: &[String]) -> UserClaims {
    let granted = |scope: &str| {
        scopes
            .iter()
            .flat_map(|s| s.split_whitespace())
            .any(|s| s == scope)
    };
    let mut claims = UserClaims {
        sub: user.id,
        ..UserClaims::default()
    };
    let p = user.profile;
    if granted("profile") {
        claims.name = p.name;
        claims.given_name = p.given_name;
        claims.family_name = p.family_name;
        claims.preferred_username = Some(user.username);
        claims.picture = p.picture;
        claims.locale = p.locale;
        claims.updated_at = Some(user.updated_at);
    }
    if granted("email")
        && let Some(email) = p.email
    {
        claims.email = Some(email);
        claims.email_verified = Some(p.email_verified);
    }
    claims
}

impl SessionsService {
    async fn user_claims(&self, request: GetUserClaimsRequest) -> Result<UserClaims, Status> {
        if request.subject.is_empty() {
            return Err(Status::invalid_argument("subject is required"));
        }
        let user = self
            .users
            .by_id(&request.subject)
            .await
            .map_err(status)?
            .ok_or_else(|| Status::not_found("no such user"))?;
        if user.disabled {
            return Err(Status::permission_denied("the user is disabled"));
        }
        Ok(claims(user, &request.scopes))
    }

    async fn check_session(
        &self,
        request: CheckSessionRequest,
    ) -> Result<CheckSessionResponse, Status> {
        let Some(session) = self
            .sessions
            .by_id(&request.session_id)
            .await
            .map_err(status)?
        else {
            return Ok(CheckSessionResponse::default());
        };
        let enabled = self
            .users
            .by_id(&session.user_id)
            .await
            .map_err(status)?
            .is_some_and(|u| !u.disabled);
        if !enabled {
            return Ok(CheckSessionResponse::default());
        }
        Ok(CheckSessionResponse {
            active: true,
            subject: session.user_id,
            auth_time: session.auth_time,
            amr: session.amr,
            acr: session.acr,
        })
    }

    async fn end_session(&self, request: EndSessionRequest) -> Result<EndSessionResponse, Status> {
        let ended = match request.target {
            Some(Target::SessionId(id)) if !id.is_empty() => self.sessions.end(&id).await,
            Some(Target::Subject(subject)) if !subject.is_empty() => {
                self.sessions.end_all(&subject).await
            }
            _ => {
                return Err(Status::invalid_argument(
                    "session_id or subject is required",
                ));
            }
        }
        .map_err(status)?;
        tracing::info!(ended, "sessions ended at authz's request");
        Ok(EndSessionResponse { ended })
    }
}

#[tonic::async_trait]
impl SessionsApi for SessionsService {
    async fn get_user_claims(
        &self,
        request: Request<GetUserClaimsRequest>,
    ) -> Result<Response<UserClaims>, Status> {
        self.callers.check_request(&request)?;
        let message = request.into_inner();
        self.user_claims(message).await.map(Response::new)
    }

    async fn check_session(
        &self,
        request: Request<CheckSessionRequest>,
    ) -> Result<Response<CheckSessionResponse>, Status> {
        self.callers.check_request(&request)?;
        let message = request.into_inner();
        self.check_session(message).await.map(Response::new)
    }

    async fn end_session(
        &self,
        request: Request<EndSessionRequest>,
    ) -> Result<Response<EndSessionResponse>, Status> {
        self.callers.check_request(&request)?;
        let message = request.into_inner();
        self.end_session(message).await.map(Response::new)
    }
}

#[cfg(test)]
mod tests {
    use storage::StorageError;
    use storage::diesel::result::{DatabaseErrorKind, Error};
    use tonic::Code;

    use super::status;
    use crate::IdpError;

    #[test]
    fn transient_database_errors_are_unavailable_and_others_internal() {
        let query = |message: &str| {
            IdpError::Storage(StorageError::Query(Error::DatabaseError(
                DatabaseErrorKind::Unknown,
                Box::new(message.to_owned()),
            )))
        };
        assert_eq!(
            status(query("database is locked")).code(),
            Code::Unavailable
        );
        assert_eq!(
            status(query("database or disk is full")).code(),
            Code::Unavailable
        );
        assert_eq!(
            status(IdpError::Storage(StorageError::Unavailable("pool".into()))).code(),
            Code::Unavailable
        );
        let internal = status(query("no such table: users"));
        assert_eq!(internal.code(), Code::Internal);
        assert!(!internal.message().contains("no such table"));
    }
}
