//! idp: the identity provider: users, passwords, login / consent / logout pages and browser
//! sessions, driving authz's login flow over gRPC and answering its `Sessions` questions.
//!
//! [`Application::build`] binds every listener (public HTTP, gRPC, admin), connects the
//! database and applies migrations when configured, and announces the bound addresses;
//! [`Application::run`] serves until the [`runtime::Shutdown`] triggers. Tests boot exactly
//! this code with port 0 everywhere.

pub mod cli;
pub mod config;
mod error;
mod grpc;
mod http;
mod schema;
pub mod users;

pub use runtime::Addresses;
use runtime::{Launch, Launched, Shutdown};
use storage::{Database, EmbeddedMigrations};

pub use crate::config::IdpConfig;
pub use crate::error::IdpError;

/// The idp schema, applied by `idp migrate` or at start (`database.migrate_on_start`).
pub static MIGRATIONS: EmbeddedMigrations = diesel_migrations::embed_migrations!();

/// A bound, ready-to-run idp.
pub struct Application {
    launched: Launched,
}

impl Application {
    /// Connects the database (migrating it when configured), binds the listeners and
    /// prints the `idp listening …` line. Nothing is served until [`Application::run`].
    pub async fn build(config: IdpConfig, shutdown: Shutdown) -> Result<Self, IdpError> {
        let db = Database::connect(&config.database, &MIGRATIONS).await?;
        db.spawn_pool_gauges(std::time::Duration::from_secs(5), shutdown.waiter());
        if config.database.migrate_on_start {
            db.migrate().await?;
        }
        let launch = Launch {
            service: "idp",
            http: config.http,
            grpc: Some(config.grpc),
            admin: config.admin,
            workers: config.runtime.http_workers(),
            grace: config.shutdown.grace_period,
        };
        let launched = launch.bind(
            &shutdown,
            http::app,
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
    pub async fn run(self) -> Result<(), IdpError> {
        Ok(self.launched.supervisor.run().await?)
    }
}

/// `idp serve`: runs until SIGTERM/ctrl-c.
pub async fn serve(config: IdpConfig) -> Result<(), IdpError> {
    let shutdown = Shutdown::new();
    shutdown.on_signals();
    Application::build(config, shutdown).await?.run().await
}

/// `idp migrate`: applies pending migrations and lists them.
pub async fn migrate(config: &IdpConfig) -> Result<Vec<String>, IdpError> {
    let db = Database::connect(&config.database, &MIGRATIONS).await?;
    Ok(db.migrate().await?)
}
