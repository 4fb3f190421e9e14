//! The admin REST API framework every service mounts on its admin listener (issue 18):
//!
//! - [`Admin`]: the caller, authenticated by `guard` with an access token from authz that
//!   grants the route's admin scope ([`scope`], [`scopes`]); refusals are RFC 6750 §3
//!   (`WWW-Authenticate`) with an RFC 9457 body;
//! - [`AdminError`]: RFC 9457 problem details (`application/problem+json`) with a stable
//!   `type` per error and the `field` at fault;
//! - [`AdminJson`] / [`AdminQuery`]: JSON bodies capped at [`BodyLimit`] and query strings,
//!   unknown fields refused, the failing field named;
//! - [`etag`] / [`IfMatch`]: optimistic concurrency (RFC 9110 §13.1.1; 412 on a stale
//!   write, 428 without `If-Match`);
//! - [`page`]: cursor pagination;
//! - [`AdminApi`]: mounts the routes of a [`Router`], the OpenAPI 3.1 document at
//!   `/admin/v1/openapi.json` and Swagger UI at `/admin/docs` (assets compiled in).
//!
//! A service mounts it through `runtime::Launch::bind_with_admin`:
//!
//! ```ignore
//! let api = admin_api::AdminApi::new(guard, ApiDoc::openapi(), &token_url)?;
//! let routes: runtime::AdminRoutes = Arc::new(move |config| {
//!     config.app_data(web::Data::new(state.clone()));
//!     api.mount(config, admin::routes);
//! });
//! ```

pub mod audit;
mod auth;
mod body;
mod docs;
mod error;
mod etag;
pub mod page;
mod router;

use std::sync::Arc;

use actix_web::web;

pub use crate::auth::{Admin, AdminAuth, scope, scopes};
pub use crate::body::{
    AdminJson, AdminQuery, BodyLimit, DEFAULT_BODY_LIMIT, parse_json, parse_query,
};
pub use crate::docs::{DOCS_PATH, OPENAPI_PATH, SECURITY_SCHEME};
pub use crate::error::{AdminError, PROBLEM_JSON, PROBLEM_TYPE_PREFIX, Problem};
pub use crate::etag::{IfMatch, etag};
pub use crate::page::Page;
pub use crate::router::{Router, coverage};
pub use utoipa;

/// A service's admin API, ready to mount on each admin worker. Cheap to clone.
#[derive(Clone)]
pub struct AdminApi {
    auth: web::Data<AdminAuth>,
    docs: web::Data<docs::Docs>,
    limit: web::Data<BodyLimit>,
}

impl std::fmt::Debug for AdminApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminApi").finish_non_exhaustive()
    }
}

impl AdminApi {
    /// An API whose tokens `guard` checks, documented by `document` (the service's
    /// `#[derive(OpenApi)]`), whose Swagger UI gets tokens from `token_url` (authz's token
    /// endpoint, client credentials), with bodies capped at [`DEFAULT_BODY_LIMIT`].
    pub fn new(
        guard: guard::Guard,
        document: utoipa::openapi::OpenApi,
        token_url: &str,
    ) -> Result<Self, String> {
        Ok(Self {
            auth: web::Data::new(AdminAuth { guard }),
            docs: web::Data::new(docs::Docs::new(document, token_url)?),
            limit: web::Data::new(BodyLimit(DEFAULT_BODY_LIMIT)),
        })
    }

    /// Caps request bodies at `bytes`.
    pub fn with_body_limit(mut self, bytes: usize) -> Self {
        self.limit = web::Data::new(BodyLimit(bytes));
        self
    }

    /// The finished OpenAPI document, as served.
    pub fn document(&self) -> web::Bytes {
        self.docs.document.clone()
    }

    /// Mounts the document, Swagger UI and the routes `register` adds, with a 404 problem
    /// for any other path under `/admin/`.
    pub fn mount(&self, config: &mut web::ServiceConfig, register: impl FnOnce(&mut Router)) {
        config
            .app_data(self.auth.clone())
            .app_data(self.docs.clone())
            .app_data(self.limit.clone())
            .route(OPENAPI_PATH, web::get().to(docs::openapi))
            .route(DOCS_PATH, web::get().to(docs::index))
            .route("/admin/docs/", web::get().to(docs::index))
            .route(
                "/admin/docs/swagger-ui-bundle.js",
                web::get().to(docs::bundle),
            )
            .route(
                "/admin/docs/swagger-ui-standalone-preset.js",
                web::get().to(docs::preset),
            )
            .route("/admin/docs/swagger-ui.css", web::get().to(docs::css))
            .route("/admin/docs/init.js", web::get().to(docs::init));
        let mut router = Router::new();
        register(&mut router);
        router.register(config);
        config.service(web::resource("/admin/{tail:.*}").to(not_found));
    }
}

async fn not_found() -> Result<actix_web::HttpResponse, AdminError> {
    Err(AdminError::NotFound("no such admin resource".into()))
}

/// `Arc` alias kept for services that share one [`AdminApi`] between workers.
pub type SharedAdminApi = Arc<AdminApi>;
