//! `GET/POST /account/providers`: the signed-in user's linked upstream identities. GET lists
//! them with an unlink button each and a link button per provider not linked yet; POST
//! (CSRF-checked) either starts a link flow at a provider (the callback links the identity
//! to this user, refusing one linked to someone else) or unlinks one, unless it is the
//! user's last way to sign in (no password and no other identity). Without a session the
//! page answers 401 and asks the user to sign in.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use tracing::instrument;

use super::pages::{self, LinkedRow, ProvidersPage};
use super::{csrf_rejected, current_session, see_other};
use crate::csrf::Purpose;
use crate::upstream::Purpose as FlowPurpose;
use crate::upstream::repo::Unlinked;
use crate::users::User;
use crate::{AppState, IdpError};

#[derive(Debug, Deserialize)]
pub(crate) struct Query {
    #[serde(default)]
    result: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct Form {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    action: String,
    #[serde(default)]
    provider: String,
    #[serde(default)]
    subject: String,
}

fn signed_out() -> IdpError {
    IdpError::Unauthenticated("Sign in to manage your sign-in providers.".to_owned())
}

async fn page(
    state: &AppState,
    req: &HttpRequest,
    user: &User,
    status: StatusCode,
    message: Option<&str>,
    error: Option<&str>,
) -> Result<HttpResponse, IdpError> {
    let (cookie, set) = state.cookies.ensure_csrf(req)?;
    let csrf = state.csrf.token(&cookie, Purpose::Providers, &user.id);
    let identities = state.upstreams.identities_of(&user.id).await?;
    let name_of = |id: &str| {
        state
            .upstreams
            .provider(id)
            .map_or_else(|| id.to_owned(), |p| p.config.display_name.clone())
    };
    let linked = identities
        .iter()
        .map(|i| LinkedRow {
            provider: i.provider.clone(),
            name: name_of(&i.provider),
            subject: i.subject.clone(),
            email: i.email.clone().unwrap_or_default(),
        })
        .collect();
    let available = pages::provider_buttons(&state.upstreams)
        .into_iter()
        .filter(|b| !identities.iter().any(|i| i.provider == b.id))
        .collect();
    let body = pages::render(&ProvidersPage {
        title: "Sign-in providers",
        base: &state.base,
        csrf: &csrf,
        username: &user.username,
        linked,
        available,
        message,
        error,
    })?;
    Ok(pages::with_csrf_cookie(status, set, body))
}

/// `GET /account/providers`.
#[instrument(skip_all)]
pub(crate) async fn get(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<Query>,
) -> Result<HttpResponse, IdpError> {
    let Some((_, user)) = current_session(&state, &req).await? else {
        return Err(signed_out());
    };
    let (message, error) = match query.result.as_deref() {
        Some("linked") => (Some("The provider is linked."), None),
        Some("already") => (
            Some("That provider account is already linked to you."),
            None,
        ),
        Some("taken") => (
            None,
            Some("That provider account is already linked to another account."),
        ),
        _ => (None, None),
    };
    let status = if error.is_some() {
        StatusCode::CONFLICT
    } else {
        StatusCode::OK
    };
    page(&state, &req, &user, status, message, error).await
}

/// `POST /account/providers`.
#[instrument(skip_all)]
pub(crate) async fn post(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<Form>,
) -> Result<HttpResponse, IdpError> {
    let form = form.into_inner();
    let Some((_, user)) = current_session(&state, &req).await? else {
        return Err(signed_out());
    };
    let cookie = state.cookies.csrf(&req);
    if !state.csrf.verify(
        cookie.as_deref(),
        Purpose::Providers,
        &user.id,
        form.csrf.as_deref(),
    ) {
        return Err(csrf_rejected("providers"));
    }
    let Some(browser) = cookie else {
        return Err(csrf_rejected("providers"));
    };
    match form.action.as_str() {
        "link" => {
            if state.upstreams.provider(&form.provider).is_none() {
                return Err(IdpError::NotFound("No such sign-in provider.".to_owned()));
            }
            let to = state
                .upstreams
                .start(&form.provider, &browser, FlowPurpose::Link(&user.id))
                .await?;
            Ok(see_other(&to).finish())
        }
        "unlink" => {
            match state
                .upstreams
                .unlink(&user.id, &form.provider, &form.subject)
                .await?
            {
                Unlinked::Removed => {
                    tracing::info!(user = %user.id, provider = %form.provider, "upstream identity unlinked");
                    page(&state, &req, &user, StatusCode::OK, Some("The provider is unlinked."), None)
                        .await
                }
                Unlinked::NotFound => Err(IdpError::NotFound(
                    "That provider is not linked to your account.".to_owned(),
                )),
                Unlinked::LastWay => {
                    page(
                        &state,
                        &req,
                        &user,
                        StatusCode::CONFLICT,
                        None,
                        Some("This is your only way to sign in: link another provider or set a password first."),
                    )
                    .await
                }
            }
        }
        _ => Err(IdpError::Invalid("Unknown action.".to_owned())),
    }
}
