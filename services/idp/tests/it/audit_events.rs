//! The audit trail of idp's security events (sign-in success, failure, lockout; consent
//! given and denied) and of the admin writes of `idp users …`, on SQLite and PostgreSQL.

use std::time::Duration;

use audit::{Action, AuditFilter, AuditRecord};
use proto::authz::v1::ConsentRequest;
use storage::testing::TestDatabase;

use crate::fake_authz::{FakeAuthz, client};
use crate::harness::{Browser, PASSWORD, start};
use crate::users::{authz_env, idp_env, ok_json};

async fn events(db: &storage::Database, action: Action) -> Vec<AuditRecord> {
    audit::list(
        db,
        &AuditFilter {
            action: Some(action),
            ..AuditFilter::default()
        },
        None,
        100,
    )
    .await
    .unwrap()
    .records
}

/// Every sign-in outcome is one row: who, from where, about which account, why refused.
/// What was typed as the login name of an unknown account is never recorded.
async fn sign_ins_are_audited(db: TestDatabase) {
    let idp = start(db, |c| {
        c.login_throttle.account_free_failures = 1;
        c.login_throttle.address_free_failures = 100;
        c.login_throttle.base_delay = Duration::from_secs(30);
    })
    .await;
    let alice = idp.user("alice").await;
    let mut n = 0;
    let mut attempt = async |who: &str, password: &str| {
        n += 1;
        let challenge = format!("a{n}");
        idp.authz.login(&challenge);
        Browser::new(&idp)
            .login(&challenge, who, password)
            .await
            .status
    };
    assert_eq!(attempt("alice", PASSWORD).await, 303);
    assert_eq!(attempt("ALICE@example.com", "wrong password").await, 200);
    assert_eq!(attempt("typed-secret-name", "wrong password").await, 200);
    // The second failure in a row for alice starts a back-off; the next attempt is refused.
    assert_eq!(attempt("alice", "wrong password").await, 200);
    assert_eq!(attempt("alice", PASSWORD).await, 429);

    let ok = events(&idp.db, Action::LoginSucceeded).await;
    assert_eq!(ok.len(), 1, "{ok:?}");
    assert_eq!(ok[0].actor_kind, "user");
    assert_eq!(ok[0].actor_id.as_deref(), Some(alice.id.as_str()));
    assert_eq!(ok[0].target_id.as_deref(), Some(alice.id.as_str()));
    assert_eq!(ok[0].address.as_deref(), Some("127.0.0.1"));
    assert_eq!(ok[0].outcome, "success");

    let failed = events(&idp.db, Action::LoginFailed).await;
    assert_eq!(failed.len(), 3, "{failed:?}");
    let reasons: Vec<(Option<&str>, Option<&str>)> = failed
        .iter()
        .map(|r| (r.target_id.as_deref(), r.reason.as_deref()))
        .collect();
    assert_eq!(
        reasons,
        vec![
            (Some(alice.id.as_str()), Some("invalid_credentials")),
            (None, Some("unknown_user")),
            (Some(alice.id.as_str()), Some("invalid_credentials")),
        ]
    );
    assert!(
        failed
            .iter()
            .all(|r| r.outcome == "failure" && r.actor_kind == "anonymous")
    );

    let locked = events(&idp.db, Action::LoginLocked).await;
    assert_eq!(locked.len(), 1, "{locked:?}");
    assert_eq!(locked[0].target_id.as_deref(), Some(alice.id.as_str()));
    assert_eq!(locked[0].reason.as_deref(), Some("throttled"));

    let all = audit::list(&idp.db, &AuditFilter::default(), None, 100)
        .await
        .unwrap();
    let dump = format!("{:?}", all.records);
    for secret in ["typed-secret-name", "wrong password", PASSWORD, "argon2"] {
        assert!(!dump.contains(secret), "{secret} in {dump}");
    }
}

fn consent(challenge: &str, subject: &str) -> ConsentRequest {
    ConsentRequest {
        challenge: challenge.into(),
        client: client("Photo Printer"),
        subject: subject.into(),
        requested_scopes: vec!["openid".into()],
        ..ConsentRequest::default()
    }
}

/// Allowing and denying consent are recorded against the client, by the user.
async fn consent_answers_are_audited(db: TestDatabase) {
    let idp = start(db, |_| {}).await;
    let leo = idp.user("leo").await;
    let mut browser = Browser::new(&idp);
    idp.authz.login("l1");
    assert_eq!(browser.login("l1", "leo", PASSWORD).await.status, 303);
    for (challenge, action) in [("k1", "allow"), ("k2", "deny")] {
        idp.authz
            .add_consent(consent(challenge, &leo.id), "https://client.test/cb");
        let page = browser
            .get(&format!("/consent?consent_challenge={challenge}"))
            .await;
        let answered = browser
            .post(
                "/consent",
                &[
                    ("csrf", &page.hidden("csrf")),
                    ("consent_challenge", challenge),
                    ("action", action),
                ],
            )
            .await;
        assert_eq!(answered.status, 303, "{}", answered.body);
    }
    let client_id = client("Photo Printer").unwrap().client_id;
    for action in [Action::ConsentGiven, Action::ConsentDenied] {
        let rows = events(&idp.db, action).await;
        assert_eq!(rows.len(), 1, "{action}: {rows:?}");
        assert_eq!(rows[0].actor_id.as_deref(), Some(leo.id.as_str()));
        assert_eq!(rows[0].target_kind.as_deref(), Some("client"));
        assert_eq!(rows[0].target_id.as_deref(), Some(client_id.as_str()));
    }
}

/// Each admin write of `idp users …` is one `operator` row; reads and refused writes add
/// none, and no password is in the trail.
async fn cli_writes_are_audited(db: TestDatabase) {
    let (_fake, authz) = FakeAuthz::start().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut env = authz_env(d, authz);
    env.push(("IDP__DATABASE__URL", db.config().url.expose().clone()));
    let run = |args: &[&str], stdin: Option<&str>| idp_env(d, args, stdin, &env);
    let created = ok_json(&run(
        &["users", "create", "--username", "otto", "--json"],
        Some("otto-password-1\n"),
    ));
    let id = created["id"].as_str().unwrap().to_owned();
    // A refused write (taken username) and reads record nothing.
    assert_eq!(
        run(
            &["users", "create", "--username", "otto"],
            Some("otto-password-2\n")
        )
        .status
        .code(),
        Some(1)
    );
    assert_eq!(run(&["users", "show", "otto"], None).status.code(), Some(0));
    for args in [
        &["users", "set-password", "otto"][..],
        &["users", "disable", "otto"],
        &["users", "enable", "otto"],
        &["users", "sign-out", "otto"],
        &["users", "delete", "otto"],
    ] {
        let out = run(args, Some("otto-password-3\n"));
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let pool = db.connect(&idp::MIGRATIONS).await.unwrap();
    let page = audit::list(&pool, &AuditFilter::default(), None, 100)
        .await
        .unwrap();
    let mut actions: Vec<&str> = page.records.iter().map(|r| r.action.as_str()).collect();
    actions.reverse();
    assert_eq!(
        actions,
        vec![
            "user.created",
            "user.password_set",
            "user.disabled",
            "user.enabled",
            "sessions.ended",
            "user.deleted",
        ]
    );
    for r in &page.records {
        assert_eq!(r.actor_kind, "operator");
        assert_eq!(r.target_id.as_deref(), Some(id.as_str()), "{r:?}");
        assert_eq!(r.outcome, "success");
    }
    assert!(!format!("{:?}", page.records).contains("otto-password"));
}

storage::backend_tests!(idp::MIGRATIONS;
    sign_ins_are_audited,
    consent_answers_are_audited,
    cli_writes_are_audited,
);
