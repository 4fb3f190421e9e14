//! Browser-session cookies are kept only as `domain::secret::digest_hex` of their secret,
//! the one digest format of every service: a session created by sign-in is found again
//! through the same function, on SQLite and PostgreSQL; sessions stored before the switch
//! (base64url digests) end with the migration.

use std::sync::Arc;

use idp::sessions::{NewSession, SessionConfig, Sessions};
use idp::users::{NewUser, Passwords, Profile, Users};
use storage::diesel;
use storage::diesel_async::RunQueryDsl;
use storage::testing::TestDatabase;
use storage::with_conn;

use crate::harness::cheap_passwords;

#[derive(diesel::QueryableByName)]
struct Stored {
    #[diesel(sql_type = diesel::sql_types::Text)]
    secret_hash: String,
}

async fn session_secrets_round_trip_through_the_hex_digest(db: TestDatabase) {
    let pool = db.connect(&idp::MIGRATIONS).await.unwrap();
    let users = Users::new(pool.clone(), Passwords::new(&cheap_passwords()).unwrap());
    let dora = users
        .create(
            NewUser {
                username: "dora".into(),
                profile: Profile::default(),
            },
            "dora-password".into(),
        )
        .await
        .unwrap();
    let sessions = Sessions::new(
        pool.clone(),
        Arc::new(idp::SystemClock),
        SessionConfig::default(),
    );
    let (session, cookie) = sessions
        .sign_in(
            None,
            NewSession {
                user_id: dora.id.clone(),
                amr: vec!["pwd".into()],
                acr: String::new(),
            },
        )
        .await
        .unwrap();

    let mut conn = pool.get().await.unwrap();
    let stored: Vec<Stored> = with_conn!(&mut conn, |c| diesel::sql_query(
        "SELECT secret_hash FROM sessions"
    )
    .load(c)
    .await)
    .unwrap();
    drop(conn);
    let stored: Vec<String> = stored.into_iter().map(|s| s.secret_hash).collect();
    assert_eq!(stored, [domain::secret::digest_hex(cookie.expose())]);
    assert!(
        !stored[0].contains(cookie.expose()),
        "never the secret itself"
    );

    assert_eq!(
        sessions.by_secret(cookie.expose()).await.unwrap(),
        Some(session.clone())
    );
    assert_eq!(sessions.by_secret(&stored[0]).await.unwrap(), None);
    assert_eq!(sessions.by_secret("wrong").await.unwrap(), None);
}

/// Sessions stored with base64url digests cannot be found any more; the migration ends
/// them (and nothing else).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_migration_to_hex_digests_ends_the_sessions_stored_before() {
    use diesel::Connection;
    use diesel::migration::MigrationSource;
    use diesel_migrations::MigrationHarness;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("idp.db");
    let mut conn = diesel::SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    let mut migrations =
        MigrationSource::<diesel::sqlite::Sqlite>::migrations(&idp::MIGRATIONS).unwrap();
    migrations.sort_by_key(|m| m.name().version().as_owned());
    // Everything before the hex-digest migration (later ones follow it in `migrate`).
    let at = migrations
        .iter()
        .position(|m| m.name().to_string().ends_with("_session_digests_hex"))
        .unwrap();
    let (before, from) = migrations.split_at(at);
    // Creates diesel's bookkeeping table.
    assert!(conn.applied_migrations().unwrap().is_empty());
    for m in before {
        conn.run_migration(m.as_ref()).unwrap();
    }
    diesel::connection::SimpleConnection::batch_execute(
        &mut conn,
        "INSERT INTO users (id, username, password_hash, created_at, updated_at) \
         VALUES ('u1', 'olga', 'x', 1, 1); \
         INSERT INTO sessions (id, secret_hash, user_id, auth_time, amr, acr, created_at, \
         last_seen_at, expires_at) VALUES ('s1', \
         'ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0', 'u1', 1, 'pwd', '', 1, 4102444800, 4102444800);",
    )
    .unwrap();
    drop(conn);

    let db = storage::Database::connect(
        &storage::DatabaseConfig::with_url(format!("sqlite://{}", path.display())),
        &idp::MIGRATIONS,
    )
    .await
    .unwrap();
    let applied = db.migrate().await.unwrap();
    assert_eq!(applied.len(), from.len(), "{applied:?}");
    let users = Users::new(db.clone(), Passwords::new(&cheap_passwords()).unwrap());
    assert!(users.get("olga").await.is_ok(), "users stay");
    let sessions = Sessions::new(db, Arc::new(idp::SystemClock), SessionConfig::default());
    assert_eq!(sessions.count_alive().await.unwrap(), 0);
    assert_eq!(sessions.by_id("s1").await.unwrap(), None);
}

storage::backend_tests!(idp::MIGRATIONS;
    session_secrets_round_trip_through_the_hex_digest,
);
