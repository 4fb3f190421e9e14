//! Storage integration tests, each run on SQLite and (with `TEST_POSTGRES_URL`) PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use storage::testing::TestDatabase;
use storage::{Backend, Database, DatabaseConfig, OpenMode, StorageError, with_conn};

mod faults;

static MIGRATIONS: storage::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("tests/migrations");

#[allow(missing_docs)]
mod schema {
    diesel::table! {
        notes (id) {
            id -> Text,
            body -> Text,
            created_at -> BigInt,
            pinned -> Bool,
        }
    }
}
use schema::notes;

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = notes)]
struct Note {
    id: String,
    body: String,
    created_at: i64,
    pinned: bool,
}

fn note(id: &str, at: i64) -> Note {
    Note {
        id: id.into(),
        body: format!("body of {id}"),
        created_at: at,
        pinned: false,
    }
}

/// The repository shape every service uses: one function, both backends.
async fn insert(db: &Database, n: &Note) -> Result<(), StorageError> {
    let mut conn = db.get().await?;
    with_conn!(&mut conn, |c| diesel::insert_into(notes::table)
        .values(n)
        .execute(c)
        .await)?;
    Ok(())
}

async fn list(db: &Database) -> Result<Vec<Note>, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| notes::table
        .order(notes::created_at.asc())
        .select(Note::as_select())
        .load(c)
        .await)?)
}

async fn round_trip(t: TestDatabase) {
    let db = t.connect(&MIGRATIONS).await.unwrap();
    assert!(db.pending_migrations().await.unwrap().is_empty());
    db.check_ready().await.unwrap();
    insert(&db, &note("b", 2)).await.unwrap();
    insert(&db, &note("a", 1)).await.unwrap();
    let all = list(&db).await.unwrap();
    assert_eq!(all, vec![note("a", 1), note("b", 2)]);

    let mut conn = db.get().await.unwrap();
    let pinned = with_conn!(&mut conn, |c| diesel::update(notes::table.find("a"))
        .set(notes::pinned.eq(true))
        .execute(c)
        .await)
    .unwrap();
    assert_eq!(pinned, 1);
    let found: Note = with_conn!(&mut conn, |c| notes::table
        .find("a")
        .select(Note::as_select())
        .first(c)
        .await)
    .unwrap();
    assert!(found.pinned);
    let missing = with_conn!(&mut conn, |c| notes::table
        .find("zzz")
        .select(Note::as_select())
        .first(c)
        .await)
    .map_err(StorageError::from)
    .unwrap_err();
    assert!(missing.is_not_found());
}

async fn duplicate_key_is_reported(t: TestDatabase) {
    let db = t.connect(&MIGRATIONS).await.unwrap();
    insert(&db, &note("a", 1)).await.unwrap();
    let err = insert(&db, &note("a", 2)).await.unwrap_err();
    assert!(err.is_unique_violation(), "{err}");
    assert_eq!(list(&db).await.unwrap(), vec![note("a", 1)]);
}

async fn failed_transaction_leaves_nothing(t: TestDatabase) {
    let db = t.connect(&MIGRATIONS).await.unwrap();
    insert(&db, &note("x", 1)).await.unwrap();
    let mut conn = db.get().await.unwrap();
    let result: Result<(), diesel::result::Error> = with_conn!(&mut conn, |c| c
        .transaction(async |tx| {
            diesel::insert_into(notes::table)
                .values(&note("y", 2))
                .execute(tx)
                .await?;
            // Second insert collides: the whole transaction must roll back.
            diesel::insert_into(notes::table)
                .values(&note("x", 3))
                .execute(tx)
                .await?;
            Ok(())
        })
        .await);
    assert!(result.is_err());
    drop(conn);
    assert_eq!(list(&db).await.unwrap(), vec![note("x", 1)]);
}

async fn pool_exhaustion_is_unavailable(t: TestDatabase) {
    let mut config: DatabaseConfig = t.config().clone();
    config.max_connections = 1;
    config.acquire_timeout = std::time::Duration::from_millis(200);
    let db = Database::connect(&config, &MIGRATIONS).await.unwrap();
    let held = db.get().await.unwrap();
    let err = db.get().await.err().unwrap();
    assert!(matches!(err, StorageError::Unavailable(_)), "{err}");
    assert_eq!(db.pool_status(), (1, 0));
    drop(held);
    db.get().await.unwrap();
}

async fn backend_matches_url(t: TestDatabase) {
    let db = t.connect(&MIGRATIONS).await.unwrap();
    let expected = if t.config().url.expose().starts_with("sqlite://") {
        Backend::Sqlite
    } else {
        Backend::Postgres
    };
    assert_eq!(db.backend(), expected);
}

storage::backend_tests!(
    crate::MIGRATIONS;
    round_trip,
    duplicate_key_is_reported,
    failed_transaction_leaves_nothing,
    pool_exhaustion_is_unavailable,
    backend_matches_url,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_database_reports_pending_migrations_until_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let config =
        DatabaseConfig::with_url(format!("sqlite://{}/sub/fresh.db", dir.path().display()));
    let db = Database::connect(&config, &MIGRATIONS).await.unwrap();
    assert_eq!(db.pending_migrations().await.unwrap().len(), 1);
    assert_eq!(
        db.check_ready().await.unwrap_err(),
        "1 migration(s) pending"
    );
    let applied = db.migrate().await.unwrap();
    assert_eq!(applied.len(), 1);
    assert!(
        db.migrate().await.unwrap().is_empty(),
        "second run applies nothing"
    );
    db.check_ready().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn must_exist_refuses_a_missing_sqlite_file_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // Odd characters must not let the URI form of the path create something elsewhere.
    for name in ["sub/missing.db", "missing?mode=rwc.db", "100%.db", "a#b.db"] {
        let path = dir.path().join(name);
        let config = DatabaseConfig::with_url(format!("sqlite://{}", path.display()));
        let err = Database::require_existing(&config).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("database sqlite://{} does not exist", path.display())
        );
        let err = Database::open(&config, &MIGRATIONS, OpenMode::MustExist)
            .await
            .err()
            .unwrap();
        assert!(matches!(err, StorageError::Missing { .. }), "{err}");
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

    for name in ["existing.db", "odd?mode=rwc%#.db"] {
        let path = dir.path().join(name);
        let config = DatabaseConfig::with_url(format!("sqlite://{}", path.display()));
        Database::connect(&config, &MIGRATIONS)
            .await
            .unwrap()
            .migrate()
            .await
            .unwrap();
        Database::require_existing(&config).unwrap();
        let db = Database::open(&config, &MIGRATIONS, OpenMode::MustExist)
            .await
            .unwrap();
        insert(&db, &note("kept", 1)).await.unwrap();
        assert_eq!(list(&db).await.unwrap().len(), 1);
    }
}

/// SQLite pages are read, never memory-mapped: in WAL mode a mapping is dropped and made
/// again by every connection after every write elsewhere (see `sqlite_pragmas`). After
/// writes and reads over several pooled connections, the database file is not in this
/// process's memory map (its `-shm` index always is: that is SQLite's WAL index).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_database_files_are_not_memory_mapped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("unmapped.db");
    let mut config = DatabaseConfig::with_url(format!("sqlite://{}", path.display()));
    config.max_connections = 4;
    let db = Database::connect(&config, &MIGRATIONS).await.unwrap();
    db.migrate().await.unwrap();
    for n in 0..32 {
        insert(&db, &note(&format!("n{n}"), n)).await.unwrap();
        list(&db).await.unwrap();
    }
    // Pages in the write-ahead log are read from it; moved into the database file, they
    // are read from there (and would be mapped with a non-zero mmap_size).
    let mut conn = db.get().await.unwrap();
    with_conn!(&mut conn, |c| diesel::sql_query(
        "PRAGMA wal_checkpoint(TRUNCATE)"
    )
    .execute(c)
    .await)
    .unwrap();
    drop(conn);
    let readers = (0..8).map(|_| list(&db));
    for listed in futures_util::future::join_all(readers).await {
        assert_eq!(listed.unwrap().len(), 32);
    }
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let file = path.display().to_string();
    assert!(
        maps.lines().any(|l| l.ends_with(&format!("{file}-shm"))),
        "the WAL index is mapped, so the check looks at the right process:\n{maps}"
    );
    assert!(
        !maps.lines().any(|l| l.ends_with(&file)),
        "the database file is mapped:\n{maps}"
    );
}

/// Commits checkpoint the write-ahead log only as a backstop; the storage's own thread
/// does, and keeps the log from growing while writes go on: under a stream of commits a
/// millisecond apart, 6000 pages in all (six times SQLite's 1000-page threshold), the log
/// file stays much smaller than what was written, and the pages reach the database file.
/// When the database is dropped, the thread is stopped first, so the pool's last
/// connection checkpoints and removes the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_checkpoints_run_off_the_commit_path_and_bound_the_log() {
    const PAGE: u64 = 4096;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("checkpointed.db");
    let mut config = DatabaseConfig::with_url(format!("sqlite://{}", path.display()));
    config.sqlite_checkpoint_interval = std::time::Duration::from_millis(10);
    let db = Database::connect(&config, &MIGRATIONS).await.unwrap();
    db.migrate().await.unwrap();
    let mut conn = db.get().await.unwrap();
    let storage::DbConn::Sqlite(c) = &mut conn else {
        unreachable!()
    };
    let auto: Vec<Setting> = diesel::sql_query("PRAGMA wal_autocheckpoint")
        .load(&mut **c)
        .await
        .unwrap();
    assert_eq!(
        auto[0].wal_autocheckpoint, 65_536,
        "commits checkpoint only as a backstop"
    );
    diesel_async::SimpleAsyncConnection::batch_execute(
        &mut **c,
        "CREATE TABLE filler (b BLOB NOT NULL)",
    )
    .await
    .unwrap();
    let wal = dir.path().join("checkpointed.db-wal");
    let (mut written, mut largest_wal, mut commits) = (0u64, 0u64, 0u32);
    let started = std::time::Instant::now();
    while written < 6000 * PAGE && started.elapsed() < std::time::Duration::from_secs(30) {
        // 16 rows of 3000 bytes: about 16 pages per commit.
        diesel_async::SimpleAsyncConnection::batch_execute(
            &mut **c,
            "INSERT INTO filler SELECT randomblob(3000) FROM \
             (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 16) \
              SELECT i FROM n)",
        )
        .await
        .unwrap();
        written += 16 * PAGE;
        commits += 1;
        largest_wal = largest_wal.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
        // A server's writer pauses between its batches; the checkpoint takes the write
        // lock in such a pause to rewind the log.
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    drop(conn);
    assert!(
        written >= 6000 * PAGE,
        "only {commits} commits, {written} bytes"
    );
    assert!(
        largest_wal < written / 2,
        "the log grew to {largest_wal} bytes of {written} written in {commits} commits"
    );
    let file = std::fs::metadata(&path).unwrap().len();
    assert!(
        file > written / 4,
        "the database file holds {file} bytes of {written} written: nothing was copied"
    );
    drop(db);
    assert!(!wal.exists(), "the log is removed when the database closes");
}

#[derive(diesel::QueryableByName)]
struct Setting {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    wal_autocheckpoint: i32,
}

/// The pool hands out the connection returned last (not the one idle the longest), so a
/// lightly loaded service keeps using one connection whose SQLite page cache is current.
#[tokio::test]
async fn the_pool_hands_out_the_connection_returned_last() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lifo.db");
    let db = Database::connect(
        &DatabaseConfig::with_url(format!("sqlite://{}", path.display())),
        &MIGRATIONS,
    )
    .await
    .unwrap();
    // Three connections at once, each marked with a temporary table of its own.
    let mut held = Vec::new();
    for n in 0..3 {
        let mut conn = db.get().await.unwrap();
        with_conn!(&mut conn, |c| diesel::sql_query(format!(
            "CREATE TEMP TABLE mark_{n} (x INTEGER)"
        ))
        .execute(c)
        .await)
        .unwrap();
        held.push(conn);
    }
    // Returned in the order 0, 1, 2: the next checkout is connection 2, again and again.
    drop(held);
    for _ in 0..3 {
        let mut conn = db.get().await.unwrap();
        let marks: Vec<Mark> = with_conn!(&mut conn, |c| diesel::sql_query(
            "SELECT name FROM sqlite_temp_master WHERE type = 'table'"
        )
        .load(c)
        .await)
        .unwrap();
        assert_eq!(
            marks.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
            ["mark_2"]
        );
    }
}

#[derive(diesel::QueryableByName)]
struct Mark {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
}

#[tokio::test]
async fn unreachable_postgres_fails_fast_without_leaking_the_password() {
    let mut config = DatabaseConfig::with_url("postgres://user:hunter2@127.0.0.1:1/db");
    config.connect_timeout = std::time::Duration::from_secs(2);
    let err = Database::connect(&config, &MIGRATIONS).await.err().unwrap();
    assert!(matches!(err, StorageError::Connect(_)), "{err}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

async fn queries_are_counted(t: TestDatabase) {
    let db = t.connect(&MIGRATIONS).await.unwrap();
    let before = db.queries_started();
    list(&db).await.unwrap();
    list(&db).await.unwrap();
    assert_eq!(db.queries_started(), before + 2);
}

/// diesel prepares every UPDATE and every SQLite `IN (…)` afresh; wrapped in
/// `KeepPrepared` they enter the connection's statement cache once (one cache entry per
/// SQL text) and are reused, with the same results as unwrapped.
async fn kept_prepared_statements_are_prepared_once(t: TestDatabase) {
    use diesel::connection::InstrumentationEvent;
    use std::sync::{Arc, Mutex};
    use storage::KeepPrepared;

    let db = t.connect(&MIGRATIONS).await.unwrap();
    for (n, id) in ["a", "b", "c"].into_iter().enumerate() {
        insert(&db, &note(id, i64::try_from(n).unwrap()))
            .await
            .unwrap();
    }
    let cached = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = Arc::clone(&cached);
    let mut conn = db.get().await.unwrap();
    with_conn!(&mut conn, |c| c.set_instrumentation(
        move |event: InstrumentationEvent<'_>| {
            if let InstrumentationEvent::CacheQuery { sql, .. } = event {
                seen.lock().unwrap().push(sql.to_owned());
            }
        }
    ));
    let ids = ["a".to_owned(), "b".to_owned()];
    for round in 0..3 {
        let pin = round % 2 == 0;
        let (plain, kept, within): (usize, usize, Vec<String>) = with_conn!(&mut conn, |c| async {
            let plain = diesel::update(notes::table.find("c"))
                .set(notes::pinned.eq(pin))
                .execute(c)
                .await?;
            let kept = KeepPrepared(
                diesel::update(notes::table.filter(notes::id.eq_any(&ids)))
                    .set(notes::pinned.eq(pin)),
            )
            .execute(c)
            .await?;
            let within = KeepPrepared(
                notes::table
                    .filter(notes::id.eq_any(&ids))
                    .filter(notes::pinned.eq(pin))
                    .select(notes::id)
                    .order(notes::id),
            )
            .load(c)
            .await?;
            Ok::<_, diesel::result::Error>((plain, kept, within))
        }
        .await)
        .unwrap();
        assert_eq!((plain, kept), (1, 2), "round {round}");
        assert_eq!(within, ids, "round {round}");
    }
    let cached = cached.lock().unwrap().clone();
    let updates: Vec<_> = cached.iter().filter(|s| s.starts_with("UPDATE")).collect();
    assert_eq!(
        updates.len(),
        1,
        "only the kept UPDATE is cached, once: {cached:?}"
    );
    assert!(
        updates[0].contains("IN") || updates[0].contains("ANY"),
        "{cached:?}"
    );
    let selects = cached.iter().filter(|s| s.starts_with("SELECT")).count();
    assert_eq!(selects, 1, "the kept SELECT is cached once: {cached:?}");
}

storage::backend_tests!(crate::MIGRATIONS; queries_are_counted, kept_prepared_statements_are_prepared_once);
