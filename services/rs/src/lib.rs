//! rs: the reference resource server, a small protected API built on the `guard` crate.
//!
//! [`Application::build`] builds the token guard, binds the public and admin listeners and
//! announces them; [`Application::run`] serves until the [`runtime::Shutdown`] triggers.
//! `/readyz` answers 200 once the guard can decide on tokens (in `jwt` and `hybrid` modes:
//! once the issuer's signing keys were loaded).

/// The documented configuration, `configs/rs.yaml`: every key with its default
/// (`rs config-reference` prints it; a unit test keeps its keys equal to the config type's).
pub const CONFIG_REFERENCE: &str = include_str!("../../../configs/rs.yaml");

pub mod config;
mod error;
mod exchange;
mod http;
pub mod items;

use std::sync::Arc;

use guard::Guard;
pub use runtime::Addresses;
use runtime::{Launch, Launched, Shutdown};

pub use crate::config::RsConfig;
pub use crate::error::RsError;
use crate::exchange::Exchanger;
use crate::items::ItemStore;

/// What every request handler shares.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) guard: Guard,
    pub(crate) items: Arc<ItemStore>,
    /// The token exchange demo (`exchange.enabled`).
    pub(crate) delegation: Option<Delegation>,
}

/// What the token exchange routes share: the exchanging client and the downstream route's
/// guard (the main guard's settings with the exchange audience).
#[derive(Clone)]
pub(crate) struct Delegation {
    pub(crate) exchanger: Arc<Exchanger>,
    pub(crate) guard: Guard,
}

/// A bound, ready-to-run rs.
pub struct Application {
    launched: Launched,
}

impl Application {
    /// Builds the guard, binds the listeners and prints the `rs listening …` line.
    pub async fn build(config: RsConfig, shutdown: Shutdown) -> Result<Self, RsError> {
        let guard = Guard::new(config.guard.clone())?;
        tracing::info!(
            mode = guard.mode().as_str(),
            issuer = %config.guard.issuer,
            audience = %config.guard.audience,
            "token guard configured"
        );
        let token_endpoint = config.exchange.token_endpoint_for(&config.guard);
        let delegation = match Exchanger::new(
            &config.exchange,
            token_endpoint,
            config.guard.jwks.ca_file.as_deref(),
        )? {
            Some(exchanger) => Some(Delegation {
                exchanger: Arc::new(exchanger),
                guard: Guard::new(guard::GuardConfig {
                    audience: config.exchange.audience.clone(),
                    ..config.guard.clone()
                })?,
            }),
            None => None,
        };
        let state = AppState {
            guard: guard.clone(),
            items: Arc::new(ItemStore::new(
                config.items.capacity,
                config.items.max_per_subject,
            )),
            delegation: delegation.clone(),
        };
        let http_tls = config.http.tls.enabled();
        let launch = Launch {
            service: "rs",
            http: config.http.clone(),
            grpc: None,
            admin: config.admin.clone(),
            workers: config.runtime.http_workers(),
            max_blocking_threads: config.runtime.max_blocking_threads,
            grace: config.shutdown.grace_period,
            limits: config.limits,
            request_client_certificates: false,
        };
        let downstream_guard = delegation.as_ref().map(|d| d.guard.clone());
        let readiness = runtime::readiness(move || {
            let ready = guard.is_ready() && downstream_guard.as_ref().is_none_or(Guard::is_ready);
            async move {
                if ready {
                    Ok(())
                } else {
                    Err("the issuer's signing keys are not loaded yet".to_owned())
                }
            }
        });
        let launched = launch.bind(&shutdown, move || http::app(state.clone()), None, readiness)?;
        if let Some(d) = &delegation {
            // A wildcard listener is reached over loopback.
            let mut own = launched.addresses.http;
            if own.ip().is_unspecified() {
                own.set_ip(match own {
                    std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                    std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                });
            }
            // Over TLS when the listener serves it: the exchanger trusts guard.jwks.ca_file,
            // which must then also cover rs's own certificate (as the demo CA does).
            let scheme = if http_tls { "https" } else { "http" };
            d.exchanger
                .serve_downstream_at(format!("{scheme}://{own}/api/v1/downstream"));
        }
        Ok(Self { launched })
    }

    /// The bound addresses.
    pub fn addresses(&self) -> Addresses {
        self.launched.addresses
    }

    /// Serves until shutdown, then drains within the grace period.
    pub async fn run(self) -> Result<(), RsError> {
        Ok(self.launched.supervisor.run().await?)
    }
}

/// `rs serve`: runs until SIGTERM/ctrl-c.
pub async fn serve(config: RsConfig) -> Result<(), RsError> {
    let shutdown = Shutdown::new();
    shutdown.on_signals();
    Application::build(config, shutdown).await?.run().await
}
