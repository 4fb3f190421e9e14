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
mod http;
pub mod items;

use std::sync::Arc;

use guard::Guard;
pub use runtime::Addresses;
use runtime::{Launch, Launched, Shutdown};

pub use crate::config::RsConfig;
pub use crate::error::RsError;
use crate::items::ItemStore;

/// What every request handler shares.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) guard: Guard,
    pub(crate) items: Arc<ItemStore>,
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
        let state = AppState {
            guard: guard.clone(),
            items: Arc::new(ItemStore::new(
                config.items.capacity,
                config.items.max_per_subject,
            )),
        };
        let launch = Launch {
            service: "rs",
            http: config.http.clone(),
            grpc: None,
            admin: config.admin.clone(),
            workers: config.runtime.http_workers(),
            grace: config.shutdown.grace_period,
            limits: config.limits,
        };
        let readiness = runtime::readiness(move || {
            let ready = guard.is_ready();
            async move {
                if ready {
                    Ok(())
                } else {
                    Err("the issuer's signing keys are not loaded yet".to_owned())
                }
            }
        });
        let launched = launch.bind(&shutdown, move || http::app(state.clone()), None, readiness)?;
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
