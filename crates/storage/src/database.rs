use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use deadpool::Runtime;
use diesel::migration::MigrationSource;
use diesel::{Connection, SqliteConnection};
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness};
use futures_util::FutureExt;

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
    pool: DbPool,
    url: DatabaseUrl,
    migrations: &'static EmbeddedMigrations,
    expected: BTreeSet<String>,
    migrated: AtomicBool,
}

#[derive(diesel::QueryableByName)]
struct AppliedVersion {
    #[diesel(sql_type = diesel::sql_types::Text)]
    version: String,
}

impl Database {
    /// Builds the pool and opens one connection to fail fast on a wrong URL or credentials.
    /// Nothing is migrated here: see [`Database::migrate`].
    pub async fn connect(
        config: &DatabaseConfig,
        migrations: &'static EmbeddedMigrations,
    ) -> Result<Self, StorageError> {
        let url = DatabaseUrl::parse(config.url.expose()).map_err(StorageError::Url)?;
        let pool = match &url {
            DatabaseUrl::Sqlite(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        StorageError::Connect(format!("cannot create {}: {e}", dir.display()))
                    })?;
                }
                let busy_ms = config.sqlite_busy_timeout.as_millis();
                let mut manager = ManagerConfig::<SqliteConn>::default();
                manager.custom_setup = Box::new(move |path| {
                    let path = path.to_owned();
                    async move {
                        let mut conn = SqliteConn::establish(&path).await?;
                        conn.batch_execute(&sqlite_pragmas(busy_ms))
                            .await
                            .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                        Ok(conn)
                    }
                    .boxed()
                });
                let manager = AsyncDieselConnectionManager::<SqliteConn>::new_with_config(
                    path.to_string_lossy(),
                    manager,
                );
                DbPool::Sqlite(
                    Pool::builder(manager)
                        .max_size(config.max_connections)
                        .runtime(Runtime::Tokio1)
                        .create_timeout(Some(config.connect_timeout))
                        .wait_timeout(Some(config.acquire_timeout))
                        .build()
                        .map_err(|e| StorageError::Connect(e.to_string()))?,
                )
            }
            DatabaseUrl::Postgres(raw) => {
                let manager = AsyncDieselConnectionManager::<PgConn>::new(raw.as_str());
                DbPool::Postgres(
                    Pool::builder(manager)
                        .max_size(config.max_connections)
                        .runtime(Runtime::Tokio1)
                        .create_timeout(Some(config.connect_timeout))
                        .wait_timeout(Some(config.acquire_timeout))
                        .build()
                        .map_err(|e| StorageError::Connect(e.to_string()))?,
                )
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

    /// Readiness: the database answers and no embedded migration is pending. Once all
    /// migrations were seen applied only the round trip is checked.
    pub async fn check_ready(&self) -> Result<(), String> {
        if AtomicBool::load(&self.inner.migrated, Ordering::Acquire) {
            let mut conn = self
                .get()
                .await
                .map_err(|_| "database unavailable".to_owned())?;
            with_conn!(&mut conn, |c| diesel::sql_query("SELECT 1")
                .execute(c)
                .await)
            .map_err(|_| "database unavailable".to_owned())?;
            return Ok(());
        }
        let pending = self
            .pending_migrations()
            .await
            .map_err(|_| "database unavailable".to_owned())?;
        if pending.is_empty() {
            self.inner.migrated.store(true, Ordering::Release);
            Ok(())
        } else {
            Err(format!("{} migration(s) pending", pending.len()))
        }
    }
}

/// Key of the PostgreSQL advisory lock held while migrating ("migrate" in ASCII).
const MIGRATION_LOCK: i64 = 0x006d_6967_7261_7465;

fn sqlite_pragmas(busy_timeout_ms: u128) -> String {
    format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
         PRAGMA busy_timeout = {busy_timeout_ms};"
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
