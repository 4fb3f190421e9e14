//! authz's admin REST API (issue 18): `/admin/v1/...` on the admin listener (next to
//! `/metrics`, `/healthz`, `/readyz`, off the public port as Hydra keeps it), built on the
//! `admin-api` framework. Callers present access tokens authz issued itself
//! (client credentials with `admin:*` scopes), verified in-process against authz's own key
//! ring by `guard` ([`guard::Guard::with_local_keys`]: no HTTP round trip, no key parsing
//! per request). Every route has one file; the OpenAPI document is derived from their
//! `#[utoipa::path]` annotations ([`ApiDoc`]) and a test holds it against [`routes`].

// audit trail (issue 18, idpadmin)
mod audit;
pub(crate) mod clients;
mod error;
mod keys;
mod registration_tokens;
mod users;

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
        .post(clients::SECRET_PATH, clients::rotate_secret::handle)
        .get(clients::GRANTS_PATH, clients::grants::handle)
        .delete(clients::GRANTS_PATH, clients::revoke_grants::handle)
        .delete(clients::GRANT_PATH, clients::revoke_grant::handle)
        .get(registration_tokens::PATH, registration_tokens::list::handle)
        .post(
            registration_tokens::PATH,
            registration_tokens::create::handle,
        )
        .delete(
            registration_tokens::ITEM_PATH,
            registration_tokens::revoke::handle,
        )
        .get(keys::PATH, keys::list::handle)
        .post(keys::PATH, keys::rotate::handle)
        .post(keys::RETIRE_PATH, keys::retire::handle)
        .get(users::CONSENTS_PATH, users::consents::handle)
        .delete(users::CONSENT_PATH, users::revoke_consent::handle)
        .post(users::SIGN_OUT_PATH, users::sign_out::handle)
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
        clients::rotate_secret::handle,
        clients::grants::handle,
        clients::revoke_grants::handle,
        clients::revoke_grant::handle,
        registration_tokens::list::handle,
        registration_tokens::create::handle,
        registration_tokens::revoke::handle,
        keys::list::handle,
        keys::rotate::handle,
        keys::retire::handle,
        users::consents::handle,
        users::revoke_consent::handle,
        users::sign_out::handle,
        audit::handle,
    ),
    components(schemas(admin_api::Problem)),
    tags(
        (name = "clients", description = "Registered OAuth clients"),
        (name = "registration-tokens", description = "Initial access tokens for Dynamic Client Registration (RFC 7591 §3)"),
        (name = "keys", description = "Token signing keys"),
        (name = "users", description = "What users granted through authz"),
        (name = "audit", description = "The audit trail")
    )
)]
pub(crate) struct ApiDoc;

/// Runs the admin write `write` under the audit trail (issue 18: who, what, target, when,
/// outcome). `write` gets the success event of `admin`'s `action` on `target` and hands it
/// to the service, which appends it inside the write's own database transaction: the
/// change and its record commit or roll back together. Where only the write learns the
/// target (a generated id), it sets it on the event ([`retarget`]). A committed event is
/// then logged. A refused or failed write (nothing changed) is recorded on its own, with
/// the problem type as its reason; a failure to record that is logged and the answer
/// stands.
pub(crate) async fn audited<S: guard::RequiredScopes>(
    state: &AppState,
    admin: &admin_api::Admin<S>,
    action: ::audit::Action,
    target: (::audit::TargetKind, &str),
    write: impl AsyncFnOnce(
        &mut ::audit::AuditEvent,
    ) -> Result<actix_web::HttpResponse, admin_api::AdminError>,
) -> Result<actix_web::HttpResponse, admin_api::AdminError> {
    let actor = ::audit::Actor::AdminClient(::audit::Ident::new(&admin.principal().client_id));
    let mut event = ::audit::AuditEvent::new(actor, action)
        .from(admin.address())
        .target(target.0, target.1);
    let result = write(&mut event).await;
    match &result {
        Ok(_) => event.log(),
        Err(e) => {
            let failed = event.failed(e.type_name());
            if let Err(e) = ::audit::record(&state.db, &failed).await {
                tracing::error!(error = %e, action = action.as_str(), "cannot record the audit event");
            }
        }
    }
    result
}

/// Sets the target of `event` to `kind` `id` (known only once the write has begun).
pub(crate) fn retarget(event: &mut ::audit::AuditEvent, kind: ::audit::TargetKind, id: &str) {
    *event = event.clone().target(kind, id);
}

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

    /// OpenAPI 3.1 §4.8.10.1: "The id MUST be unique among all operations described in the
    /// API" (Swagger UI keys its deep links and expanded state on it).
    #[test]
    fn operation_ids_are_unique() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
        let mut ids: Vec<String> = doc["paths"]
            .as_object()
            .into_iter()
            .flat_map(|paths| paths.values())
            .filter_map(|item| item.as_object())
            .flat_map(|ops| ops.values())
            .filter_map(|op| op["operationId"].as_str().map(str::to_owned))
            .collect();
        let all = ids.len();
        assert_eq!(all, 19, "{ids:?}");
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), all, "duplicate operationId");
    }
}
