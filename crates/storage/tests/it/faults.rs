//! Storage trouble as the services meet it: a locked SQLite file, PostgreSQL lock and
//! statement timeouts and a terminated connection are transient errors, and readiness
//! follows whether the database takes writes.

use std::time::{Duration, Instant};

use diesel::Connection;
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use storage::testing::TestDatabase;
use storage::{Database, DatabaseConfig, StorageError, with_conn};

use crate::{MIGRATIONS, insert, note};

/// The `storage_health` table every service creates in a migration (the test migrations
/// have none, so the existing migration-count tests stay as they are).
async fn with_health_table(db: &Database) {
    let mut conn = db.get().await.unwrap();
    with_conn!(&mut conn, |c| c
        .batch_execute(
            "CREATE TABLE storage_health (id INTEGER PRIMARY KEY NOT NULL, beats BIGINT NOT NULL)"
        )
        .await)
    .unwrap();
}

fn message(e: &StorageError) -> String {
    match e {
        StorageError::Query(diesel::result::Error::DatabaseError(_, info)) => {
            info.message().to_owned()
        }
        other => other.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_sqlite_file_is_transient_and_readiness_follows_writes() {
    let t = TestDatabase::sqlite(&MIGRATIONS).await.unwrap();
    let mut config: DatabaseConfig = t.config().clone();
    config.sqlite_busy_timeout = Duration::from_millis(100);
    let db = Database::connect(&config, &MIGRATIONS).await.unwrap();
    with_health_table(&db).await;
    db.check_writes().await.unwrap();
    db.check_ready().await.unwrap();

    let path = config
        .url
        .expose()
        .strip_prefix("sqlite://")
        .unwrap()
        .to_owned();
    let mut holder = diesel::SqliteConnection::establish(&path).unwrap();
    diesel::connection::SimpleConnection::batch_execute(&mut holder, "BEGIN EXCLUSIVE").unwrap();

    let started = Instant::now();
    let err = insert(&db, &note("late", 1)).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert_eq!(message(&err), "database is locked");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the busy timeout bounds the wait"
    );
    let err = db.check_writes().await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert_eq!(
        db.check_ready().await.unwrap_err(),
        "database writes failing: locked or timed out"
    );

    diesel::connection::SimpleConnection::batch_execute(&mut holder, "COMMIT").unwrap();
    db.check_writes().await.unwrap();
    db.check_ready().await.unwrap();
    insert(&db, &note("late", 1)).await.unwrap();
}

async fn setting(db: &Database, name: &str) -> String {
    #[derive(diesel::QueryableByName)]
    struct Setting {
        #[diesel(sql_type = diesel::sql_types::Text)]
        value: String,
    }
    let mut conn = db.get().await.unwrap();
    let row: Setting = with_conn!(&mut conn, |c| diesel_async::RunQueryDsl::get_result(
        diesel::sql_query(format!("SELECT current_setting('{name}') AS value")),
        c
    )
    .await)
    .unwrap();
    row.value
}

async fn postgres_timeouts(t: TestDatabase) {
    let mut config: DatabaseConfig = t.config().clone();
    config.lock_timeout = Duration::from_millis(200);
    config.statement_timeout = Duration::from_millis(700);
    let db = Database::connect(&config, &MIGRATIONS).await.unwrap();
    assert_eq!(setting(&db, "lock_timeout").await, "200ms");
    assert_eq!(setting(&db, "statement_timeout").await, "700ms");

    // A table lock held elsewhere: the write fails after lock_timeout, not after minutes.
    let mut holder = AsyncPgConnection::establish(config.url.expose())
        .await
        .unwrap();
    holder
        .batch_execute("BEGIN; LOCK TABLE notes IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let started = Instant::now();
    let err = insert(&db, &note("waits", 1)).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(message(&err), "canceling statement due to lock timeout");
    assert!(err.is_transient(), "{err}");
    holder.batch_execute("ROLLBACK").await.unwrap();
    insert(&db, &note("waits", 1)).await.unwrap();

    // A statement running past statement_timeout is cancelled, transiently.
    let mut conn = db.get().await.unwrap();
    let err: StorageError = with_conn!(&mut conn, |c| c.batch_execute("SELECT pg_sleep(3)").await)
        .unwrap_err()
        .into();
    assert_eq!(
        message(&err),
        "canceling statement due to statement timeout"
    );
    assert!(err.is_transient(), "{err}");
    drop(conn);

    // 0s disables both.
    config.lock_timeout = Duration::ZERO;
    config.statement_timeout = Duration::ZERO;
    let off = Database::connect(&config, &MIGRATIONS).await.unwrap();
    assert_eq!(setting(&off, "lock_timeout").await, "0");
    assert_eq!(setting(&off, "statement_timeout").await, "0");
}

async fn a_terminated_postgres_connection_is_transient_and_not_ready(t: TestDatabase) {
    let mut config: DatabaseConfig = t.config().clone();
    config.max_connections = 1;
    config.write_check_interval = Duration::from_millis(500);
    let db = Database::connect(&config, &MIGRATIONS).await.unwrap();
    with_health_table(&db).await;
    db.check_writes().await.unwrap();
    db.check_ready().await.unwrap();

    #[derive(diesel::QueryableByName)]
    struct Pid {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        pid: i32,
    }
    let mut conn = db.get().await.unwrap();
    let pid: Pid = with_conn!(&mut conn, |c| diesel_async::RunQueryDsl::get_result(
        diesel::sql_query("SELECT pg_backend_pid() AS pid"),
        c
    )
    .await)
    .unwrap();
    let mut admin = AsyncPgConnection::establish(config.url.expose())
        .await
        .unwrap();
    admin
        .batch_execute(&format!("SELECT pg_terminate_backend({})", pid.pid))
        .await
        .unwrap();
    // The next statement on the terminated connection fails, transiently.
    let deadline = Instant::now() + Duration::from_secs(5);
    let err: StorageError = loop {
        match with_conn!(&mut conn, |c| c.batch_execute("SELECT 1").await) {
            Err(e) => break e.into(),
            Ok(()) => {
                assert!(
                    Instant::now() < deadline,
                    "the connection was not terminated"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    assert!(err.is_transient(), "{err}");
    assert_eq!(
        db.check_ready().await.unwrap_err(),
        "database writes failing: connection lost"
    );
    drop(conn);
    // The broken connection is replaced; after the window readiness is back.
    let deadline = Instant::now() + Duration::from_secs(10);
    while db.check_writes().await.is_err() || db.check_ready().await.is_err() {
        assert!(Instant::now() < deadline, "readiness did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `NAME::postgres` for each listed PostgreSQL-only test (skipped, saying so, without
/// `TEST_POSTGRES_URL`).
macro_rules! postgres_only {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    match storage::testing::TestDatabase::postgres(&crate::MIGRATIONS)
                        .await
                        .expect("create PostgreSQL test database")
                    {
                        Some(db) => super::$name(db).await,
                        None => eprintln!("skipped: {} is not set", storage::testing::TEST_POSTGRES_URL),
                    }
                }
            }
        )*
    };
}

postgres_only!(
    postgres_timeouts,
    a_terminated_postgres_connection_is_transient_and_not_ready,
);
