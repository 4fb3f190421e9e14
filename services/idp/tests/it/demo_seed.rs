//! The demo data of `idp serve --demo` / `--reset-demo`: the seed through the library on
//! SQLite and PostgreSQL (the user it creates, that a second seed changes nothing, that a
//! reset ends the demo user's sessions), and the flags through the real binary (seed
//! lines, the warning, the refusal of a non-local public URL).

use std::process::Stdio;
use std::sync::Arc;

use idp::IdpError;
use idp::demo_seed::{self, Demo};
use idp::sessions::{NewSession, SessionConfig, Sessions};
use idp::users::{NewUser, Passwords, Profile, Users};
use storage::diesel;
use storage::diesel_async::RunQueryDsl;
use storage::testing::TestDatabase;
use storage::{Database, with_conn};

use crate::harness::cheap_passwords;

const CREATED: &str = "demo: created user demo / demo-password";
const DELETED: &str = "demo: deleted user demo with its sessions";
const NOTHING: &str = "demo: user demo exists; nothing seeded";

#[derive(diesel::QueryableByName)]
struct Stored {
    #[diesel(sql_type = diesel::sql_types::Text)]
    password_hash: String,
}

/// The stored password hash of the user `demo` (the service never hands it out).
async fn demo_password_hash(db: &Database) -> String {
    let mut conn = db.get().await.unwrap();
    let row: Stored = with_conn!(&mut conn, |c| diesel::sql_query(
        "SELECT password_hash FROM users WHERE username = 'demo'"
    )
    .get_result(c)
    .await)
    .unwrap();
    row.password_hash
}

async fn users(db: &TestDatabase) -> (Database, Users) {
    let pool = db.connect(&idp::MIGRATIONS).await.unwrap();
    let users = Users::new(pool.clone(), Passwords::new(&cheap_passwords()).unwrap());
    (pool, users)
}

async fn first_seed_creates_the_demo_user_and_a_second_changes_nothing(db: TestDatabase) {
    let (pool, users) = users(&db).await;
    assert_eq!(
        demo_seed::seed(&users, Demo::Seed).await.unwrap(),
        [CREATED]
    );

    let demo = users.get("demo").await.unwrap();
    assert_eq!(demo.username, "demo");
    assert_eq!(
        demo.profile,
        Profile {
            email: Some("demo@example.com".into()),
            email_verified: true,
            name: Some("Demo User".into()),
            ..Profile::default()
        }
    );
    assert!(!demo.disabled);
    // The documented password works, by username and by email; hashed with argon2id and
    // the configured parameters.
    let login = users
        .authenticate("demo", "demo-password".into())
        .await
        .unwrap();
    assert_eq!(login.map(|u| u.id), Some(demo.id.clone()));
    assert!(
        users
            .authenticate("demo@example.com", "demo-password".into())
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        users
            .authenticate("demo", "wrong-password".into())
            .await
            .unwrap()
            .is_none()
    );
    let hash = demo_password_hash(&pool).await;
    assert!(hash.starts_with("$argon2id$v=19$m=8192,t=1,p=1$"), "{hash}");

    // A second seed leaves the user exactly as it is, even one an operator changed.
    let changed = users
        .set_password("demo", "changed-by-the-operator".into())
        .await
        .unwrap();
    let hash = demo_password_hash(&pool).await;
    assert_eq!(
        demo_seed::seed(&users, Demo::Seed).await.unwrap(),
        [NOTHING]
    );
    assert_eq!(users.get("demo").await.unwrap(), changed);
    assert_eq!(demo_password_hash(&pool).await, hash);
    assert!(
        users
            .authenticate("demo", "demo-password".into())
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(users.list().await.unwrap().len(), 1);
    assert!(demo_seed::seed(&users, Demo::Off).await.unwrap().is_empty());
}

async fn reset_deletes_the_demo_user_with_its_sessions_and_creates_it_afresh(db: TestDatabase) {
    let (pool, users) = users(&db).await;
    demo_seed::seed(&users, Demo::Seed).await.unwrap();
    let old = users.get("demo").await.unwrap();
    let sessions = Sessions::new(
        pool.clone(),
        Arc::new(idp::SystemClock),
        SessionConfig::default(),
    );
    let session = |user_id: String| NewSession {
        user_id,
        amr: vec!["pwd".into()],
        acr: String::new(),
    };
    let (demo_session, demo_cookie) = sessions
        .sign_in(None, session(old.id.clone()))
        .await
        .unwrap();
    let alice = users
        .create(
            NewUser {
                username: "alice".into(),
                profile: Profile::default(),
            },
            "alice-password".into(),
        )
        .await
        .unwrap();
    let (alice_session, _) = sessions
        .sign_in(None, session(alice.id.clone()))
        .await
        .unwrap();
    users
        .set_password("demo", "changed-by-the-operator".into())
        .await
        .unwrap();

    assert_eq!(
        demo_seed::seed(&users, Demo::Reset).await.unwrap(),
        [DELETED, CREATED]
    );

    // Created afresh: a new id (`sub`), the documented password again.
    let new = users.get("demo").await.unwrap();
    assert_ne!(new.id, old.id);
    assert_eq!(new.profile, old.profile);
    assert!(users.by_id(&old.id).await.unwrap().is_none());
    assert!(
        users
            .authenticate("demo", "demo-password".into())
            .await
            .unwrap()
            .is_some()
    );
    // The old user's session is gone, by id and by cookie; other users keep theirs.
    assert!(sessions.by_id(&demo_session.id).await.unwrap().is_none());
    assert!(
        sessions
            .by_secret(demo_cookie.expose())
            .await
            .unwrap()
            .is_none()
    );
    assert!(sessions.by_id(&alice_session.id).await.unwrap().is_some());
    assert_eq!(users.get("alice").await.unwrap(), alice);
}

async fn an_email_taken_by_another_user_stops_the_seed_and_changes_nothing(db: TestDatabase) {
    let (_, users) = users(&db).await;
    let impostor = users
        .create(
            NewUser {
                username: "impostor".into(),
                profile: Profile {
                    email: Some("demo@example.com".into()),
                    ..Profile::default()
                },
            },
            "impostor-password".into(),
        )
        .await
        .unwrap();
    for demo in [Demo::Seed, Demo::Reset] {
        let err = demo_seed::seed(&users, demo).await.unwrap_err();
        assert!(matches!(err, IdpError::Conflict(_)), "{err}");
        assert_eq!(err.to_string(), "username or email already in use");
        assert_eq!(users.list().await.unwrap(), std::slice::from_ref(&impostor));
    }
}

storage::backend_tests!(idp::MIGRATIONS;
    first_seed_creates_the_demo_user_and_a_second_changes_nothing,
    reset_deletes_the_demo_user_with_its_sessions_and_creates_it_afresh,
    an_email_taken_by_another_user_stops_the_seed_and_changes_nothing,
);

/// `idp serve` of the real binary in `dir` (SQLite under it, every port 0, cheap argon2),
/// with `args` and `env`.
fn serve(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_idp"));
    cmd.current_dir(dir)
        .arg("serve")
        .args(args)
        .env(
            "IDP__DATABASE__URL",
            format!("sqlite://{}/idp.db", dir.display()),
        )
        .env("IDP__HTTP__PORT", "0")
        .env("IDP__GRPC__PORT", "0")
        .env("IDP__ADMIN__PORT", "0")
        .env("IDP__PASSWORDS__MEMORY_KIB", "8192")
        .env("IDP__PASSWORDS__ITERATIONS", "1")
        .env("IDP__TELEMETRY__LOG_FORMAT", "json")
        .env("IDP__SHUTDOWN__GRACE_PERIOD", "1s")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs `idp serve ARGS` until it is ready (seeding is over), then stops it with SIGTERM;
/// returns its stdout lines and stderr.
async fn serve_until_ready(dir: &std::path::Path, args: &[&str]) -> (Vec<String>, String) {
    runtime::testing::serve_until_ready("idp", serve(dir, args, &[]))
        .await
        .unwrap()
}

fn demo_lines(out: &[String]) -> Vec<&str> {
    out.iter()
        .map(String::as_str)
        .filter(|l| l.starts_with("demo: "))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_demo_seeds_before_serving_once_and_reset_demo_again() {
    let dir = tempfile::tempdir().unwrap();
    let warning = "demo data: public demo credentials are seeded; never use --demo in production";

    let (out, stderr) = serve_until_ready(dir.path(), &["--demo"]).await;
    assert_eq!(demo_lines(&out), [CREATED], "{out:?}");
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains(warning)).collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(warnings[0].contains("\"level\":\"WARN\""), "{stderr}");

    let (out, _) = serve_until_ready(dir.path(), &["--demo"]).await;
    assert_eq!(demo_lines(&out), [NOTHING], "{out:?}");

    let (out, _) = serve_until_ready(dir.path(), &["--reset-demo"]).await;
    assert_eq!(demo_lines(&out), [DELETED, CREATED], "{out:?}");

    // Without the flag: no demo lines, no warning.
    let (out, stderr) = serve_until_ready(dir.path(), &[]).await;
    assert!(demo_lines(&out).is_empty(), "{out:?}");
    assert!(!stderr.contains(warning), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_flags_refuse_a_public_url_others_can_reach() {
    for flag in ["--demo", "--reset-demo"] {
        for url in ["https://login.example.com/", "http://192.168.1.5:8081/"] {
            let dir = tempfile::tempdir().unwrap();
            let child = serve(dir.path(), &[flag], &[("IDP__PUBLIC_URL", url)])
                .spawn()
                .unwrap();
            let out = child.wait_with_output().await.unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{flag} {url}: {stderr}");
            assert_eq!(
                stderr,
                format!(
                    "error: --demo and --reset-demo seed publicly known credentials, so they \
                     need public_url on localhost or a loopback IP (http or https); \
                     public_url is \"{url}\"\n"
                )
            );
            assert!(out.stdout.is_empty(), "nothing started");
            assert!(
                !dir.path().join("idp.db").exists(),
                "the database was touched"
            );
        }
    }
}
