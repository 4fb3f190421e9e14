//! idp's admin REST API (issue 18): `/admin/v1/...` on the admin listener (next to
//! `/metrics`, `/healthz`, `/readyz`), built on the `admin-api` framework. Callers present
//! RFC 9068 JWT access tokens from authz (client credentials with `admin:*` scopes),
//! verified by `guard` against authz's JWKS (the `admin_api` section): no call to authz per
//! request. Every route has one file; the OpenAPI document is derived from their
//! `#[utoipa::path]` annotations ([`ApiDoc`]) and a test holds it against [`routes`].
//! Every write is recorded in the audit trail in the transaction of the write.

mod audit;
mod error;
mod sessions;
mod users;

use std::sync::Arc;

use actix_web::web;
use admin_api::{AdminApi, Router};
use utoipa::OpenApi;

use crate::config::AdminApiConfig;
use crate::users::Caller;
use crate::{AppState, IdpError};

/// The route table of idp's admin API.
pub(crate) fn routes(r: &mut Router) {
    r.get(users::PATH, users::list::handle)
        .post(users::PATH, users::create::handle)
        .get(users::ITEM_PATH, users::get::handle)
        .put(users::ITEM_PATH, users::update::handle)
        .delete(users::ITEM_PATH, users::delete::handle)
        .post(users::DISABLE_PATH, users::disable::handle)
        .post(users::ENABLE_PATH, users::enable::handle)
        .post(users::PASSWORD_PATH, users::set_password::handle)
        .get(sessions::PATH, sessions::list::handle)
        .delete(sessions::PATH, sessions::end_all::handle)
        .delete(sessions::ITEM_PATH, sessions::end::handle)
        .get(audit::PATH, audit::handle);
}

/// The OpenAPI 3.1 document of idp's admin API, generated from the handlers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "idp admin API",
        version = "1",
        description = "Users and their browser sessions at the identity provider, and its \
                       audit trail. Authorize with a JWT access token from authz's token \
                       endpoint (client credentials) carrying the admin:* scopes a route \
                       names. Errors are RFC 9457 problem details."
    ),
    paths(
        users::list::handle,
        users::create::handle,
        users::get::handle,
        users::update::handle,
        users::delete::handle,
        users::disable::handle,
        users::enable::handle,
        users::set_password::handle,
        sessions::list::handle,
        sessions::end_all::handle,
        sessions::end::handle,
        audit::handle,
    ),
    components(schemas(admin_api::Problem)),
    tags(
        (name = "users", description = "Users of the identity provider"),
        (name = "sessions", description = "Users' browser sessions at idp"),
        (name = "audit", description = "The audit trail")
    )
)]
pub(crate) struct ApiDoc;

/// The caller of an admin write, for the audit trail: the token's client, from its address.
pub(crate) fn caller<S: guard::RequiredScopes>(admin: &admin_api::Admin<S>) -> Caller {
    Caller::admin_client(&admin.principal().client_id, admin.address())
}

/// Records a refused admin write (invalid body, conflict, stale `If-Match`, no such user…)
/// in the audit trail with the problem type as its reason, then returns `result`.
/// Successful writes are recorded by the service layer in their own transaction; a refusal
/// changed nothing, so it is recorded on its own (a failure to record is logged).
pub(crate) async fn audit_refusal<S: guard::RequiredScopes>(
    state: &AppState,
    admin: &admin_api::Admin<S>,
    action: ::audit::Action,
    target: Option<(::audit::TargetKind, &str)>,
    result: Result<actix_web::HttpResponse, admin_api::AdminError>,
) -> Result<actix_web::HttpResponse, admin_api::AdminError> {
    if let Err(e) = &result {
        let by = caller(admin);
        let event = match target {
            Some((kind, id)) => by.event_on(action, kind, id),
            None => by.event_without_target(action),
        }
        .failed(e.type_name());
        if let Err(err) = ::audit::record(&state.db, &event).await {
            tracing::error!(error = %err, action = action.as_str(), "cannot record the audit event");
        }
    }
    result
}

/// The admin API mounted on idp's admin listener, or `None` when `admin_api.enabled` is
/// off. Must be called inside the Tokio runtime: the guard loads authz's keys at once and
/// keeps them fresh.
pub(crate) fn admin_routes(
    config: &AdminApiConfig,
    state: AppState,
) -> Result<Option<runtime::AdminRoutes>, IdpError> {
    if !config.enabled {
        return Ok(None);
    }
    let guard =
        guard::Guard::new(config.guard()).map_err(|e| IdpError::Task(format!("admin API: {e}")))?;
    let api = AdminApi::new(guard, ApiDoc::openapi(), &config.token_url())
        .map_err(|e| IdpError::Task(format!("admin API document: {e}")))?;
    let state = web::Data::new(state);
    Ok(Some(Arc::new(move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(state.clone());
        api.mount(cfg, routes);
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_documented_and_every_operation_routed() {
        let mut router = Router::new();
        routes(&mut router);
        let problems = admin_api::coverage(router.table(), &ApiDoc::openapi());
        assert!(problems.is_empty(), "{problems:#?}");
        assert_eq!(router.table().len(), 12);
    }
}
