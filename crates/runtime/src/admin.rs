use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{HttpResponse, web};
use telemetry::PrometheusHandle;

use crate::{ConnectionCaps, LimitsConfig, RuntimeError, Shutdown};

/// The admin HTTP server (`/metrics`, `/healthz`, `/readyz`).
pub type AdminServer = actix_web::dev::Server;

/// What `/readyz` asks before answering 200: typically "the database answers and every
/// embedded migration is applied".
pub trait Readiness: Send + Sync + 'static {
    /// `Ok` when the service can take traffic, otherwise a short reason that is safe to show
    /// on the admin port (no secrets, no connection strings).
    fn check(&self) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>>;
}

/// A readiness check from an async closure: `runtime::readiness(move || { let db =
/// db.clone(); async move { db.check_ready().await } })`.
pub fn readiness<F, Fut>(check: F) -> Arc<dyn Readiness>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    struct FnReadiness<F>(F);
    impl<F, Fut> Readiness for FnReadiness<F>
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        fn check(&self) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>> {
            Box::pin((self.0)())
        }
    }
    Arc::new(FnReadiness(check))
}

/// More routes on the admin listener (a service's admin REST API under `/admin/...`):
/// called once per admin worker to configure its app, after `/healthz`, `/readyz` and
/// `/metrics`.
pub type AdminRoutes = Arc<dyn Fn(&mut web::ServiceConfig) + Send + Sync>;

#[derive(Clone)]
struct AdminState {
    readiness: Arc<dyn Readiness>,
    metrics: PrometheusHandle,
    shutdown: Shutdown,
}

/// How often the Prometheus recorder folds the histogram samples recorded since the last
/// upkeep into its buckets. Until then every sample is kept (8 bytes each, plus block
/// overhead), so the interval bounds that memory: at 100,000 requests per second a 5 s
/// interval let authz grow by about 11 MiB under a JWKS load, and with 500 ms it grew by
/// about 2 MiB at no lower rate (one run each). An upkeep touches only the few dozen
/// metrics of a service.
pub const METRICS_UPKEEP_INTERVAL: Duration = Duration::from_millis(500);

/// Builds the admin server on an already bound listener:
///
/// - `GET /healthz`: 200 while the process serves requests at all (liveness).
/// - `GET /readyz`: 200 when `readiness` passes, 503 with the reason otherwise, and 503
///   once shutdown has begun so load balancers stop sending traffic while it drains.
/// - `GET /metrics`: the Prometheus text exposition of every metric of the process.
///
/// Also runs the recorder's periodic upkeep (histogram draining) every
/// [`METRICS_UPKEEP_INTERVAL`] until shutdown.
///
/// It runs on its own worker with its own connection count
/// ([`ConnectionCaps::admin`]: `limits.admin_max_connections`) and the deadlines of
/// `limits`, so it stays reachable while the public listener is saturated. With `tls` (the
/// `admin.tls` section made into a rustls configuration) it serves HTTPS.
pub fn admin_server(
    listener: std::net::TcpListener,
    readiness: Arc<dyn Readiness>,
    metrics: PrometheusHandle,
    shutdown: Shutdown,
    grace: Duration,
    limits: &LimitsConfig,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> Result<AdminServer, RuntimeError> {
    admin_server_with(
        listener,
        readiness,
        metrics,
        shutdown,
        grace,
        limits,
        crate::DEFAULT_MAX_BLOCKING_THREADS,
        tls,
        None,
    )
}

/// [`admin_server`] that also serves `routes` (a service's admin REST API), with at most
/// `max_blocking_threads` threads in its worker's blocking pool.
#[allow(clippy::too_many_arguments)]
pub fn admin_server_with(
    listener: std::net::TcpListener,
    readiness: Arc<dyn Readiness>,
    metrics: PrometheusHandle,
    shutdown: Shutdown,
    grace: Duration,
    limits: &LimitsConfig,
    max_blocking_threads: usize,
    tls: Option<Arc<rustls::ServerConfig>>,
    routes: Option<AdminRoutes>,
) -> Result<AdminServer, RuntimeError> {
    let upkeep = metrics.clone();
    crate::spawn_periodic(
        "metrics upkeep",
        METRICS_UPKEEP_INTERVAL,
        crate::FirstRun::Immediately,
        shutdown.waiter(),
        move || {
            upkeep.run_upkeep();
            std::future::ready(())
        },
    );
    let state = AdminState {
        readiness,
        metrics,
        shutdown,
    };
    let server = crate::http_server::http_server_tls(
        "admin",
        listener,
        move || {
            let routes = routes.clone();
            actix_web::App::new()
                .app_data(web::Data::new(state.clone()))
                .route("/healthz", web::get().to(healthz))
                .route("/readyz", web::get().to(readyz))
                .route("/metrics", web::get().to(metrics_endpoint))
                .configure(move |config| {
                    if let Some(routes) = &routes {
                        routes(config);
                    }
                })
        },
        1,
        max_blocking_threads,
        grace,
        limits,
        ConnectionCaps::admin(limits),
        tls,
        None,
    )?;
    Ok(server)
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(serde_json::json!({ "status": "ok" }))
}

async fn readyz(state: web::Data<AdminState>) -> HttpResponse {
    let verdict = if state.shutdown.is_triggered() {
        Err("shutting down".to_owned())
    } else {
        state.readiness.check().await
    };
    match verdict {
        Ok(()) => HttpResponse::Ok()
            .insert_header(("Cache-Control", "no-store"))
            .json(serde_json::json!({ "status": "ready" })),
        Err(reason) => HttpResponse::ServiceUnavailable()
            .insert_header(("Cache-Control", "no-store"))
            .json(serde_json::json!({ "status": "not ready", "reason": reason })),
    }
}

async fn metrics_endpoint(state: web::Data<AdminState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render())
}
