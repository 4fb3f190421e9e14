//! authz: the OAuth 2.1 authorization server and OpenID Connect provider.
//!
//! [`Application::build`] binds every listener (public HTTP, gRPC, admin), connects the
//! database and applies migrations when configured, and announces the bound addresses;
//! [`Application::run`] serves until the [`runtime::Shutdown`] triggers. Tests boot exactly
//! this code with port 0 everywhere.

pub mod config;
mod error;
mod grpc;
mod http;

use std::sync::Arc;

pub use runtime::Addresses;
use runtime::{Launch, Launched, Shutdown};
use storage::{Database, EmbeddedMigrations};

pub use crate::config::AuthzConfig;
pub use crate::error::AuthzError;

/// The authz schema, applied by `authz migrate` or at start (`database.migrate_on_start`).
pub static MIGRATIONS: EmbeddedMigrations = diesel_migrations::embed_migrations!();

/// Shared state of the HTTP and gRPC handlers.
#[derive(Clone)]
pub(crate) struct AppState {
    #[allow(dead_code)]
    pub(crate) config: Arc<AuthzConfig>,
    #[allow(dead_code)]
    pub(crate) db: Database,
}

/// A bound, ready-to-run authz.
pub struct Application {
    launched: Launched,
}

impl Application {
    /// Connects the database (migrating it when configured), binds the listeners and
    /// prints the `authz listening …` line. Nothing is served until [`Application::run`].
    pub async fn build(config: AuthzConfig, shutdown: Shutdown) -> Result<Self, AuthzError> {
        let db = Database::connect(&config.database, &MIGRATIONS).await?;
        if config.database.migrate_on_start {
            db.migrate().await?;
        }
        let launch = Launch {
            service: "authz",
            http: config.http,
            grpc: Some(config.grpc),
            admin: config.admin,
            workers: config.runtime.http_workers(),
            grace: config.shutdown.grace_period,
        };
        let state = AppState {
            config: Arc::new(config),
            db: db.clone(),
        };
        let launched = launch.bind(
            &shutdown,
            move || http::app(state.clone()),
            Some(grpc::router(&shutdown)),
            runtime::readiness(move || {
                let db = db.clone();
                async move { db.check_ready().await }
            }),
        )?;
        Ok(Self { launched })
    }

    /// The bound addresses.
    pub fn addresses(&self) -> Addresses {
        self.launched.addresses
    }

    /// Serves until shutdown, then drains within the grace period.
    pub async fn run(self) -> Result<(), AuthzError> {
        Ok(self.launched.supervisor.run().await?)
    }
}

/// `authz serve`: runs until SIGTERM/ctrl-c.
pub async fn serve(config: AuthzConfig) -> Result<(), AuthzError> {
    let shutdown = Shutdown::new();
    shutdown.on_signals();
    Application::build(config, shutdown).await?.run().await
}

/// `authz migrate`: applies pending migrations and lists them.
pub async fn migrate(config: &AuthzConfig) -> Result<Vec<String>, AuthzError> {
    let db = Database::connect(&config.database, &MIGRATIONS).await?;
    Ok(db.migrate().await?)
}
