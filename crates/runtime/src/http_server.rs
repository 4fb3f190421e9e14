use std::time::Duration;

use actix_http::{Request, Response};
use actix_service::IntoServiceFactory;
use actix_web::body::MessageBody;
use actix_web::dev::{AppConfig, Service, ServiceFactory};

use crate::RuntimeError;

/// Starts an actix-web server on an already bound listener the way every service needs it:
/// `workers` workers, no signal handling of its own (the [`crate::Supervisor`] owns
/// shutdown), and in-flight requests drained for at most `grace` on stop.
pub fn http_server<F, I, S, B>(
    name: &'static str,
    listener: std::net::TcpListener,
    factory: F,
    workers: usize,
    grace: Duration,
) -> Result<actix_web::dev::Server, RuntimeError>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: IntoServiceFactory<S, Request>,
    S: ServiceFactory<Request, Config = AppConfig> + 'static,
    S::Error: Into<actix_web::Error> + 'static,
    S::InitError: std::fmt::Debug,
    S::Response: Into<Response<B>> + 'static,
    <S::Service as Service<Request>>::Future: 'static,
    S::Service: 'static,
    B: MessageBody + 'static,
{
    let addr = listener
        .local_addr()
        .map_err(|source| RuntimeError::Http { name, source })?;
    Ok(actix_web::HttpServer::new(factory)
        .workers(workers.max(1))
        .disable_signals()
        .shutdown_timeout(grace.as_secs().max(1))
        .listen(listener)
        .map_err(|source| RuntimeError::Bind {
            section: name,
            addr,
            source,
        })?
        .run())
}

/// The base of every public application: request observation (span, metrics) around
/// everything, and a JSON 404 for unknown paths. Services add their routes to it.
pub fn base_app() -> actix_web::App<
    impl ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    actix_web::App::new()
        .wrap(actix_web::middleware::from_fn(crate::observe_requests))
        .default_service(actix_web::web::to(not_found))
}

/// Unknown paths: a JSON 404 rather than an empty body.
async fn not_found() -> actix_web::HttpResponse {
    actix_web::HttpResponse::NotFound().json(serde_json::json!({ "error": "not_found" }))
}
