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
