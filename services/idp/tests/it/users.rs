//! `idp users …` through the real binary, and password checks through the service, on
//! SQLite and PostgreSQL.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use idp::users::{NewUser, PasswordConfig, Passwords, Profile, Users};
use storage::testing::TestDatabase;

use crate::fake_authz::{self, Call, FakeAuthz};

const CHEAP: [(&str, &str); 2] = [
    ("IDP__PASSWORDS__MEMORY_KIB", "8192"),
    ("IDP__PASSWORDS__ITERATIONS", "1"),
];

fn idp(dir: &std::path::Path, args: &[&str], stdin: Option<&str>) -> Output {
    idp_env(dir, args, stdin, &[])
}

pub(crate) fn idp_env(
    dir: &std::path::Path,
    args: &[&str],
    stdin: Option<&str>,
    env: &[(&str, String)],
) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_idp"))
        .current_dir(dir)
        .args(args)
        .env(
            "IDP__DATABASE__URL",
            format!("sqlite://{}/idp.db", dir.display()),
        )
        .envs(CHEAP)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

pub(crate) fn ok_json(out: &Output) -> serde_json::Value {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The environment that points `idp users` at `authz` (a [`FakeAuthz`]'s address).
pub(crate) fn authz_env(
    d: &std::path::Path,
    authz: std::net::SocketAddr,
) -> Vec<(&'static str, String)> {
    let secret = d.join("authz.secret");
    std::fs::write(&secret, fake_authz::CLIENT_SECRET).unwrap();
    vec![
        ("IDP__AUTHZ__GRPC_URL", format!("http://{authz}")),
        ("IDP__AUTHZ__CLIENT_ID", fake_authz::CLIENT_ID.to_owned()),
        (
            "IDP__AUTHZ__CLIENT_SECRET_FILE",
            secret.to_str().unwrap().to_owned(),
        ),
        ("IDP__AUTHZ__TIMEOUT", "2s".to_owned()),
    ]
}

// Multi-threaded: the fake authz answers while the test waits for the binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_cli() {
    let (_fake, authz) = FakeAuthz::start().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let env = authz_env(d, authz);
    let pw = d.join("pw");
    std::fs::write(&pw, "demo-password\n").unwrap();
    // Only migrate (or serve) creates the database.
    assert_eq!(idp(d, &["migrate"], None).status.code(), Some(0));
    let created = ok_json(&idp(
        d,
        &[
            "users",
            "create",
            "--username",
            "Demo",
            "--email",
            "Demo@Example.com",
            "--email-verified",
            "--name",
            "Demo User",
            "--password-file",
            pw.to_str().unwrap(),
            "--json",
        ],
        None,
    ));
    assert_eq!(created["username"], "demo");
    assert_eq!(created["email"], "demo@example.com");
    assert_eq!(created["email_verified"], true);
    assert!(!created.to_string().contains("demo-password"));
    assert!(!created.to_string().contains("argon2"), "no hash in output");

    // Password from standard input.
    let second = ok_json(&idp(
        d,
        &["users", "create", "--username", "second", "--json"],
        Some("another-password\n"),
    ));
    assert_eq!(second["username"], "second");
    // Taken username or email, too-short password, bad email: exit 1, one line.
    for (args, stdin) in [
        (
            vec!["users", "create", "--username", "DEMO"],
            "long-enough-pw\n",
        ),
        (
            vec![
                "users",
                "create",
                "--username",
                "x",
                "--email",
                "demo@example.com",
            ],
            "long-enough-pw\n",
        ),
        (vec!["users", "create", "--username", "y"], "short\n"),
        (
            vec!["users", "create", "--username", "z", "--email", "nope"],
            "long-enough-pw\n",
        ),
    ] {
        let out = idp(d, &args, Some(stdin));
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .filter(|l| l.starts_with("error:"))
                .count(),
            1
        );
    }

    let listed = ok_json(&idp(d, &["users", "list", "--json"], None));
    assert_eq!(listed.as_array().unwrap().len(), 2);
    let shown = ok_json(&idp(
        d,
        &["users", "show", "DEMO@example.com", "--json"],
        None,
    ));
    assert_eq!(shown["id"], created["id"]);

    assert_eq!(
        idp_env(d, &["users", "disable", "demo"], None, &env)
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        ok_json(&idp(d, &["users", "show", "demo", "--json"], None))["disabled"],
        true
    );
    assert_eq!(
        idp(d, &["users", "enable", "demo"], None).status.code(),
        Some(0)
    );
    assert_eq!(
        ok_json(&idp(d, &["users", "show", "demo", "--json"], None))["disabled"],
        false
    );
    assert_eq!(
        idp(
            d,
            &["users", "set-password", "demo"],
            Some("a-new-password\n")
        )
        .status
        .code(),
        Some(0)
    );
    assert_eq!(
        idp_env(d, &["users", "delete", "second"], None, &env)
            .status
            .code(),
        Some(0)
    );
    let gone = idp(d, &["users", "show", "second"], None);
    assert_eq!(gone.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&gone.stderr).contains("no user second"));
}

/// `users disable` and `users delete` have authz revoke the user's grants
/// (`LoginFlow.RevokeSubject` with the user's id); a second `disable` retries; with authz
/// unreachable the local change is kept and the command fails with one line saying the
/// grants are not revoked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disable_and_delete_revoke_at_authz() {
    let (fake, authz) = FakeAuthz::start().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let env = authz_env(d, authz);
    let revoked = |fake: &FakeAuthz| -> Vec<String> {
        fake.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::RevokeSubject(r) => Some(r.subject),
                _ => None,
            })
            .collect()
    };
    // Only migrate (or serve) creates the database.
    assert_eq!(idp(d, &["migrate"], None).status.code(), Some(0));
    let eve = ok_json(&idp(
        d,
        &["users", "create", "--username", "eve", "--json"],
        Some("eve-password\n"),
    ));
    let eve_id = eve["id"].as_str().unwrap().to_owned();

    let out = idp_env(d, &["users", "disable", "eve"], None, &env);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("authz revoked 2 grant(s) and ended 1 session(s) of eve"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(revoked(&fake), vec![eve_id.clone()]);
    // Disabling a disabled user asks authz again (the retry after a failure).
    assert_eq!(
        idp_env(d, &["users", "disable", "eve"], None, &env)
            .status
            .code(),
        Some(0)
    );
    assert_eq!(revoked(&fake), [eve_id.clone(), eve_id.clone()]);

    // authz unreachable: enabled → disabled still happens, the command says the grants are
    // not revoked, in one line, and exits 1.
    assert_eq!(
        idp(d, &["users", "enable", "eve"], None).status.code(),
        Some(0)
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_addr = closed.local_addr().unwrap();
    drop(closed);
    let down = authz_env(d, closed_addr);
    let out = idp_env(d, &["users", "disable", "eve"], None, &down);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains("authz unavailable"), "{stderr}");
    assert!(
        errors[0].contains("NOT revoked")
            && errors[0].contains("run `idp users disable eve` again"),
        "{stderr}"
    );
    assert_eq!(
        ok_json(&idp(d, &["users", "show", "eve", "--json"], None))["disabled"],
        true
    );
    assert_eq!(revoked(&fake).len(), 2, "nothing reached the fake");

    // Wrong credentials at authz are a failure too, not a silent success.
    let mut refused = env.clone();
    std::fs::write(d.join("wrong.secret"), "not-the-secret").unwrap();
    refused.retain(|(k, _)| *k != "IDP__AUTHZ__CLIENT_SECRET_FILE");
    refused.push((
        "IDP__AUTHZ__CLIENT_SECRET_FILE",
        d.join("wrong.secret").to_str().unwrap().to_owned(),
    ));
    assert_eq!(
        idp_env(d, &["users", "disable", "eve"], None, &refused)
            .status
            .code(),
        Some(1)
    );

    // Deleting revokes too.
    assert_eq!(
        idp_env(d, &["users", "delete", "eve"], None, &env)
            .status
            .code(),
        Some(0)
    );
    assert_eq!(revoked(&fake), [eve_id.clone(), eve_id.clone(), eve_id]);
}

fn cheap(memory_kib: u32) -> Passwords {
    Passwords::new(&PasswordConfig {
        memory_kib,
        iterations: 1,
        ..PasswordConfig::default()
    })
    .unwrap()
}

async fn logins(db: TestDatabase) {
    let pool = db.connect(&idp::MIGRATIONS).await.unwrap();
    let users = Users::new(pool.clone(), cheap(8192));
    let new = NewUser {
        username: "alice".into(),
        profile: Profile {
            email: Some("alice@example.com".into()),
            ..Profile::default()
        },
    };
    let alice = users.create(new, "alice-password".into()).await.unwrap();
    assert_eq!(
        users
            .authenticate("alice", "alice-password".into())
            .await
            .unwrap()
            .unwrap()
            .id,
        alice.id
    );
    assert_eq!(
        users
            .authenticate("ALICE@example.com", "alice-password".into())
            .await
            .unwrap()
            .unwrap()
            .id,
        alice.id
    );
    assert!(
        users
            .authenticate("alice", "wrong-password".into())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        users
            .authenticate("nobody", "alice-password".into())
            .await
            .unwrap()
            .is_none()
    );
    users.set_disabled("alice", true).await.unwrap();
    assert!(
        users
            .authenticate("alice", "alice-password".into())
            .await
            .unwrap()
            .is_none(),
        "disabled"
    );
    users.set_disabled("alice", false).await.unwrap();

    // Stronger parameters configured: the next login rehashes transparently.
    let stronger = Users::new(pool.clone(), cheap(16_384));
    assert!(
        stronger
            .authenticate("alice", "alice-password".into())
            .await
            .unwrap()
            .is_some()
    );
    let mut conn = pool.get().await.unwrap();
    use storage::diesel_async::RunQueryDsl;
    let hash: String = storage::with_conn!(&mut conn, |c| diesel::sql_query(
        "SELECT password_hash FROM users"
    )
    .load::<Hash>(c)
    .await)
    .unwrap()
    .remove(0)
    .password_hash;
    assert!(hash.contains("m=16384"), "{hash}");
    assert!(
        users
            .authenticate("alice", "alice-password".into())
            .await
            .unwrap()
            .is_some(),
        "still valid"
    );
}

#[derive(diesel::QueryableByName)]
struct Hash {
    #[diesel(sql_type = diesel::sql_types::Text)]
    password_hash: String,
}

storage::backend_tests!(idp::MIGRATIONS; logins);

/// logout: `users sign-out` ends the user's idp sessions and tells authz about each
/// (`LoginFlow.SessionEnded`, so authz sends back-channel logout tokens); `set-password`
/// does the same only with `sessions.end_on_password_change`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_out_and_password_change_tell_authz_which_sessions_ended() {
    let (fake, authz) = FakeAuthz::start().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let env = authz_env(d, authz);
    let ended = |fake: &FakeAuthz| -> Vec<String> {
        let mut ids: Vec<String> = fake
            .calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::SessionEnded(r) => Some(r.session_id),
                _ => None,
            })
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(idp(d, &["migrate"], None).status.code(), Some(0));
    let eve = ok_json(&idp(
        d,
        &["users", "create", "--username", "eve", "--json"],
        Some("eve-password\n"),
    ));
    let eve_id = eve["id"].as_str().unwrap().to_owned();
    let pool = storage::Database::connect(
        &storage::DatabaseConfig::with_url(format!("sqlite://{}/idp.db", d.display())),
        &idp::MIGRATIONS,
    )
    .await
    .unwrap();
    let sessions = idp::sessions::Sessions::new(
        pool,
        std::sync::Arc::new(idp::SystemClock),
        idp::sessions::SessionConfig::default(),
    );
    let sign_in = || async {
        let new = idp::sessions::NewSession {
            user_id: eve_id.clone(),
            amr: vec!["pwd".into()],
            acr: String::new(),
        };
        sessions.sign_in(None, new).await.unwrap().0.id
    };
    let mut ids = vec![sign_in().await, sign_in().await];
    ids.sort();

    let out = idp_env(d, &["users", "sign-out", "eve"], None, &env);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("ended 2 idp session(s) of eve"), "{stdout}");
    assert!(
        stdout.contains("authz ended 2 session(s), revoked 2 grant(s) and queued 2 back-channel logout token(s) for eve"),
        "{stdout}"
    );
    assert_eq!(ended(&fake), ids);
    for id in &ids {
        assert!(sessions.by_id(id).await.unwrap().is_none(), "ended at idp");
    }

    // A password change ends nothing unless configured.
    let third = sign_in().await;
    let out = idp_env(
        d,
        &["users", "set-password", "eve"],
        Some("new-password-1\n"),
        &env,
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(ended(&fake).len(), 2);
    assert!(sessions.by_id(&third).await.unwrap().is_some());
    let mut configured = env.clone();
    configured.push(("IDP__SESSIONS__END_ON_PASSWORD_CHANGE", "true".to_owned()));
    let out = idp_env(
        d,
        &["users", "set-password", "eve"],
        Some("new-password-2\n"),
        &configured,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(ended(&fake).contains(&third));
    assert!(sessions.by_id(&third).await.unwrap().is_none());
}

// account page
/// `idp users update` changes only the claims it is given (an empty value removes one),
/// validates them (one line, exit 1, nothing stored), and a new email is unverified unless
/// said otherwise.
#[test]
fn users_update_changes_profile_claims() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(idp(d, &["migrate"], None).status.code(), Some(0));
    let created = ok_json(&idp(
        d,
        &[
            "users",
            "create",
            "--username",
            "ada",
            "--email",
            "ada@example.com",
            "--email-verified",
            "--name",
            "Ada",
            "--family-name",
            "Byron",
            "--json",
        ],
        Some("a long enough password\n"),
    ));
    let updated = ok_json(&idp(
        d,
        &[
            "users",
            "update",
            "ada",
            "--name",
            "Ada Lovelace",
            "--family-name",
            "",
            "--locale",
            "en_GB",
            "--picture",
            "https://img.example.com/ada.png",
            "--json",
        ],
        None,
    ));
    assert_eq!(updated["id"], created["id"]);
    assert_eq!(updated["name"], "Ada Lovelace");
    assert_eq!(updated["family_name"], serde_json::Value::Null, "removed");
    assert_eq!(updated["locale"], "en-GB");
    assert_eq!(updated["picture"], "https://img.example.com/ada.png");
    assert_eq!(updated["email"], "ada@example.com", "untouched");
    assert_eq!(updated["email_verified"], true, "untouched");
    assert!(updated["updated_at"].as_i64() >= created["updated_at"].as_i64());
    let moved = ok_json(&idp(
        d,
        &[
            "users",
            "update",
            "ada",
            "--email",
            "Ada@Lovelace.org",
            "--json",
        ],
        None,
    ));
    assert_eq!(moved["email"], "ada@lovelace.org");
    assert_eq!(
        moved["email_verified"], false,
        "a new address is unverified"
    );
    for (args, key) in [
        (
            vec!["users", "update", "ada", "--locale", "not a locale"],
            "locale",
        ),
        (
            vec!["users", "update", "ada", "--picture", "javascript:alert(1)"],
            "picture",
        ),
        (vec!["users", "update", "ada", "--email", "nope"], "email"),
        (vec!["users", "update", "nobody", "--name", "X"], "nobody"),
    ] {
        let out = idp(d, &args, None);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let errors: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("error: "))
            .collect();
        assert_eq!(errors.len(), 1, "{stderr}");
        assert!(errors[0].contains(key), "{stderr}");
    }
    let shown = ok_json(&idp(d, &["users", "show", "ada", "--json"], None));
    assert_eq!(shown["name"], "Ada Lovelace");
    assert_eq!(shown["locale"], "en-GB");
}
