use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_http::{Request, Response};
use actix_service::IntoServiceFactory;
use actix_web::body::MessageBody;
use actix_web::dev::{AppConfig, Service, ServiceFactory};

use crate::tls::{ClientAuth, ServerTls};
use crate::{
    ConnectionCaps, GrpcServer, GrpcServices, LimitsConfig, ListenConfig, Readiness, RuntimeError,
    Shutdown, Supervisor,
};

/// Where a started service listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addresses {
    /// Public HTTP.
    pub http: SocketAddr,
    /// gRPC, for services that offer one.
    pub grpc: Option<SocketAddr>,
    /// Admin HTTP (`/metrics`, `/healthz`, `/readyz`).
    pub admin: SocketAddr,
}

/// The listeners and limits of one service process.
#[derive(Debug, Clone)]
pub struct Launch {
    /// Service name, as announced (`authz`).
    pub service: &'static str,
    /// Public HTTP listener.
    pub http: ListenConfig,
    /// gRPC listener, if the service has one.
    pub grpc: Option<ListenConfig>,
    /// Admin listener.
    pub admin: ListenConfig,
    /// HTTP workers.
    pub workers: usize,
    /// Blocking-pool threads of each HTTP worker (`runtime.max_blocking_threads`).
    pub max_blocking_threads: usize,
    /// Drain bound on stop.
    pub grace: Duration,
    /// Deadlines and connection caps of every listener (the `limits` section).
    pub limits: LimitsConfig,
    /// Whether the public HTTP listener, when it serves TLS, asks every client for a
    /// certificate without requiring one (RFC 8705 §2: a client may authenticate by it; a
    /// browser is never made to present one). Any certificate whose key the client proves
    /// it holds passes the handshake, self-signed ones included; `http.tls.client_ca_file`,
    /// when set, is then no requirement but tells whether the chain verifies. The
    /// application finds the certificate in the connection's data
    /// ([`crate::PeerCertificate`]) and alone decides whom it authenticates. When false, a
    /// `client_ca_file` on the HTTP listener requires a certificate.
    pub request_client_certificates: bool,
}

/// A bound service: listeners open, addresses announced, nothing served yet.
pub struct Launched {
    /// The bound addresses.
    pub addresses: Addresses,
    /// Runs everything until shutdown.
    pub supervisor: Supervisor,
}

impl Launch {
    /// Binds every listener, builds the public HTTP server from `app`, the gRPC server from
    /// `grpc` (which must be `Some` exactly when a gRPC listener is configured), and the admin
    /// server around `readiness`, all within `limits` (after raising the process's
    /// file-descriptor limit to fit them), then prints the `<service> listening …` line.
    /// Listeners with a `tls` section serve TLS (a client certificate is required on HTTP
    /// listeners with `client_ca_file`, optional on gRPC where the services decide), and
    /// their certificates are reloaded every `reload_interval` until `shutdown`.
    pub fn bind<F, I, S, B>(
        self,
        shutdown: &Shutdown,
        app: F,
        grpc: Option<GrpcServices>,
        readiness: Arc<dyn Readiness>,
    ) -> Result<Launched, RuntimeError>
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
        self.bind_with_admin(shutdown, app, grpc, readiness, None)
    }

    /// [`Launch::bind`] whose admin listener also serves `admin_routes` (the service's
    /// admin REST API, `/admin/v1/...`).
    pub fn bind_with_admin<F, I, S, B>(
        self,
        shutdown: &Shutdown,
        app: F,
        grpc: Option<GrpcServices>,
        readiness: Arc<dyn Readiness>,
        admin_routes: Option<crate::AdminRoutes>,
    ) -> Result<Launched, RuntimeError>
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
        let metrics = telemetry::prometheus().map_err(|e| RuntimeError::Metrics(e.to_string()))?;
        crate::limits::ensure_descriptors(&self.limits, self.grpc.is_some())
            .map_err(RuntimeError::Limits)?;
        let http_client_auth = if self.request_client_certificates {
            ClientAuth::Request
        } else {
            ClientAuth::Required
        };
        let http_tls = ServerTls::new("http", &self.http.tls, &[b"http/1.1"], http_client_auth)?;
        let admin_tls = ServerTls::new(
            "admin",
            &self.admin.tls,
            &[b"http/1.1"],
            ClientAuth::Required,
        )?;
        let grpc_tls = match &self.grpc {
            Some(config) => ServerTls::new("grpc", &config.tls, &[b"h2"], ClientAuth::Optional)?,
            None => None,
        };
        for tls in [&http_tls, &admin_tls, &grpc_tls].into_iter().flatten() {
            tls.spawn_reload(shutdown.waiter());
        }
        let (http_listener, http_addr) = crate::bind("http", &self.http)?;
        let grpc_bound = match (&self.grpc, grpc) {
            (Some(config), Some(services)) => {
                let (listener, addr) = crate::bind("grpc", config)?;
                Some((
                    GrpcServer::with_tls(
                        services,
                        listener,
                        shutdown,
                        &self.limits,
                        grpc_tls.map(|tls| tls.config),
                    )?,
                    addr,
                ))
            }
            _ => None,
        };
        let (admin_listener, admin_addr) = crate::bind("admin", &self.admin)?;
        let (http_tls, report) = match http_tls {
            Some(tls) => (Some(tls.config), tls.report),
            None => (None, None),
        };
        let http = crate::http_server::http_server_tls(
            "http",
            http_listener,
            app,
            self.workers,
            self.max_blocking_threads,
            self.grace,
            &self.limits,
            ConnectionCaps::public(&self.limits),
            http_tls,
            report,
        )?;
        let admin = crate::admin_server_with(
            admin_listener,
            readiness,
            metrics,
            shutdown.clone(),
            self.grace,
            &self.limits,
            self.max_blocking_threads,
            admin_tls.map(|tls| tls.config),
            admin_routes,
        )?;
        let addresses = Addresses {
            http: http_addr,
            grpc: grpc_bound.as_ref().map(|(_, addr)| *addr),
            admin: admin_addr,
        };
        let mut listeners = vec![("http", http_addr)];
        listeners.extend(addresses.grpc.map(|a| ("grpc", a)));
        listeners.push(("admin", admin_addr));
        crate::announce(self.service, &listeners);

        let mut supervisor = Supervisor::new(shutdown.clone(), self.grace)
            .http("http", http)
            .http("admin", admin);
        if let Some((server, _)) = grpc_bound {
            supervisor = supervisor.grpc(server);
        }
        Ok(Launched {
            addresses,
            supervisor,
        })
    }
}
