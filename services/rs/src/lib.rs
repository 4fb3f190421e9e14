//! rs: the reference resource server, a small protected API built on the `guard` crate.
//!
//! [`Application::build`] binds the public and admin listeners and announces them;
//! [`Application::run`] serves until the [`runtime::Shutdown`] triggers.

pub mod config;
mod error;
mod http;

pub use runtime::Addresses;
use runtime::{Launch, Launched, Shutdown};

pub use crate::config::RsConfig;
pub use crate::error::RsError;

/// A bound, ready-to-run rs.
pub struct Application {
    launched: Launched,
}

impl Application {
    /// Binds the listeners and prints the `rs listening …` line.
    pub async fn build(config: RsConfig, shutdown: Shutdown) -> Result<Self, RsError> {
        let launch = Launch {
            service: "rs",
            http: config.http,
            grpc: None,
            admin: config.admin,
            workers: config.runtime.http_workers(),
            grace: config.shutdown.grace_period,
        };
        let launched = launch.bind(
            &shutdown,
            http::app,
            None,
            runtime::readiness(|| async { Ok(()) }),
        )?;
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
