//! authz's admin REST API (issue 18): `/admin/v1/...` on the admin listener (next to
//! `/metrics`, `/healthz`, `/readyz`, off the public port as Hydra keeps it), built on the
//! `admin-api` framework. Callers present access tokens authz issued itself
//! (client credentials with `admin:*` scopes), verified in-process against authz's own key
//! ring by `guard` ([`guard::Guard::with_local_keys`]: no HTTP round trip, no key parsing
//! per request). Every route has one file; the OpenAPI document is derived from their
//! `#[utoipa::path]` annotations ([`ApiDoc`]) and a test holds it against [`routes`].

// audit trail (issue 18, idpadmin)
mod audit;
mod clients;
mod error;

use std::sync::Arc;

use actix_web::web;
use admin_api::{AdminApi, Router};
use utoipa::OpenApi;

use crate::{AppState, AuthzConfig, AuthzError};

/// The route table of authz's admin API.
pub(crate) fn routes(r: &mut Router) {
    r.get(clients::PATH, clients::list::handle)
        .post(clients::PATH, clients::create::handle)
        .get(clients::ITEM_PATH, clients::get::handle)
        .put(clients::ITEM_PATH, clients::update::handle)
        .delete(clients::ITEM_PATH, clients::delete::handle)
        .get(audit::PATH, audit::handle);
}

/// The OpenAPI 3.1 document of authz's admin API, generated from the handlers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "authz admin API",
        version = "1",
        description = "Clients, their grants and secrets, signing keys and users' grants of \
                       the authorization server. Authorize with an access token from authz's \
                       token endpoint (client credentials) carrying the admin:* scopes a \
                       route names. Errors are RFC 9457 problem details."
    ),
    paths(
        clients::list::handle,
        clients::create::handle,
        clients::get::handle,
        clients::update::handle,
        clients::delete::handle,
        audit::handle,
    ),
    components(schemas(admin_api::Problem)),
    tags(
        (name = "clients", description = "Registered OAuth clients"),
        (name = "audit", description = "The audit trail: admin writes and security events")
    )
)]
pub(crate) struct ApiDoc;

/// The admin API mounted on authz's admin listener: tokens checked against authz's own
/// keys (issuer and audience: the issuer identifier), Swagger UI getting tokens from the
/// public token endpoint.
pub(crate) fn admin_routes(
    config: &AuthzConfig,
    state: AppState,
) -> Result<runtime::AdminRoutes, AuthzError> {
    let keys = Arc::clone(&state.keys);
    let guard = guard::Guard::with_local_keys(
        guard::GuardConfig {
            realm: "authz-admin".to_owned(),
            ..guard::GuardConfig::jwt(config.issuer.clone(), config.issuer.clone())
        },
        Arc::new(move || keys.ring()),
    )
    .map_err(|e| AuthzError::Task(format!("admin API: {e}")))?;
    let api = AdminApi::new(
        guard,
        ApiDoc::openapi(),
        &config.endpoint(crate::http::TOKEN_PATH),
    )
    .map_err(|e| AuthzError::Task(format!("admin API document: {e}")))?;
    let state = web::Data::new(state);
    Ok(Arc::new(move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(state.clone());
        api.mount(cfg, routes);
    }))
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
        assert!(!router.table().is_empty());
    }
}
