//! idp: the identity provider: users, passwords, login / consent / logout pages and browser
//! sessions, driving authz's login flow over gRPC and answering its `Sessions` questions.
//!
//! [`Application::build`] binds every listener (public HTTP, gRPC, admin), connects the
//! database and applies migrations when configured, and announces the bound addresses;
//! [`Application::run`] serves until the [`runtime::Shutdown`] triggers. Tests boot exactly
//! this code with port 0 everywhere.

/// The documented configuration, `configs/idp.yaml`: every key with its default
/// (`idp config-reference` prints it; a unit test keeps its keys equal to the config type's).
pub const CONFIG_REFERENCE: &str = include_str!("../../../configs/idp.yaml");

// account page
pub mod account;
// admin API (issue 18, idpadmin2)
mod admin;
pub mod cli;
mod clock;
pub mod config;
mod crypto;
mod csrf;
pub mod demo_seed;
mod error;
mod grpc;
mod http;
mod login_flow;
// email, sign-up and password reset (issue 21)
mod links;
pub mod mail;
mod schema;
pub mod sessions;
mod throttle;
pub mod upstream;
pub mod users;

use std::sync::Arc;
use std::time::Duration;

pub use runtime::Addresses;
use runtime::{Launch, Launched, Shutdown};
use storage::{Database, EmbeddedMigrations};

pub use crate::clock::{Clock, SystemClock};
pub use crate::config::AdminApiConfig;
pub use crate::config::IdpConfig;
pub use crate::config::SessionsApiConfig;
pub use crate::csrf::CsrfConfig;
pub use crate::error::IdpError;
pub use crate::login_flow::AuthzClientConfig;
pub use crate::throttle::ThrottleConfig;
use crate::users::{Passwords, Users};

/// The idp schema, applied by `idp migrate` or at start (`database.migrate_on_start`).
pub static MIGRATIONS: EmbeddedMigrations = diesel_migrations::embed_migrations!();

/// How often dead sessions are purged and the active-sessions gauge is refreshed.
const SESSION_UPKEEP: Duration = Duration::from_secs(30);
/// How often forgotten login counters and expired device cookies are purged.
const THROTTLE_UPKEEP: Duration = Duration::from_secs(60);
/// How often audit events older than `audit.retention` are purged.
const AUDIT_UPKEEP: Duration = Duration::from_secs(3600);

/// Shared state of the HTTP handlers.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) users: Users,
    pub(crate) sessions: sessions::Sessions,
    pub(crate) flow: login_flow::LoginFlow,
    pub(crate) csrf: csrf::Csrf,
    pub(crate) throttle: throttle::Throttle,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) cookies: http::cookies::Cookies,
    // email, sign-up and password reset (issue 21)
    /// Sends idp's messages.
    pub(crate) mailer: mail::Mailer,
    /// The mailed single-use links and their forms' rate limits.
    pub(crate) links: links::Links,
    /// The `signup` section.
    pub(crate) signup: links::LinkFlowConfig,
    /// The `password_reset` section.
    pub(crate) password_reset: links::LinkFlowConfig,
    /// `public_url` ending in `/`: the absolute base of mailed links.
    pub(crate) public_base: Arc<str>,
    /// Upstream identity providers.
    pub(crate) upstreams: upstream::Upstreams,
    /// The path of `public_url`, ending in `/`: where the forms post to.
    pub(crate) base: Arc<str>,
    // audit trail (issue 18, idpadmin)
    /// The database the security events of the pages are recorded in.
    pub(crate) db: Database,
    // account page
    /// The account page's operations.
    pub(crate) account: account::Account,
}

/// A bound, ready-to-run idp.
pub struct Application {
    launched: Launched,
    users: Users,
    /// Session upkeep, started by [`Application::run`] so that nothing else writes while
    /// start-up work (`serve --demo`) runs its transaction.
    sessions: sessions::Sessions,
    /// Login throttle upkeep, started by [`Application::run`] like the session upkeep.
    throttle: throttle::Throttle,
    /// Email links upkeep (expired links, finished rate windows).
    links: links::Links,
    /// The longest rate window of the mail forms.
    link_window: Duration,
    /// Upstream flow upkeep, started by [`Application::run`].
    upstreams: upstream::Upstreams,
    /// The database, whose write check [`Application::run`] starts for readiness.
    db: Database,
    /// `audit.retention`, enforced by the purge [`Application::run`] starts.
    audit: audit::AuditConfig,
    clock: Arc<dyn Clock>,
    // account page
    /// Delivery of pending revocations, started by [`Application::run`].
    account: account::Account,
    shutdown: Shutdown,
}

impl Application {
    /// Connects the database (migrating it when configured), binds the listeners and
    /// prints the `idp listening …` line. Nothing is served until [`Application::run`].
    pub async fn build(config: IdpConfig, shutdown: Shutdown) -> Result<Self, IdpError> {
        Self::build_with_clock(config, shutdown, Arc::new(SystemClock)).await
    }

    /// [`Application::build`] with an injected clock (tests move time to expire sessions
    /// and back-off windows).
    pub async fn build_with_clock(
        config: IdpConfig,
        shutdown: Shutdown,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, IdpError> {
        let db = Database::connect(&config.database, &MIGRATIONS).await?;
        let gauges = db.clone();
        runtime::spawn_periodic(
            "db pool gauges",
            Duration::from_secs(5),
            runtime::FirstRun::Immediately,
            shutdown.waiter(),
            move || {
                gauges.publish_pool_gauges();
                std::future::ready(())
            },
        );
        if config.database.migrate_on_start {
            db.migrate().await?;
        }
        let users = Users::new(db.clone(), Passwords::new(&config.passwords)?);
        let sessions = sessions::Sessions::new(db.clone(), Arc::clone(&clock), config.sessions);
        let throttle =
            throttle::Throttle::new(db.clone(), config.login_throttle, Arc::clone(&clock));
        let links = links::Links::new(db.clone(), Arc::clone(&clock));
        let mut base = config.public_url.path().to_owned();
        if !base.ends_with('/') {
            base.push('/');
        }
        let flow = login_flow::LoginFlow::new(&config.authz)?;
        // account page
        let mailer = mail::Mailer::new(&config.mail)?.with_reset_page(
            config.password_reset.enabled.then(|| {
                format!(
                    "{}/forgot",
                    config.public_url.as_str().trim_end_matches('/')
                )
            }),
        );
        let account = account::Account::new(
            db.clone(),
            account::Parts {
                users: users.clone(),
                flow: flow.clone(),
                links: links.clone(),
                mailer: mailer.clone(),
                clock: Arc::clone(&clock),
                config: config.account,
                idle_timeout: config.sessions.idle_timeout,
                public_url: config.public_url.to_string(),
            },
        );
        let upstreams = upstream::Upstreams::new(
            &config.upstreams,
            db.clone(),
            config.public_url.clone(),
            Arc::clone(&clock),
        )?;
        let state = AppState {
            users: users.clone(),
            sessions: sessions.clone(),
            flow,
            csrf: csrf::Csrf::new(&config.csrf)?,
            throttle: throttle.clone(),
            clock: Arc::clone(&clock),
            cookies: http::cookies::Cookies::new(
                config.public_url.scheme() == "https",
                config.sessions.lifetime.as_secs(),
            ),
            base: base.into(),
            account: account.clone(),
            // email, sign-up and password reset (issue 21)
            mailer,
            links: links.clone(),
            signup: config.signup,
            password_reset: config.password_reset,
            public_base: format!("{}/", config.public_url.as_str().trim_end_matches('/')).into(),
            db: db.clone(),
            upstreams: upstreams.clone(),
        };
        let grpc = grpc::router(
            users.clone(),
            sessions.clone(),
            grpc::Callers::new(&config.sessions_api, &config.grpc),
        );
        let launch = Launch {
            service: "idp",
            http: config.http.clone(),
            grpc: Some(config.grpc.listen()),
            admin: config.admin.clone(),
            workers: config.runtime.http_workers(),
            max_blocking_threads: config.runtime.max_blocking_threads,
            grace: config.shutdown.grace_period,
            limits: config.limits,
            request_client_certificates: false,
        };
        // admin API (issue 18, idpadmin2)
        let admin_routes = admin::admin_routes(&config.admin_api, state.clone())?;
        let launched = launch.bind_with_admin(
            &shutdown,
            move || http::app(state.clone()),
            Some(grpc),
            runtime::readiness({
                let db = db.clone();
                move || {
                    let db = db.clone();
                    async move { db.check_ready().await }
                }
            }),
            admin_routes,
        )?;
        Ok(Self {
            launched,
            users,
            sessions,
            throttle,
            links,
            link_window: config.signup.window.max(config.password_reset.window),
            upstreams,
            db,
            audit: config.audit,
            clock,
            account,
            shutdown,
        })
    }

    /// The bound addresses.
    pub fn addresses(&self) -> Addresses {
        self.launched.addresses
    }

    /// The user service the application serves.
    pub fn users(&self) -> &Users {
        &self.users
    }

    /// Serves until shutdown, then drains within the grace period.
    pub async fn run(self) -> Result<(), IdpError> {
        self.sessions
            .spawn_upkeep(SESSION_UPKEEP, self.shutdown.waiter());
        self.throttle
            .spawn_upkeep(THROTTLE_UPKEEP, self.shutdown.waiter());
        // account page
        self.account.spawn_delivery(self.shutdown.waiter());
        self.links
            .spawn_upkeep(THROTTLE_UPKEEP, self.link_window, self.shutdown.waiter());
        let (db, clock, retention) = (self.db.clone(), Arc::clone(&self.clock), self.audit);
        runtime::spawn_periodic(
            "audit retention",
            AUDIT_UPKEEP,
            runtime::FirstRun::AfterInterval,
            self.shutdown.waiter(),
            move || {
                let (db, clock) = (db.clone(), Arc::clone(&clock));
                async move {
                    let before =
                        audit::unix_ms(clock.now()).saturating_sub(retention.retention_ms());
                    match audit::purge(&db, before).await {
                        Ok(0) => {}
                        Ok(n) => tracing::debug!(purged = n, "expired audit events deleted"),
                        Err(e) => tracing::warn!(error = %e, "cannot purge audit events"),
                    }
                }
            },
        );
        self.upstreams
            .spawn_upkeep(THROTTLE_UPKEEP, self.shutdown.waiter());
        // Checks every database.write_check_interval that the database takes writes, so
        // /readyz answers 503 while it does not and 200 again once it does.
        let db = self.db.clone();
        runtime::spawn_periodic(
            "database write check",
            db.write_check_interval(),
            runtime::FirstRun::Immediately,
            self.shutdown.waiter(),
            move || {
                let db = db.clone();
                async move {
                    // The outcome is kept for readiness and logged when it changes.
                    let _ = db.check_writes().await;
                }
            },
        );
        Ok(self.launched.supervisor.run().await?)
    }
}

/// `idp serve`: runs until SIGTERM/ctrl-c. With demo data ([`demo_seed::Demo`]), refuses to
/// start unless `public_url` is local, warns that public demo credentials are in use, and
/// seeds the demo user (printing one `demo: …` line per action on stdout) after the
/// migrations and before anything is served; a failed seed stops the start.
pub async fn serve(config: IdpConfig, demo: demo_seed::Demo) -> Result<(), IdpError> {
    demo_seed::permitted(demo, &config.public_url)?;
    let shutdown = Shutdown::new();
    shutdown.on_signals();
    let app = Application::build(config, shutdown.clone()).await?;
    if demo.is_on() {
        tracing::warn!(
            "demo data: public demo credentials are seeded; never use --demo in production"
        );
        match demo_seed::seed(app.users(), demo).await {
            Ok(lines) => runtime::announce_lines(&lines),
            Err(e) => {
                shutdown.trigger();
                return Err(e);
            }
        }
    }
    app.run().await
}

/// `idp migrate`: applies pending migrations and lists them.
pub async fn migrate(config: &IdpConfig) -> Result<Vec<String>, IdpError> {
    let db = Database::connect(&config.database, &MIGRATIONS).await?;
    Ok(db.migrate().await?)
}
