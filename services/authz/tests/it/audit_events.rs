//! The audit trail of authz (issue 18): token revocations (RFC 7009), automatic and
//! command-line key rotation, and the admin writes of `authz clients|keys|consents`, on
//! SQLite and PostgreSQL.

use audit::{Action, AuditFilter, AuditRecord};
use reqwest::StatusCode;
use serde_json::Value;
use storage::Database;
use storage::testing::TestDatabase;

use crate::flow_env::*;

async fn trail(db: &TestDatabase, action: Option<Action>) -> Vec<AuditRecord> {
    let pool = Database::connect(db.config(), &authz::MIGRATIONS)
        .await
        .unwrap();
    audit::list(
        &pool,
        &AuditFilter {
            action,
            ..AuditFilter::default()
        },
        None,
        500,
    )
    .await
    .unwrap()
    .records
}

fn cli(db: &TestDatabase, args: &[&str]) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = crate::cli::authz_in(
        dir.path(),
        args,
        &[("AUTHZ__DATABASE__URL", db.config().url.expose().as_str())],
    );
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

async fn revoke(env: &Env, client: &str, token: &str) -> StatusCode {
    env.http
        .post(format!("http://{}/revoke", env.addrs.http))
        .basic_auth(client, Some(SECRET))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
        .status()
}

/// The keys made at the first start are `system` rotations; a revocation is recorded for
/// the revoking client, a refused one (another client's token) as a failure, an unknown
/// token not at all; `consents revoke` is an `operator` write. No token is in the trail.
async fn revocations_keys_and_consents_are_audited(db: TestDatabase) {
    let env = start(&db).await;
    let rotated = trail(&db, Some(Action::KeyRotated)).await;
    assert_eq!(rotated.len(), 2, "ES256 and RS256: {rotated:?}");
    for r in &rotated {
        assert_eq!(r.actor_kind, "system");
        assert_eq!(r.target_kind.as_deref(), Some("key"));
        assert_eq!(r.reason.as_deref(), Some("automatic"));
    }

    let mut browser = Browser::new(&env);
    let (code, verifier) = env
        .sign_in(&mut browser, "web", "openid offline_access", "alice", "s1")
        .await;
    let (status, _, tokens) = env.redeem("web", &code, &verifier).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let access = tokens["access_token"].as_str().unwrap().to_owned();

    assert_eq!(
        revoke(&env, "intruder", &refresh).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(revoke(&env, "web", "no-such-token").await, StatusCode::OK);
    assert_eq!(revoke(&env, "web", &refresh).await, StatusCode::OK);
    let revoked = trail(&db, Some(Action::TokenRevoked)).await;
    assert_eq!(revoked.len(), 2, "{revoked:?}");
    let (ok, refused) = (&revoked[0], &revoked[1]);
    assert_eq!(
        (
            ok.actor_kind.as_str(),
            ok.actor_id.as_deref(),
            ok.outcome.as_str()
        ),
        ("client", Some("web"), "success")
    );
    assert_eq!(ok.address.as_deref(), Some("127.0.0.1"));
    assert_eq!(
        (
            refused.actor_id.as_deref(),
            refused.outcome.as_str(),
            refused.reason.as_deref()
        ),
        (Some("intruder"), "failure", Some("other_client"))
    );

    let (code, _, err) = cli(
        &db,
        &[
            "consents",
            "revoke",
            "--subject",
            "alice",
            "--client",
            "web",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    // Nothing left to revoke: refused, not recorded.
    let (code, _, _) = cli(
        &db,
        &[
            "consents",
            "revoke",
            "--subject",
            "alice",
            "--client",
            "web",
        ],
    );
    assert_eq!(code, Some(1));
    let consent = trail(&db, Some(Action::ConsentRevoked)).await;
    assert_eq!(consent.len(), 1, "{consent:?}");
    assert_eq!(consent[0].actor_kind, "operator");
    assert_eq!(consent[0].target_id.as_deref(), Some("alice"));

    let dump = format!("{:?}", trail(&db, None).await);
    for secret in [refresh.as_str(), access.as_str(), SECRET] {
        assert!(!dump.contains(secret), "a secret in {dump}");
    }
}

/// Every write of `authz clients …` and `authz keys …` is one `operator` row about its
/// target; reads add none; the client secret shown once is not in the trail.
async fn cli_admin_writes_are_audited(db: TestDatabase) {
    let (code, out, err) = cli(
        &db,
        &[
            "clients", "create", "--id", "audited", "--name", "Audited", "--json",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let created: Value = serde_json::from_str(&out).unwrap();
    let mut secrets = vec![created["client_secret"].as_str().unwrap().to_owned()];
    for args in [
        &["clients", "update", "audited", "--name", "Audited 2"][..],
        &["clients", "list"],
        &["clients", "show", "audited"],
        &["keys", "list"],
        &["keys", "rotate", "--alg", "ES256"],
    ] {
        let (code, _, err) = cli(&db, args);
        assert_eq!(code, Some(0), "{args:?}: {err}");
    }
    let (code, out, err) = cli(&db, &["clients", "rotate-secret", "audited", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let rotated: Value = serde_json::from_str(&out).unwrap();
    secrets.push(rotated["client_secret"].as_str().unwrap().to_owned());
    let (code, out, err) = cli(&db, &["keys", "list", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let keys: Value = serde_json::from_str(&out).unwrap();
    let kid = keys[0]["kid"].as_str().unwrap().to_owned();
    let (code, _, err) = cli(&db, &["keys", "retire", &kid]);
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = cli(&db, &["clients", "delete", "audited"]);
    assert_eq!(code, Some(0), "{err}");

    let rows = trail(&db, None).await;
    let operator: Vec<(&str, Option<&str>)> = rows
        .iter()
        .rev()
        .filter(|r| r.actor_kind == "operator")
        .map(|r| (r.action.as_str(), r.target_kind.as_deref()))
        .collect();
    assert_eq!(
        operator,
        vec![
            ("client.created", Some("client")),
            ("client.updated", Some("client")),
            ("key.rotated", Some("key")),
            ("client.secret_rotated", Some("client")),
            ("key.retired", Some("key")),
            ("client.deleted", Some("client")),
        ],
        "{rows:?}"
    );
    let retired = rows
        .iter()
        .find(|r| r.action == "key.retired" && r.actor_kind == "operator")
        .unwrap();
    assert_eq!(retired.target_id.as_deref(), Some(kid.as_str()));
    let dump = format!("{rows:?}");
    for s in &secrets {
        assert!(!dump.contains(s.as_str()), "a client secret in {dump}");
    }
}

storage::backend_tests!(authz::MIGRATIONS;
    revocations_keys_and_consents_are_audited,
    cli_admin_writes_are_audited,
);
