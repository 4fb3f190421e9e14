//! Per-test databases, for the integration tests of every service.
//!
//! - [`TestDatabase::sqlite`]: a fresh, migrated SQLite file in a temp directory, removed
//!   on drop.
//! - [`TestDatabase::postgres`]: when `TEST_POSTGRES_URL` names a PostgreSQL database whose
//!   role may create databases, a fresh database copied from a migrated template
//!   (`tmpl_<fingerprint of the migrations>`, built once and reused across test
//!   processes) and dropped (`WITH (FORCE)`) on drop. Without the variable it returns
//!   `Ok(None)` and the caller reports the test as skipped.
//!
//! Templates are keyed by the migrations' versions and names: never edit a migration that
//! has been applied anywhere; add a new one (or drop the `tmpl_*` databases by hand).

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU32, Ordering};

use diesel::migration::MigrationSource;
use diesel_async::{AsyncConnection, RunQueryDsl, SimpleAsyncConnection};
use diesel_migrations::EmbeddedMigrations;

use crate::{Database, DatabaseConfig, PgConn, StorageError};

/// The environment variable naming the PostgreSQL server used by tests.
pub const TEST_POSTGRES_URL: &str = "TEST_POSTGRES_URL";

/// A database owned by one test; deleted when dropped.
pub struct TestDatabase {
    config: DatabaseConfig,
    _dir: Option<tempfile::TempDir>,
    postgres: Option<PgDrop>,
}

struct PgDrop {
    admin_url: String,
    name: String,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl TestDatabase {
    /// A migrated SQLite database in its own temp directory.
    pub async fn sqlite(migrations: &'static EmbeddedMigrations) -> Result<Self, StorageError> {
        let dir = tempfile::tempdir().map_err(|e| StorageError::Connect(e.to_string()))?;
        let path = dir.path().join("test.db");
        let config = DatabaseConfig::with_url(format!("sqlite://{}", path.display()));
        Database::connect(&config, migrations)
            .await?
            .migrate()
            .await?;
        Ok(Self {
            config,
            _dir: Some(dir),
            postgres: None,
        })
    }

    /// A migrated PostgreSQL database of its own, or `None` when `TEST_POSTGRES_URL` is not
    /// set.
    pub async fn postgres(
        migrations: &'static EmbeddedMigrations,
    ) -> Result<Option<Self>, StorageError> {
        let Some(admin_url) = std::env::var(TEST_POSTGRES_URL)
            .ok()
            .filter(|v| !v.trim().is_empty())
        else {
            return Ok(None);
        };
        let template = format!("tmpl_{:016x}", fingerprint(migrations)?);
        let name = format!(
            "test_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0)
        );
        let mut admin = PgConn::establish(&admin_url)
            .await
            .map_err(|e| StorageError::Connect(e.to_string()))?;
        // One creator at a time across all test processes; the lock is per session.
        admin
            .batch_execute(&format!("SELECT pg_advisory_lock({TEMPLATE_LOCK})"))
            .await?;
        let created =
            create_from_template(&mut admin, &admin_url, &template, &name, migrations).await;
        admin
            .batch_execute(&format!("SELECT pg_advisory_unlock({TEMPLATE_LOCK})"))
            .await?;
        created?;
        Ok(Some(Self {
            config: DatabaseConfig::with_url(with_database(&admin_url, &name)?),
            _dir: None,
            postgres: Some(PgDrop { admin_url, name }),
        }))
    }

    /// The configuration that points a service (or [`Database::connect`]) at this database.
    pub fn config(&self) -> &DatabaseConfig {
        &self.config
    }

    /// A pool on this database.
    pub async fn connect(
        &self,
        migrations: &'static EmbeddedMigrations,
    ) -> Result<Database, StorageError> {
        Database::connect(&self.config, migrations).await
    }
}

/// Key of the advisory lock serialising template creation ("tmpl" in ASCII).
const TEMPLATE_LOCK: i64 = 0x746d_706c;

#[derive(diesel::QueryableByName)]
struct Exists {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    exists: bool,
}

async fn create_from_template(
    admin: &mut PgConn,
    admin_url: &str,
    template: &str,
    name: &str,
    migrations: &'static EmbeddedMigrations,
) -> Result<(), StorageError> {
    let found: Exists =
        diesel::sql_query("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS exists")
            .bind::<diesel::sql_types::Text, _>(template)
            .get_result(admin)
            .await?;
    if !found.exists {
        admin
            .batch_execute(&format!("CREATE DATABASE {template}"))
            .await?;
        let config = DatabaseConfig::with_url(with_database(admin_url, template)?);
        let db = Database::connect(&config, migrations).await?;
        let outcome = db.migrate().await;
        drop(db);
        if let Err(e) = outcome {
            let _ = admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS {template} WITH (FORCE)"))
                .await;
            return Err(e);
        }
        // Connections of the pool just dropped may linger for a moment; FORCE-free copy
        // needs none, so make sure they are gone.
        admin
            .batch_execute(&format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = '{template}' AND pid <> pg_backend_pid()"
            ))
            .await?;
    }
    admin
        .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {template}"))
        .await?;
    Ok(())
}

fn fingerprint(migrations: &'static EmbeddedMigrations) -> Result<u64, StorageError> {
    let list = MigrationSource::<diesel::pg::Pg>::migrations(migrations)
        .map_err(|e| StorageError::Migration(e.to_string()))?;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for m in &list {
        m.name().to_string().hash(&mut hasher);
    }
    Ok(hasher.finish())
}

fn with_database(admin_url: &str, name: &str) -> Result<String, StorageError> {
    let mut url = url::Url::parse(admin_url)
        .map_err(|e| StorageError::Url(format!("{TEST_POSTGRES_URL}: {e}")))?;
    url.set_path(&format!("/{name}"));
    Ok(url.into())
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some(pg) = self.postgres.take() else {
            return;
        };
        // Drop runs inside the test's runtime; do the async work on a thread of its own.
        let handle = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(mut admin) = PgConn::establish(&pg.admin_url).await {
                    let _ = admin
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", pg.name))
                        .await;
                }
            });
        });
        let _ = handle.join();
    }
}

/// Declares each listed `async fn NAME(db: TestDatabase)` as two tests, `NAME::sqlite` and
/// `NAME::postgres`, on a fresh database migrated with `$migrations` (an absolute path such
/// as `crate::MIGRATIONS`). Without `TEST_POSTGRES_URL` the PostgreSQL variant prints that
/// it was skipped (`make test` also filters those tests out and says so).
#[macro_export]
macro_rules! backend_tests {
    ($migrations:path; $($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let db = $crate::testing::TestDatabase::sqlite(&$migrations)
                        .await
                        .expect("create SQLite test database");
                    super::$name(db).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    match $crate::testing::TestDatabase::postgres(&$migrations)
                        .await
                        .expect("create PostgreSQL test database")
                    {
                        Some(db) => super::$name(db).await,
                        None => eprintln!(
                            "skipped: {} is not set",
                            $crate::testing::TEST_POSTGRES_URL
                        ),
                    }
                }
            }
        )*
    };
}
