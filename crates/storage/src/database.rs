use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use deadpool::Runtime;
use diesel::migration::MigrationSource;
use diesel::{Connection, SqliteConnection};
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness};
use futures_util::FutureExt;

use crate::checkpoint::{BACKSTOP_PAGES, Checkpointer};
use crate::error::{Transience, transience};
use crate::{DatabaseConfig, DatabaseUrl, StorageError, with_conn};

/// The async SQLite connection: diesel's synchronous connection run on Tokio's blocking pool.
pub type SqliteConn = SyncConnectionWrapper<SqliteConnection>;
/// The async PostgreSQL connection (tokio-postgres underneath, no libpq).
pub type PgConn = AsyncPgConnection;

/// Which database engine a [`Database`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

#[derive(Clone)]
enum DbPool {
    Sqlite(Pool<SqliteConn>),
    Postgres(Pool<PgConn>),
}

/// A connection checked out of the pool; returned to it on drop. Use [`with_conn!`] to run
/// queries on it.
// Short-lived and rarely moved; boxing would cost an allocation per checkout.
#[allow(clippy::large_enum_variant)]
pub enum DbConn {
    /// SQLite connection.
    Sqlite(Object<SqliteConn>),
    /// PostgreSQL connection.
    Postgres(Object<PgConn>),
}

/// A pooled database with the service's embedded migrations. Cheap to clone.
#[derive(Clone)]
pub struct Database {
    inner: Arc<Inner>,
}

struct Inner {
    /// SQLite: the thread that checkpoints the write-ahead log. Declared first so that it
    /// is stopped before the pool's connections close (fields drop in order): the last of
    /// them then checkpoints and removes the log.
    _checkpointer: Option<Checkpointer>,
    pool: DbPool,
    url: DatabaseUrl,
    migrations: &'static EmbeddedMigrations,
    expected: BTreeSet<String>,
    migrated: AtomicBool,
    queries: Arc<AtomicU64>,
    health: Arc<WriteHealth>,
}

/// What the pool has seen of write health: the last write check's verdict and the last
/// query that failed because the database cannot take writes ([`Transience::Outage`]).
struct WriteHealth {
    /// `Some(reason)` while the last [`Database::check_writes`] failed.
    failing: Mutex<Option<&'static str>>,
    /// When a query last failed with an outage, and which.
    last_outage: Mutex<Option<(Instant, &'static str)>>,
    /// How long an outage seen by a query keeps readiness down.
    window: Duration,
}

impl WriteHealth {
    fn note_outage(&self, reason: &'static str) {
        *self
            .last_outage
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some((Instant::now(), reason));
    }

    fn verdict(&self) -> Result<(), String> {
        if let Some(reason) = *self.failing.lock().unwrap_or_else(PoisonError::into_inner) {
            return Err(format!("database writes failing: {reason}"));
        }
        let last = *self
            .last_outage
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match last {
            Some((at, reason)) if at.elapsed() < self.window => {
                Err(format!("database writes failing: {reason}"))
            }
            _ => Ok(()),
        }
    }
}

/// A short, secret-free description of a transient failure for `/readyz`.
fn reason(e: &StorageError) -> &'static str {
    match e {
        StorageError::Unavailable(_) => "no connection",
        StorageError::Query(q) => match transience(q) {
            Some(Transience::Contention) => "locked or timed out",
            Some(Transience::Outage) => outage_reason(q),
            None => "write failed",
        },
        _ => "write failed",
    }
}

fn outage_reason(e: &diesel::result::Error) -> &'static str {
    use diesel::result::Error;
    match e {
        Error::DatabaseError(_, info) => {
            let m = info.message();
            if m == "database or disk is full" {
                "disk full"
            } else if m.starts_with("disk I/O error") {
                "disk I/O error"
            } else {
                "connection lost"
            }
        }
        Error::RollbackErrorOnCommit { commit_error, .. } => outage_reason(commit_error),
        _ => "connection lost",
    }
}

#[derive(diesel::QueryableByName)]
struct AppliedVersion {
    #[diesel(sql_type = diesel::sql_types::Text)]
    version: String,
}

/// Whether opening a [`Database`] may create a SQLite database file that does not exist.
/// PostgreSQL databases are never created: connecting to a missing one fails either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Create the file (and its directory) when missing: what `serve` and `migrate` do.
    Create,
    /// Refuse a missing file with [`StorageError::Missing`] and create nothing, not even its
    /// directory: every command that only works on an existing deployment's data. The
    /// connections open the file read-write without SQLite's create flag, so a file removed
    /// after the check is not silently recreated either.
    MustExist,
}

impl Database {
    /// Builds the pool and opens one connection to fail fast on a wrong URL or credentials,
    /// creating a missing SQLite file ([`OpenMode::Create`]). Nothing is migrated here: see
    /// [`Database::migrate`].
    pub async fn connect(
        config: &DatabaseConfig,
        migrations: &'static EmbeddedMigrations,
    ) -> Result<Self, StorageError> {
        Self::open(config, migrations, OpenMode::Create).await
    }

    /// Fails with [`StorageError::Missing`] when `config` names a SQLite file that does not
    /// exist; checks nothing else and touches nothing. Lets a command refuse before it starts
    /// any work; [`Database::open`] with [`OpenMode::MustExist`] checks again when opening.
    pub fn require_existing(config: &DatabaseConfig) -> Result<(), StorageError> {
        match DatabaseUrl::parse(config.url.expose()).map_err(StorageError::Url)? {
            DatabaseUrl::Sqlite(path) if !path.is_file() => Err(StorageError::Missing {
                url: format!("sqlite://{}", path.display()),
            }),
            _ => Ok(()),
        }
    }

    /// [`Database::connect`] with an explicit [`OpenMode`].
    pub async fn open(
        config: &DatabaseConfig,
        migrations: &'static EmbeddedMigrations,
        mode: OpenMode,
    ) -> Result<Self, StorageError> {
        let url = DatabaseUrl::parse(config.url.expose()).map_err(StorageError::Url)?;
        let queries = Arc::new(AtomicU64::new(0));
        let health = Arc::new(WriteHealth {
            failing: Mutex::new(None),
            last_outage: Mutex::new(None),
            window: config.write_check_interval,
        });
        let mut checkpointer = None;
        let pool = match &url {
            DatabaseUrl::Sqlite(path) => {
                let target = match mode {
                    OpenMode::Create => {
                        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                            std::fs::create_dir_all(dir).map_err(|e| {
                                StorageError::Connect(format!(
                                    "cannot create {}: {e}",
                                    dir.display()
                                ))
                            })?;
                        }
                        path.to_string_lossy().into_owned()
                    }
                    OpenMode::MustExist => {
                        Self::require_existing(config)?;
                        sqlite_uri_without_create(path)
                    }
                };
                let pragmas = sqlite_pragmas(config.sqlite_busy_timeout.as_millis());
                checkpointer = Some(Checkpointer::start(
                    sqlite_uri_without_create(path),
                    pragmas.clone(),
                    config.sqlite_checkpoint_interval,
                )?);
                DbPool::Sqlite(pool::<SqliteConn, _>(
                    &target,
                    config,
                    &queries,
                    &health,
                    move |conn| {
                        let pragmas = pragmas.clone();
                        async move {
                            conn.batch_execute(&pragmas)
                                .await
                                .map_err(diesel::ConnectionError::CouldntSetupConfiguration)
                        }
                        .boxed()
                    },
                )?)
            }
            DatabaseUrl::Postgres(raw) => {
                let timeouts = postgres_timeouts(config);
                DbPool::Postgres(pool::<PgConn, _>(
                    raw,
                    config,
                    &queries,
                    &health,
                    move |conn| {
                        let timeouts = timeouts.clone();
                        async move {
                            // Best effort: the transient classification reads the server's
                            // English messages; only privileged roles may change this.
                            if conn.batch_execute("SET lc_messages = 'C'").await.is_err() {
                                tracing::debug!("lc_messages left at the server's setting");
                            }
                            conn.batch_execute(&timeouts)
                                .await
                                .map_err(diesel::ConnectionError::CouldntSetupConfiguration)
                        }
                        .boxed()
                    },
                )?)
            }
        };
        let expected = MigrationSource::<diesel::sqlite::Sqlite>::migrations(migrations)
            .map_err(|e| StorageError::Migration(e.to_string()))?
            .iter()
            .map(|m| m.name().version().to_string())
            .collect();
        let db = Self {
            inner: Arc::new(Inner {
                pool,
                url,
                migrations,
                expected,
                migrated: AtomicBool::new(false),
                queries,
                health,
                _checkpointer: checkpointer,
            }),
        };
        db.get().await.map_err(|e| match e {
            StorageError::Unavailable(m) => StorageError::Connect(m),
            other => other,
        })?;
        Ok(db)
    }

    /// Which engine this is.
    pub fn backend(&self) -> Backend {
        match self.inner.pool {
            DbPool::Sqlite(_) => Backend::Sqlite,
            DbPool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Checks a connection out of the pool, waiting at most the acquire timeout.
    pub async fn get(&self) -> Result<DbConn, StorageError> {
        fn unavailable<E: std::fmt::Display>(e: E) -> StorageError {
            StorageError::Unavailable(e.to_string())
        }
        Ok(match &self.inner.pool {
            DbPool::Sqlite(pool) => DbConn::Sqlite(pool.get().await.map_err(unavailable)?),
            DbPool::Postgres(pool) => DbConn::Postgres(pool.get().await.map_err(unavailable)?),
        })
    }

    /// `database.write_check_interval`: how often the service should call
    /// [`Database::check_writes`], and how long a query's outage keeps readiness down.
    pub fn write_check_interval(&self) -> Duration {
        self.inner.health.window
    }

    /// How many SQL statements this pool's connections have started since it was built
    /// (also exported as `db_queries_total`). Lets tests prove a path does no database work.
    pub fn queries_started(&self) -> u64 {
        AtomicU64::load(&self.inner.queries, Ordering::Relaxed)
    }

    /// Publishes the pool state now: `db_pool_connections{state="open"|"idle"}` and
    /// `db_pool_max_connections`. Services call it periodically (`runtime::spawn_periodic`;
    /// storage sits below the runtime crate and does not schedule work itself).
    pub fn publish_pool_gauges(&self) {
        let (size, available) = self.pool_status();
        let max = match &self.inner.pool {
            DbPool::Sqlite(pool) => pool.status().max_size,
            DbPool::Postgres(pool) => pool.status().max_size,
        };
        metrics::gauge!("db_pool_connections", "state" => "open").set(size as f64);
        metrics::gauge!("db_pool_connections", "state" => "idle").set(available as f64);
        metrics::gauge!("db_pool_max_connections").set(max as f64);
    }

    /// `(size, available)` of the pool, for the pool-state gauges.
    pub fn pool_status(&self) -> (usize, usize) {
        let status = match &self.inner.pool {
            DbPool::Sqlite(pool) => pool.status(),
            DbPool::Postgres(pool) => pool.status(),
        };
        (status.size, status.available)
    }

    /// Applies every pending embedded migration, each in its own transaction, and returns
    /// the versions applied. On PostgreSQL a session advisory lock serialises concurrent
    /// migrators (several replicas starting at once).
    pub async fn migrate(&self) -> Result<Vec<String>, StorageError> {
        let migrations = self.inner.migrations;
        let applied = match &self.inner.url {
            DatabaseUrl::Sqlite(path) => {
                let path = path.to_string_lossy().into_owned();
                tokio::task::spawn_blocking(move || -> Result<Vec<String>, StorageError> {
                    let mut conn = SqliteConnection::establish(&path)
                        .map_err(|e| StorageError::Connect(e.to_string()))?;
                    diesel::connection::SimpleConnection::batch_execute(
                        &mut conn,
                        &sqlite_pragmas(5000),
                    )?;
                    run_pending(&mut conn, migrations)
                })
                .await
                .map_err(|e| StorageError::Migration(e.to_string()))??
            }
            DatabaseUrl::Postgres(raw) => {
                let mut conn = PgConn::establish(raw)
                    .await
                    .map_err(|e| StorageError::Connect(e.to_string()))?;
                conn.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))
                    .await?;
                tokio::task::spawn_blocking(move || -> Result<Vec<String>, StorageError> {
                    let mut conn: AsyncConnectionWrapper<PgConn> = conn.into();
                    run_pending(&mut conn, migrations)
                })
                .await
                .map_err(|e| StorageError::Migration(e.to_string()))??
            }
        };
        if !applied.is_empty() {
            tracing::info!(count = applied.len(), versions = ?applied, "migrations applied");
        }
        self.inner.migrated.store(true, Ordering::Release);
        Ok(applied)
    }

    /// Versions of embedded migrations not yet applied to the database.
    pub async fn pending_migrations(&self) -> Result<Vec<String>, StorageError> {
        let mut conn = self.get().await?;
        let applied: Vec<AppliedVersion> = with_conn!(&mut conn, |c| {
            diesel::sql_query("SELECT version FROM __diesel_schema_migrations")
                .load(c)
                .await
        })
        .or_else(|e| match e {
            // No migration table yet: nothing applied.
            diesel::result::Error::DatabaseError(..) => Ok(Vec::new()),
            other => Err(other),
        })?;
        let applied: BTreeSet<String> = applied.into_iter().map(|a| a.version).collect();
        Ok(self.inner.expected.difference(&applied).cloned().collect())
    }

    /// One tiny write: bumps the single row of the `storage_health` table (every service
    /// with a database has it from its migrations) in its own one-statement transaction,
    /// and remembers the outcome for [`Database::check_ready`]. Services run it every
    /// `database.write_check_interval` (`runtime::spawn_periodic`). A failure is logged as
    /// a warning without its SQL or connection details.
    pub async fn check_writes(&self) -> Result<(), StorageError> {
        let result = async {
            let mut conn = self.get().await?;
            with_conn!(&mut conn, |c| diesel::sql_query(
                "INSERT INTO storage_health (id, beats) VALUES (1, 1) \
                 ON CONFLICT (id) DO UPDATE SET beats = storage_health.beats + 1"
            )
            .execute(c)
            .await)?;
            Ok::<(), StorageError>(())
        }
        .await;
        let verdict = result.as_ref().err().map(reason);
        let mut failing = self
            .inner
            .health
            .failing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match (verdict, *failing) {
            (Some(now), None) => tracing::warn!(reason = now, "database writes failing"),
            (None, Some(_)) => tracing::info!("database writes work again"),
            _ => {}
        }
        *failing = verdict;
        result
    }

    /// Readiness: the database answers, no embedded migration is pending, and it takes
    /// writes: the last [`Database::check_writes`] succeeded and no query failed for a
    /// full or failing disk or a lost server within the last `write_check_interval`. Once
    /// all migrations were seen applied the migration table is no longer read. The reason
    /// names the kind of failure only ("database writes failing: disk full").
    pub async fn check_ready(&self) -> Result<(), String> {
        if !AtomicBool::load(&self.inner.migrated, Ordering::Acquire) {
            // Pending migrations are the first thing to name: without them the write check
            // has no table to write to.
            let pending = self
                .pending_migrations()
                .await
                .map_err(|_| "database unavailable".to_owned())?;
            if !pending.is_empty() {
                return Err(format!("{} migration(s) pending", pending.len()));
            }
            self.inner.migrated.store(true, Ordering::Release);
            return self.inner.health.verdict();
        }
        self.inner.health.verdict()?;
        let mut conn = self
            .get()
            .await
            .map_err(|_| "database unavailable".to_owned())?;
        with_conn!(&mut conn, |c| diesel::sql_query("SELECT 1")
            .execute(c)
            .await)
        .map_err(|_| "database unavailable".to_owned())?;
        Ok(())
    }
}

/// One pool builder for both backends: connections are set up by `setup`, count their
/// queries, skip the per-checkout test query, and obey the configured size and timeouts.
fn pool<C, F>(
    url: &str,
    config: &DatabaseConfig,
    queries: &Arc<AtomicU64>,
    health: &Arc<WriteHealth>,
    setup: F,
) -> Result<Pool<C>, StorageError>
where
    C: diesel_async::pooled_connection::PoolableConnection + Send + 'static,
    F: for<'c> Fn(&'c mut C) -> futures_util::future::BoxFuture<'c, diesel::ConnectionResult<()>>
        + Send
        + Sync
        + 'static,
    AsyncDieselConnectionManager<C>: deadpool::managed::Manager<Type = C>,
{
    let counter = Arc::clone(queries);
    let health = Arc::clone(health);
    let setup = Arc::new(setup);
    let mut manager = ManagerConfig::<C>::default();
    // No test query on every checkout: broken connections are detected when used.
    manager.recycling_method = RecyclingMethod::Fast;
    manager.custom_setup = Box::new(move |url| {
        let url = url.to_owned();
        let counter = Arc::clone(&counter);
        let health = Arc::clone(&health);
        let setup = Arc::clone(&setup);
        async move {
            let mut conn = C::establish(&url).await?;
            setup(&mut conn).await?;
            conn.set_instrumentation(observe_queries(counter, health));
            Ok(conn)
        }
        .boxed()
    });
    Pool::builder(AsyncDieselConnectionManager::<C>::new_with_config(
        url, manager,
    ))
    .max_size(config.max_connections)
    // The connection used last is handed out next (deadpool's default is the one idle the
    // longest). A busy service then keeps reusing the few connections its concurrency
    // needs: on SQLite a connection whose last transaction came before another
    // connection's write drops its whole page cache and reads the pages again, and with
    // the pool rotating through all of them under steady writes, that was nearly every
    // checkout; the connections not needed hold no cache at all.
    .queue_mode(deadpool::managed::QueueMode::Lifo)
    .runtime(Runtime::Tokio1)
    .create_timeout(Some(config.connect_timeout))
    .wait_timeout(Some(config.acquire_timeout))
    .build()
    .map_err(|e| StorageError::Connect(e.to_string()))
}

/// Key of the PostgreSQL advisory lock held while migrating ("migrate" in ASCII).
const MIGRATION_LOCK: i64 = 0x006d_6967_7261_7465;

/// Counts started queries and notes queries that failed because the database cannot take
/// writes (for readiness).
fn observe_queries(
    counter: Arc<AtomicU64>,
    health: Arc<WriteHealth>,
) -> impl diesel::connection::Instrumentation {
    use diesel::connection::InstrumentationEvent;
    move |event: InstrumentationEvent<'_>| match event {
        InstrumentationEvent::StartQuery { .. } => {
            counter.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("db_queries_total").increment(1);
        }
        InstrumentationEvent::FinishQuery { error: Some(e), .. }
            if transience(e) == Some(Transience::Outage) =>
        {
            health.note_outage(outage_reason(e));
        }
        _ => {}
    }
}

/// `SET lock_timeout …; SET statement_timeout …` for a new PostgreSQL connection (0
/// disables either, as in PostgreSQL).
fn postgres_timeouts(config: &DatabaseConfig) -> String {
    format!(
        "SET lock_timeout = {}; SET statement_timeout = {};",
        config.lock_timeout.as_millis(),
        config.statement_timeout.as_millis()
    )
}

/// `file:PATH?mode=rw`: a SQLite URI (diesel opens with `SQLITE_OPEN_URI`) that opens an
/// existing database read-write and fails instead of creating a missing one. `%`, `?` and
/// `#` in the path are percent-encoded, as the URI syntax requires.
fn sqlite_uri_without_create(path: &std::path::Path) -> String {
    let mut uri = String::from("file:");
    for c in path.to_string_lossy().chars() {
        match c {
            '%' => uri.push_str("%25"),
            '?' => uri.push_str("%3f"),
            '#' => uri.push_str("%23"),
            c => uri.push(c),
        }
    }
    uri.push_str("?mode=rw");
    uri
}

/// The pragmas of every SQLite connection. `busy_timeout` comes first: `journal_mode` reads
/// the database header and fails at once with "database is locked" while another
/// connection holds the lock (a process that is closing checkpoints its WAL) unless the
/// connection already waits for locks.
///
/// Pages are read with `pread`, not memory-mapped (`mmap_size = 0`). In WAL mode a
/// connection whose read transaction finds that another connection wrote since its last
/// one drops its whole mapping (SQLite's pager resets and unmaps the file), so with a pool
/// of connections and steady writes every transaction paid an `munmap` and a fresh `mmap`
/// of the database file plus the page faults to touch it again, a cost that grows with
/// the file. Measured in `make bench` rows (one core): opaque `client_credentials` 26-27k
/// req/s mapped against 29-30k not, introspection the same either way, and about 5% less
/// CPU per browser login for authz and idp.
///
/// Commits checkpoint the write-ahead log only once it holds [`BACKSTOP_PAGES`]
/// (`wal_autocheckpoint`; SQLite's default is 1000): the [`Checkpointer`] thread keeps it
/// far shorter, so a commit no longer copies the log and waits for its flushes. A log
/// file grown past that size is truncated back to it when it is rewound
/// (`journal_size_limit`).
fn sqlite_pragmas(busy_timeout_ms: u128) -> String {
    let limit = u64::from(BACKSTOP_PAGES) * 4096;
    format!(
        "PRAGMA busy_timeout = {busy_timeout_ms}; PRAGMA journal_mode = WAL; \
         PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA mmap_size = 0; \
         PRAGMA wal_autocheckpoint = {BACKSTOP_PAGES}; PRAGMA journal_size_limit = {limit};"
    )
}

/// An owned handle on the embedded migrations (diesel's harness takes its source by value).
struct Embedded(&'static EmbeddedMigrations);

impl<DB: diesel::backend::Backend> MigrationSource<DB> for Embedded {
    fn migrations(
        &self,
    ) -> diesel::migration::Result<Vec<Box<dyn diesel::migration::Migration<DB>>>> {
        MigrationSource::<DB>::migrations(self.0)
    }
}

fn run_pending<C>(
    conn: &mut C,
    migrations: &'static EmbeddedMigrations,
) -> Result<Vec<String>, StorageError>
where
    C: MigrationHarness<C::Backend> + Connection,
{
    conn.run_pending_migrations(Embedded(migrations))
        .map(|versions| versions.iter().map(ToString::to_string).collect())
        .map_err(|e| StorageError::Migration(e.to_string()))
}
