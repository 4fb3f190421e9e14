//! authz: the OAuth 2.1 authorization server and OpenID Connect provider.
//!
//! [`Application::build`] binds every listener (public HTTP, gRPC, admin), connects the
//! database and applies migrations when configured, and announces the bound addresses;
//! [`Application::run`] serves until the [`runtime::Shutdown`] triggers. Tests boot exactly
//! this code with port 0 everywhere.

/// The documented configuration, `configs/authz.yaml`: every key with its default
/// (`authz config-reference` prints it; a unit test keeps its keys equal to the config type's).
pub const CONFIG_REFERENCE: &str = include_str!("../../../configs/authz.yaml");

// admin API (issue 18)
mod admin;
pub mod cli;
pub mod clients;
pub mod config;
pub mod demo_seed;
// device grant (RFC 8628)
mod device;
mod error;
mod flow;
mod grants;
mod grpc;
mod http;
mod idp;
pub mod keys;
mod logout;
// PAR (RFC 9126)
mod par;
// dcr: Dynamic Client Registration (RFC 7591, RFC 7592)
pub mod registration;
mod relay;
mod schema;
pub mod signing;
pub(crate) mod tokens;

use std::sync::Arc;

use issuer::{Clock, SystemClock};
pub use runtime::Addresses;
use runtime::{Launch, Launched, Shutdown};
use storage::{Database, EmbeddedMigrations};

use crate::clients::Clients;
use crate::device::Devices;
use crate::flow::Flow;
use crate::grants::Grants;
use crate::idp::Idp;
use crate::keys::KeyStore;
use crate::logout::Logouts;
use crate::tokens::Tokens;

pub use crate::config::AuthzConfig;
pub use crate::error::AuthzError;

/// The authz schema, applied by `authz migrate` or at start (`database.migrate_on_start`).
pub static MIGRATIONS: EmbeddedMigrations = diesel_migrations::embed_migrations!();

/// Shared state of the HTTP and gRPC handlers.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) keys: Arc<KeyStore>,
    pub(crate) clients: Arc<Clients>,
    pub(crate) tokens: Arc<Tokens>,
    /// The authorization code flow up to the code.
    pub(crate) flow: Arc<Flow>,
    /// Code redemption, refresh, grant revocation.
    pub(crate) grants: Arc<Grants>,
    /// idp's `Sessions` API.
    pub(crate) idp: Arc<Idp>,
    /// logout: back- and front-channel logout propagation.
    pub(crate) logouts: Arc<Logouts>,
    /// Device authorizations (RFC 8628).
    pub(crate) devices: Arc<Devices>,
    /// dcr: dynamic client registration (RFC 7591, RFC 7592).
    pub(crate) registrations: Arc<registration::Registrations>,
    /// PAR: pushed authorization requests (RFC 9126).
    pub(crate) pushed: Arc<par::PushedRequests>,
    /// Whether cookies get `Secure` (the issuer is https).
    pub(crate) secure_cookies: bool,
    /// The issuer identifier, as configured.
    pub(crate) issuer: String,
    /// clientauth: `client_auth.mtls_base_url`, the RFC 8705 §5 alias base.
    pub(crate) mtls_base_url: Option<String>,
    /// The discovery document, serialised at start.
    pub(crate) discovery: actix_web::web::Bytes,
    /// `public, max-age=<keys.jwks_max_age>`.
    pub(crate) jwks_cache_control: String,
    // admin API (issue 18)
    /// Users' remembered consents (`/admin/v1/users/{subject}/consents`).
    pub(crate) consents: Arc<grants::Consents>,
    // audit trail (issue 18, idpadmin)
    /// The database the audit events of the endpoints are recorded in.
    pub(crate) db: Database,
}

impl AppState {
    /// An endpoint URL under the issuer.
    pub(crate) fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.issuer.trim_end_matches('/'))
    }
}

/// A bound, ready-to-run authz.
pub struct Application {
    launched: Launched,
    db: Database,
    keys: Arc<KeyStore>,
    clients: Arc<Clients>,
    /// The periodic purge, started by [`Application::run`] so that nothing else writes
    /// while start-up work (`serve --demo`) runs its transactions.
    purge: Purge,
    /// `audit.retention`, enforced by the audit purge [`Application::run`] starts.
    audit: audit::AuditConfig,
}

/// What the periodic purge works on.
struct Purge {
    tokens: Arc<Tokens>,
    flow: Arc<Flow>,
    grants: Arc<Grants>,
    logouts: Arc<Logouts>,
    devices: Arc<Devices>,
    // clientauth: client assertion jtis
    clients: Arc<Clients>,
    // PAR (RFC 9126)
    pushed: Arc<par::PushedRequests>,
    shutdown: Shutdown,
}

impl Application {
    /// Connects the database (migrating it when configured), binds the listeners and
    /// prints the `authz listening …` line. Nothing is served until [`Application::run`].
    pub async fn build(config: AuthzConfig, shutdown: Shutdown) -> Result<Self, AuthzError> {
        Self::build_with_clock(config, shutdown, Arc::new(SystemClock)).await
    }

    /// [`Application::build`] with an injected clock (tests move time to walk key
    /// lifecycles).
    pub async fn build_with_clock(
        config: AuthzConfig,
        shutdown: Shutdown,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, AuthzError> {
        let db = Database::connect(&config.database, &MIGRATIONS).await?;
        let gauges = db.clone();
        runtime::spawn_periodic(
            "db pool gauges",
            std::time::Duration::from_secs(5),
            runtime::FirstRun::Immediately,
            shutdown.waiter(),
            move || {
                gauges.publish_pool_gauges();
                std::future::ready(())
            },
        );
        if config.database.migrate_on_start {
            db.migrate().await?;
        } else {
            let pending = db.pending_migrations().await?;
            if !pending.is_empty() {
                return Err(storage::StorageError::Migration(format!(
                    "{} pending and database.migrate_on_start is false: run `authz migrate` first",
                    pending.len()
                ))
                .into());
            }
        }
        let keys = KeyStore::open(
            db.clone(),
            &config.keys,
            config.keys.kek()?,
            Arc::clone(&clock),
        )
        .await?;
        keys.spawn_maintenance(config.keys.check_interval, shutdown.clone());
        let clients = Arc::new(
            Clients::new(db.clone(), Arc::clone(&clock), config.clients.cache_ttl)
                // clientauth
                .with_client_auth(&config.client_auth, config.keys.kek().ok()),
        );
        let signing = signing::SigningPool::start(config.keys.signing_threads)
            .map_err(|e| AuthzError::Task(format!("cannot start signing threads: {e}")))?;
        // admin API (issue 18): the consents service's clock.
        let admin_clock = Arc::clone(&clock);
        let tokens = Arc::new(Tokens::new(
            db.clone(),
            Arc::clone(&keys),
            Arc::clone(&clients),
            Arc::clone(&clock),
            signing,
            config.issuer.clone(),
            config.keys.default_alg,
        ));
        let idp = Arc::new(Idp::new(&config.idp)?);
        let flow = Arc::new(Flow::new(
            db.clone(),
            Arc::clone(&clients),
            Arc::clone(&tokens),
            Arc::clone(&idp),
            &config,
            config.endpoint(http::RESUME_PATH),
        ));
        let grants = Arc::new(Grants::new(
            db.clone(),
            Arc::clone(&tokens),
            Arc::clone(&idp),
            config.tokens.refresh_reuse_interval,
        ));
        let logouts = Arc::new(
            Logouts::new(
                db.clone(),
                Arc::clone(&clients),
                Arc::clone(&tokens),
                Arc::clone(&grants),
                &config.logout,
            )
            .map_err(|e| AuthzError::Task(format!("cannot start logout propagation: {e}")))?,
        );
        let devices = Arc::new(Devices::new(
            db.clone(),
            Arc::clone(&clients),
            Arc::clone(&tokens),
            &config.device,
            config.idp.page("/device"),
        ));
        // dcr
        let registrations = Arc::new(registration::Registrations::new(
            db.clone(),
            Arc::clone(&clients),
            Arc::clone(&clock),
            config.registration.clone(),
        ));
        let pushed = Arc::new(par::PushedRequests::new(
            db.clone(),
            Arc::clone(&clock),
            &config.par,
        ));
        let purge = Purge {
            tokens: Arc::clone(&tokens),
            flow: Arc::clone(&flow),
            grants: Arc::clone(&grants),
            logouts: Arc::clone(&logouts),
            devices: Arc::clone(&devices),
            // clientauth
            clients: Arc::clone(&clients),
            // PAR (RFC 9126)
            pushed: Arc::clone(&pushed),
            shutdown: shutdown.clone(),
        };
        let launch = Launch {
            service: "authz",
            http: config.http.clone(),
            grpc: Some(config.grpc.listen()),
            admin: config.admin.clone(),
            workers: config.runtime.http_workers(),
            max_blocking_threads: config.runtime.max_blocking_threads,
            grace: config.shutdown.grace_period,
            limits: config.limits,
            // clientauth: RFC 8705 §2 certificates from authz's own handshake.
            request_client_certificates: config.client_auth.handshake_certificates,
        };
        let state = AppState {
            discovery: http::discovery_document(&config),
            jwks_cache_control: format!("public, max-age={}", config.keys.jwks_max_age.as_secs()),
            keys: Arc::clone(&keys),
            clients: Arc::clone(&clients),
            tokens: Arc::clone(&tokens),
            flow: Arc::clone(&flow),
            grants: Arc::clone(&grants),
            idp,
            logouts: Arc::clone(&logouts),
            devices: Arc::clone(&devices),
            registrations,
            pushed,
            secure_cookies: config.issuer.starts_with("https://"),
            issuer: config.issuer.clone(),
            mtls_base_url: config.client_auth.mtls_base_url.clone(),
            // admin API (issue 18)
            consents: Arc::new(grants::Consents::new(db.clone(), admin_clock)),
            db: db.clone(),
        };
        let admin_routes = admin::admin_routes(&config, state.clone())?;
        let app = move || http::app(state.clone());
        let grpc = Some(grpc::router(
            Arc::clone(&clients),
            flow,
            grants,
            logouts,
            devices,
            grpc::GrpcAuth {
                identities: config.grpc.identities.clone(),
                basic_auth: config.grpc.basic_auth,
            },
        ));
        let readiness = runtime::readiness({
            let db = db.clone();
            move || {
                let db = db.clone();
                async move { db.check_ready().await }
            }
        });
        let launched =
            launch.bind_with_admin(&shutdown, app, grpc, readiness, Some(admin_routes))?;
        Ok(Self {
            launched,
            db,
            keys,
            clients,
            purge,
            audit: config.audit,
        })
    }

    /// The bound addresses.
    pub fn addresses(&self) -> Addresses {
        self.launched.addresses
    }

    /// The database pool (its query counter shows which paths touch the database).
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// The signing keys.
    pub fn keys(&self) -> &Arc<KeyStore> {
        &self.keys
    }

    /// The client registry the application serves (changes made through it take effect at
    /// once, without waiting for `clients.cache_ttl`).
    pub fn clients(&self) -> &Arc<Clients> {
        &self.clients
    }

    /// Serves until shutdown, then drains within the grace period.
    pub async fn run(self) -> Result<(), AuthzError> {
        spawn_write_check(self.db.clone(), self.purge.shutdown.waiter());
        self.purge
            .logouts
            .spawn_worker(self.purge.shutdown.waiter());
        spawn_audit_purge(self.db.clone(), self.audit, self.purge.shutdown.waiter());
        spawn_purge(self.purge);
        Ok(self.launched.supervisor.run().await?)
    }
}

/// Checks every `database.write_check_interval` until `stop` that the database takes
/// writes ([`Database::check_writes`]), so `/readyz` answers 503 while it does not and 200
/// again once it does, without a restart.
fn spawn_write_check(db: Database, stop: impl std::future::Future<Output = ()> + Send + 'static) {
    runtime::spawn_periodic(
        "database write check",
        db.write_check_interval(),
        runtime::FirstRun::Immediately,
        stop,
        move || {
            let db = db.clone();
            async move {
                // The outcome is kept for readiness and logged when it changes.
                let _ = db.check_writes().await;
            }
        },
    );
}

/// Deletes the audit events older than `audit.retention` every hour until `stop`.
fn spawn_audit_purge(
    db: Database,
    config: audit::AuditConfig,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) {
    runtime::spawn_periodic(
        "audit retention",
        std::time::Duration::from_secs(3600),
        runtime::FirstRun::AfterInterval,
        stop,
        move || {
            let db = db.clone();
            async move {
                let before = audit::unix_ms(std::time::SystemTime::now())
                    .saturating_sub(config.retention_ms());
                match audit::purge(&db, before).await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(purged = n, "expired audit events deleted"),
                    Err(e) => tracing::warn!(error = %e, "cannot purge audit events"),
                }
            }
        },
    );
}

/// Deletes expired state every ten minutes until shutdown: opaque tokens and denylist
/// entries, pending authorization requests, browser sessions, unredeemed codes, grants
/// with their refresh tokens, device authorizations and pushed authorization requests.
fn spawn_purge(purge: Purge) {
    let Purge {
        tokens,
        flow,
        grants,
        logouts,
        devices,
        clients,
        pushed,
        shutdown,
    } = purge;
    runtime::spawn_periodic(
        "purge expired rows",
        std::time::Duration::from_secs(600),
        runtime::FirstRun::Immediately,
        shutdown.waiter(),
        move || {
            let (tokens, flow, grants, logouts, devices, clients, pushed) = (
                tokens.clone(),
                flow.clone(),
                grants.clone(),
                logouts.clone(),
                devices.clone(),
                clients.clone(),
                pushed.clone(),
            );
            async move {
                let results = [
                    ("tokens", tokens.purge_expired().await),
                    (
                        "authorization requests and sessions",
                        flow.purge_expired().await,
                    ),
                    ("grants", grants.purge_expired().await),
                    (
                        "back-channel logout deliveries",
                        logouts.purge_expired().await,
                    ),
                    ("device authorizations", devices.purge_expired().await),
                    (
                        "pushed authorization requests",
                        pushed.purge_expired().await,
                    ),
                    // clientauth
                    (
                        "client assertion jtis",
                        clients.purge_assertion_jtis().await,
                    ),
                ];
                for (what, result) in results {
                    match result {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(rows = n, what, "expired rows purged"),
                        Err(e) => tracing::warn!(error = %e, what, "purging expired rows failed"),
                    }
                }
            }
        },
    );
}

/// `authz serve`: runs until SIGTERM/ctrl-c. With demo data ([`demo_seed::Demo`]), refuses
/// to start unless the issuer is local, warns that public demo credentials are in use, and
/// seeds the demo clients (printing one `demo: …` line per action on stdout) after the
/// migrations and before anything is served; a failed seed stops the start. `demo_app_url`
/// moves the demo clients' redirect URIs ([`demo_seed::clients_for_app`]).
pub async fn serve(
    config: AuthzConfig,
    demo: demo_seed::Demo,
    demo_app_url: Option<String>,
) -> Result<(), AuthzError> {
    demo_seed::permitted(demo, &config.issuer)?;
    let shutdown = Shutdown::new();
    shutdown.on_signals();
    let app = Application::build(config, shutdown.clone()).await?;
    if demo.is_on() {
        tracing::warn!(
            "demo data: public demo credentials are seeded; never use --demo in production"
        );
        match demo_seed::seed(app.clients(), demo, demo_app_url.as_deref()).await {
            Ok(lines) => runtime::announce_lines(&lines),
            Err(e) => {
                shutdown.trigger();
                return Err(e);
            }
        }
        // admin API (issue 18): demo-admin, allowed on the admin listener's origin.
        match demo_seed::seed_admin(app.clients(), demo, app.addresses().admin).await {
            Ok(lines) => runtime::announce_lines(&lines),
            Err(e) => {
                shutdown.trigger();
                return Err(e);
            }
        }
    }
    app.run().await
}

/// `authz migrate`: applies pending migrations and lists them.
pub async fn migrate(config: &AuthzConfig) -> Result<Vec<String>, AuthzError> {
    let db = Database::connect(&config.database, &MIGRATIONS).await?;
    Ok(db.migrate().await?)
}
