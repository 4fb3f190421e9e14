//! `POST /upstream/start`: a provider button of the login page. Checks the CSRF token
//! (bound to the login challenge), that the login request is still pending and the
//! provider exists, stores the flow and sends the browser to the upstream (303).
//!
//! The same redirect happens without a button when the authorization request carried
//! Keycloak's `kc_idp_hint` naming a configured provider: authz appends it to the login
//! page's URL and [`hinted`] redirects (a hint naming no provider shows the login page).

use actix_web::http::header::SET_COOKIE;
use actix_web::{HttpRequest, HttpResponse, web};
use proto::authz::v1::LoginRequest;
use serde::Deserialize;
use tracing::instrument;

use super::{challenge, csrf_rejected, see_other};
use crate::csrf::Purpose;
use crate::upstream::Purpose as FlowPurpose;
use crate::{AppState, IdpError};

#[derive(Deserialize)]
pub(crate) struct Form {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    login_challenge: Option<String>,
    #[serde(default)]
    provider: String,
}

/// `POST /upstream/start`.
#[instrument(skip_all)]
pub(crate) async fn post(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<Form>,
) -> Result<HttpResponse, IdpError> {
    let form = form.into_inner();
    let cookie = state.cookies.csrf(&req);
    if !state.csrf.verify(
        cookie.as_deref(),
        Purpose::UpstreamStart,
        form.login_challenge.as_deref().unwrap_or_default(),
        form.csrf.as_deref(),
    ) {
        return Err(csrf_rejected("upstream-start"));
    }
    let challenge = challenge(form.login_challenge.as_deref(), "login_challenge")?;
    let Some(browser) = cookie else {
        return Err(csrf_rejected("upstream-start"));
    };
    if state.upstreams.provider(&form.provider).is_none() {
        return Err(IdpError::NotFound("No such sign-in provider.".to_owned()));
    }
    // The request must still be pending before the user is sent away.
    state.flow.get_login_request(&challenge).await?;
    let to = state
        .upstreams
        .start(&form.provider, &browser, FlowPurpose::Login(&challenge))
        .await?;
    Ok(see_other(&to).finish())
}

/// The redirect to the provider named by the request's `kc_idp_hint`, when it names a
/// configured one (Keycloak's identity provider redirector); `None` otherwise, and the login
/// page is shown.
pub(crate) async fn hinted(
    state: &AppState,
    req: &HttpRequest,
    request: &LoginRequest,
    hint: Option<&str>,
) -> Result<Option<HttpResponse>, IdpError> {
    let hint = hint.unwrap_or_default().trim();
    if hint.is_empty() || state.upstreams.provider(hint).is_none() {
        return Ok(None);
    }
    let (browser, set) = state.cookies.ensure_csrf(req)?;
    let to = state
        .upstreams
        .start(hint, &browser, FlowPurpose::Login(&request.challenge))
        .await?;
    let mut response = see_other(&to);
    if let Some(set) = set {
        response.append_header((SET_COOKIE, set));
    }
    Ok(Some(response.finish()))
}
