//! `GET/POST /consent?consent_challenge=…`: the consent step of authz's authorization
//! request.
//!
//! Only the user the request is for may answer it: the browser must hold a live idp
//! session of `ConsentRequest.subject` (403 otherwise). GET shows the client's name and the
//! requested scopes in plain words; POST (CSRF-checked first) grants every requested scope
//! (`AcceptConsent`, with the "remember" choice) or refuses (`RejectConsent`,
//! `access_denied`), then sends the browser where authz says (303).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use proto::authz::v1::{AcceptConsentRequest, ConsentRequest, RejectRequest};
use serde::Deserialize;
use tracing::instrument;

use super::pages::{self, ConsentPage, describe_scope};
use super::{challenge, csrf_rejected, current_session, see_other};
use audit::{Action, Actor, AuditEvent, Ident, TargetKind};

use crate::csrf::Purpose;
use crate::users::User;
use crate::{AppState, IdpError};

#[derive(Debug, Deserialize)]
pub(crate) struct Query {
    consent_challenge: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Form {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    consent_challenge: Option<String>,
    #[serde(default)]
    remember: Option<String>,
    #[serde(default)]
    action: Option<String>,
}

/// The pending request and the signed-in user it belongs to.
async fn pending(
    state: &AppState,
    req: &HttpRequest,
    challenge: &str,
) -> Result<(ConsentRequest, User), IdpError> {
    let request = state.flow.get_consent_request(challenge).await?;
    match current_session(state, req).await? {
        Some((_, user)) if user.id == request.subject => Ok((request, user)),
        _ => Err(IdpError::Forbidden(
            "You are not signed in as the user this request is for. Go back to the application and sign in again."
                .to_owned(),
        )),
    }
}

/// The audit event of a consent answer: the user about the client (OIDC Core §3.1.2.4).
pub(crate) fn consent_event(user: &User, client_id: Option<&str>, action: Action) -> AuditEvent {
    let event = AuditEvent::new(Actor::User(Ident::new(&user.id)), action);
    match client_id {
        Some(id) => event.target(TargetKind::Client, id),
        None => event.target(TargetKind::User, &user.id),
    }
}

/// `GET /consent`.
#[instrument(skip_all)]
pub(crate) async fn get(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<Query>,
) -> Result<HttpResponse, IdpError> {
    let challenge = challenge(query.consent_challenge.as_deref(), "consent_challenge")?;
    let (request, user) = pending(&state, &req, &challenge).await?;
    let (cookie, set) = state.cookies.ensure_csrf(&req)?;
    let csrf = state.csrf.token(&cookie, Purpose::Consent, &challenge);
    let body = pages::render(&ConsentPage {
        title: "Allow access?",
        base: &state.base,
        client_name: pages::client_name(request.client.as_ref()),
        challenge: &challenge,
        csrf: &csrf,
        scopes: request
            .requested_scopes
            .iter()
            .map(|s| describe_scope(s))
            .collect(),
        username: &user.username,
    })?;
    Ok(pages::with_csrf_cookie(StatusCode::OK, set, body))
}

/// `POST /consent`.
#[instrument(skip_all)]
pub(crate) async fn post(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<Form>,
) -> Result<HttpResponse, IdpError> {
    let form = form.into_inner();
    if !state.csrf.verify(
        state.cookies.csrf(&req).as_deref(),
        Purpose::Consent,
        form.consent_challenge.as_deref().unwrap_or_default(),
        form.csrf.as_deref(),
    ) {
        return Err(csrf_rejected("consent"));
    }
    let challenge = challenge(form.consent_challenge.as_deref(), "consent_challenge")?;
    let (request, user) = pending(&state, &req, &challenge).await?;
    let client_id = request.client.as_ref().map(|c| c.client_id.clone());
    let to = match form.action.as_deref() {
        Some("allow") => {
            let remember = form.remember.is_some();
            let to = state
                .flow
                .accept_consent(AcceptConsentRequest {
                    consent_challenge: challenge,
                    granted_scopes: request.requested_scopes,
                    remember,
                })
                .await?;
            metrics::counter!("idp_consents_total", "result" => "granted").increment(1);
            tracing::info!(user = %user.id, remember, "consent granted");
            super::audit(
                &state,
                &req,
                consent_event(&user, client_id.as_deref(), Action::ConsentGiven),
            )
            .await?;
            to
        }
        Some("deny") => {
            let to = state
                .flow
                .reject_consent(RejectRequest {
                    challenge,
                    error: "access_denied".to_owned(),
                    error_description: "The user denied access.".to_owned(),
                })
                .await?;
            metrics::counter!("idp_consents_total", "result" => "denied").increment(1);
            tracing::info!(user = %user.id, "consent denied");
            super::audit(
                &state,
                &req,
                consent_event(&user, client_id.as_deref(), Action::ConsentDenied),
            )
            .await?;
            to
        }
        _ => return Err(IdpError::Invalid("Choose Allow or Deny.".to_owned())),
    };
    Ok(see_other(&to).finish())
}
