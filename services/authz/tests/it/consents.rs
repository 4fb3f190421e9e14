//! Remembered consent and `authz consents list|revoke`: a returning user is not asked
//! again; revoking through the CLI forgets the consent, kills the client's refresh and
//! access tokens for the user, and the next sign-in asks again.

use reqwest::StatusCode;
use serde_json::Value;
use storage::testing::TestDatabase;

use crate::flow_env::*;

/// Runs `authz consents …` against the test database; (exit code, stdout, stderr).
fn consents_cli(db: &TestDatabase, args: &[&str]) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut all = vec!["consents"];
    all.extend_from_slice(args);
    let out = crate::cli::authz_in(
        dir.path(),
        &all,
        &[("AUTHZ__DATABASE__URL", db.config().url.expose().as_str())],
    );
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Where the browser goes after idp accepted the login of `subject` for an authorization
/// request of `web`: the consent page or, with a remembered consent, back to the client.
/// Returns it with the PKCE verifier of the request.
async fn after_login(
    env: &Env,
    browser: &mut Browser,
    subject: &str,
    session: &str,
) -> (Seen, String) {
    let (verifier, challenge) = pkce();
    let seen = browser
        .authorize(&code_request(
            "web",
            WEB_CB,
            "openid offline_access",
            &challenge,
            &[],
        ))
        .await;
    let login = seen.redirected_to(&format!("{IDP_URL}/login"));
    let back = env
        .accept_login(&login["login_challenge"], subject, session, env.now())
        .await
        .unwrap();
    (browser.get(&back).await, verifier)
}

async fn remembered_consent_is_listed_and_revoked_with_the_clients_tokens(db: TestDatabase) {
    let env = start(&db).await;
    let scope = "openid offline_access";

    // First sign-in: consent asked and remembered (what idp's page sends by default).
    let mut browser = Browser::new(&env);
    let (code, verifier) = env.sign_in(&mut browser, "web", scope, "alice", "s1").await;
    let (status, _, tokens) = env.redeem("web", &code, &verifier).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();

    // A returning user (a new browser, so no SSO) is not asked again.
    let mut again = Browser::new(&env);
    let (seen, second_verifier) = after_login(&env, &mut again, "alice", "s2").await;
    let params = seen.redirected_to(WEB_CB);
    assert!(params.contains_key("code"), "{params:?}");

    // Listed, with the granted scopes; bob has none.
    let (code, out, err) = consents_cli(&db, &["list", "--subject", "alice", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let listed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["client_id"], "web");
    assert_eq!(listed[0]["scope"], "offline_access openid");
    let (code, out, _) = consents_cli(&db, &["list", "--subject", "bob"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("no remembered consents"), "{out}");

    // Revoked: the consent and the grant of the redeemed code.
    let (code, out, err) = consents_cli(
        &db,
        &["revoke", "--subject", "alice", "--client", "web", "--json"],
    );
    assert_eq!(code, Some(0), "{err}");
    let revoked: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(revoked["consent_revoked"], true, "{revoked}");
    assert_eq!(revoked["grants_revoked"], 1, "{revoked}");

    // The client's tokens for alice are dead.
    let (status, _, body) = env.refresh("web", &refresh).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant", "{body}");
    assert!(
        !env.active(&access).await,
        "the access token is still active"
    );
    // The unredeemed code of the second sign-in is gone too.
    let (status, _, body) = env.redeem("web", &params["code"], &second_verifier).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant", "{body}");

    // The next sign-in asks for consent again.
    let mut third = Browser::new(&env);
    let (seen, _) = after_login(&env, &mut third, "alice", "s3").await;
    seen.redirected_to(&format!("{IDP_URL}/consent"));
    let (code, out, _) = consents_cli(&db, &["list", "--subject", "alice", "--json"]);
    assert_eq!(code, Some(0));
    assert_eq!(out.trim(), "[]");

    // Nothing left to revoke: exit code 1 with the reason.
    let (code, _, err) = consents_cli(&db, &["revoke", "--subject", "alice", "--client", "web"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.lines()
            .any(|l| l.starts_with("error: no consent or grant of subject alice")),
        "{err}"
    );
}

storage::backend_tests!(
    authz::MIGRATIONS;
    remembered_consent_is_listed_and_revoked_with_the_clients_tokens,
);
