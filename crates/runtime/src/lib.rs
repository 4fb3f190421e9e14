//! What every service process shares: listener configuration, the admin endpoints
//! (`/metrics`, `/healthz`, `/readyz`), per-route HTTP metrics and trace spans, the gRPC server with
//! `grpc.health.v1`, reflection and per-method metrics and spans, the observed gRPC client
//! channel, and one graceful shutdown for all of them.
//!
//! A service binds its listeners first (port 0 works: the bound address is read back),
//! announces the addresses on stdout with [`announce`], then hands its servers to
//! [`Supervisor`], which runs them until SIGTERM/ctrl-c (or [`Shutdown::trigger`]) and drains
//! in-flight requests for at most the configured grace period.

mod admin;
mod announce;
pub mod cli;
mod demo;
mod grpc;
mod grpc_limits;
mod grpc_observe;
mod http_limits;
mod http_observe;
mod http_server;
mod launch;
mod limits;
mod listen;
mod periodic;
mod shutdown;
mod supervisor;
#[cfg(any(test, feature = "test-pki"))]
pub mod test_pki;
pub mod testing;
mod tls;
#[cfg(test)]
mod tls_tests;
mod workers;

pub use admin::{AdminRoutes, AdminServer, Readiness, admin_server, admin_server_with, readiness};
pub use announce::{announce, announce_lines};
pub use demo::Demo;
pub use grpc::{GrpcServer, GrpcServices, grpc_health};
pub use grpc_observe::{
    GrpcChannel, GrpcClientLayer, GrpcClientObserve, GrpcServerLayer, GrpcServerObserve, code_name,
    grpc_channel,
};
pub use http_observe::observe_requests;
pub use http_server::{ConnectionCaps, base_app, http_server, http_server_with_limits};
pub use launch::{Addresses, Launch, Launched};
pub use limits::{LimitsConfig, OPEN_METRIC, REFUSED_METRIC, SHED_METRIC, TIMEOUT_METRIC};
pub use listen::{ListenConfig, bind};
pub use periodic::{FirstRun, spawn_periodic};
pub use shutdown::{Shutdown, ShutdownConfig};
pub use supervisor::Supervisor;
pub use tls::{
    GrpcListenConfig, PeerCertificate, RELOAD_METRIC, TlsClientConfig, TlsConfig, TlsVersion,
    mtls_client_id, peer_identities,
};
pub use workers::{DEFAULT_MAX_BLOCKING_THREADS, RuntimeConfig};

/// Errors while starting or running the servers.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// A listener could not be bound (`section` names the config section).
    #[error("{section}: cannot listen on {addr}: {source}")]
    Bind {
        /// Config section of the listener (`http`, `grpc`, `admin`).
        section: &'static str,
        /// The address that was asked for.
        addr: std::net::SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// An HTTP server failed while running.
    #[error("{name} server failed: {source}")]
    Http {
        /// Which listener.
        name: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// The gRPC server failed while running.
    #[error("gRPC server failed: {0}")]
    Grpc(#[from] tonic::transport::Error),
    /// The encoded file descriptor sets of the gRPC services do not decode.
    #[error("gRPC file descriptor set: {0}")]
    Descriptors(String),
    /// The metrics recorder is unavailable.
    #[error("metrics recorder: {0}")]
    Metrics(String),
    /// The connection caps do not fit the process's file-descriptor limit (one line
    /// naming the `limits` key).
    #[error("{0}")]
    Limits(String),
    /// A listener's TLS configuration is unusable (one line naming the key).
    #[error("{0}")]
    Tls(String),
    /// A server task panicked or was cancelled.
    #[error("a server task panicked or was cancelled")]
    TaskAborted,
}
