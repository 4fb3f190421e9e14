//! Browser-session cookies are kept only as `domain::secret::digest_hex` of their secret,
//! the one digest format of every service: a session created by sign-in is found again
//! through the same function, on SQLite and PostgreSQL.

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

storage::backend_tests!(idp::MIGRATIONS;
    session_secrets_round_trip_through_the_hex_digest,
);
