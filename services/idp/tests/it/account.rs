//! The account page (`/account`) against the fake authz, on SQLite and PostgreSQL: every
//! form, signed-out browsers, CSRF, the claims authz reads afterwards, and the durable
//! revocation of a deleted account's grants while authz is down.

use std::time::Duration;

use proto::idp::v1::GetUserClaimsRequest;
use storage::testing::TestDatabase;

use crate::fake_authz::{Call, FakeAuthz};
use crate::harness::{Browser, Idp, PASSWORD, Page, authz, start};

/// Every form of the page, as `(path, fields besides csrf)`.
const FORMS: [(&str, &[(&str, &str)]); 6] = [
    ("/account/profile", &[("name", "Mallory")]),
    ("/account/username", &[("username", "mallory")]),
    (
        "/account/password",
        &[
            ("current", PASSWORD),
            ("new", "mallory's password"),
            ("confirm", "mallory's password"),
        ],
    ),
    ("/account/sessions", &[]),
    ("/account/apps/revoke", &[("client_id", "demo-app")]),
    ("/account/delete", &[("password", PASSWORD)]),
];

/// The CSRF token of the form posting to `action` on `page`.
fn token(page: &Page, action: &str) -> String {
    let at = page
        .body
        .find(&format!(r#"action="{action}""#))
        .unwrap_or_else(|| panic!("no form {action} in {}", page.body));
    let marker = r#"name="csrf" value=""#;
    let start = page.body[at..].find(marker).unwrap() + at + marker.len();
    let end = page.body[start..].find('"').unwrap() + start;
    page.body[start..end].to_owned()
}

/// A browser signed in as `username` through `/account/login`.
async fn signed_in(idp: &Idp, username: &str, password: &str) -> Browser {
    let mut browser = Browser::new(idp);
    let form = browser.get("/account/login").await;
    assert_eq!(form.status, 200, "{}", form.body);
    let csrf = form.hidden("csrf");
    let done = browser
        .post(
            "/account/login",
            &[("csrf", &csrf), ("username", username), ("password", password)],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location.as_deref(), Some("/account?done=signed-in"));
    browser
}

/// GET /account (200) and post `fields` to `action` with that form's token.
async fn submit(browser: &mut Browser, action: &str, fields: &[(&str, &str)]) -> Page {
    let page = browser.get("/account").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = token(&page, action);
    let mut all = vec![("csrf", csrf.as_str())];
    all.extend_from_slice(fields);
    browser.post(action, &all).await
}

async fn claims(idp: &Idp, subject: &str) -> proto::idp::v1::UserClaims {
    idp.sessions_api()
        .await
        .get_user_claims(authz(GetUserClaimsRequest {
            subject: subject.into(),
            scopes: vec!["openid".into(), "profile".into(), "email".into()],
        }))
        .await
        .unwrap()
        .into_inner()
}

fn session_ended_calls(fake: &FakeAuthz) -> usize {
    fake.calls()
        .iter()
        .filter(|c| matches!(c, Call::SessionEnded(_)))
        .count()
}

async fn signed_out_browsers_get_a_redirect_never_data(db: TestDatabase) {
    let idp = start(db, |_| {}).await;
    let alice = idp.user("alice").await;
    let mut browser = Browser::new(&idp);
    let page = browser.get("/account").await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location.as_deref(), Some("/account/login"));
    assert!(!page.body.contains("alice"), "{}", page.body);
    // A signed-out browser with a CSRF cookie and some token is sent to sign in; nothing of
    // the account shows and nothing changes.
    let form = browser.get("/account/login").await;
    let csrf = form.hidden("csrf");
    for (path, fields) in FORMS {
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        let answer = browser.post(path, &all).await;
        assert_eq!(answer.status, 303, "{path}: {}", answer.body);
        assert_eq!(answer.location.as_deref(), Some("/account/login"), "{path}");
        assert!(!answer.body.contains("alice"), "{path}");
    }
    // Signed in, the sign-in page itself forwards to the account page.
    let mut signed = signed_in(&idp, "alice", PASSWORD).await;
    let again = signed.get("/account/login").await;
    assert_eq!(again.status, 303);
    assert_eq!(again.location.as_deref(), Some("/account"));
    let page = signed.get("/account").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(r#"id="account-username">alice<"#), "{}", page.body);
    assert_eq!(page.headers["cache-control"], "no-store");
    // Wrong password at the account sign-in: the one failure message, no session.
    let mut other = Browser::new(&idp);
    let form = other.get("/account/login").await;
    let csrf = form.hidden("csrf");
    let failed = other
        .post(
            "/account/login",
            &[("csrf", &csrf), ("username", "alice"), ("password", "wrong password")],
        )
        .await;
    assert_eq!(failed.status, 200);
    assert!(failed.body.contains("Incorrect username or password."));
    assert_eq!(other.get("/account").await.status, 303);
    assert!(idp.users.by_id(&alice.id).await.unwrap().is_some());
}

async fn every_form_refuses_a_missing_or_foreign_csrf_token(db: TestDatabase) {
    let idp = start(db, |_| {}).await;
    let alice = idp.user("alice").await;
    idp.authz
        .remember(&alice.id, "demo-app", "Demo App", &["openid"]);
    let mut browser = signed_in(&idp, "alice", PASSWORD).await;
    let page = browser.get("/account").await;
    // The profile form's token, valid for that form only.
    let profile_token = token(&page, "/account/profile");
    for (path, fields) in FORMS {
        let missing = browser.post(path, fields).await;
        assert_eq!(missing.status, 403, "{path} without a token");
        if path != "/account/profile" {
            let mut all = vec![("csrf", profile_token.as_str())];
            all.extend_from_slice(fields);
            let foreign = browser.post(path, &all).await;
            assert_eq!(foreign.status, 403, "{path} with another form's token");
        }
    }
    // The sign-in form too.
    let mut fresh = Browser::new(&idp);
    fresh.get("/account/login").await;
    let forged = fresh
        .post(
            "/account/login",
            &[("username", "alice"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(forged.status, 403);
    // Nothing changed.
    let now = idp.users.by_id(&alice.id).await.unwrap().unwrap();
    assert_eq!(now, alice);
    assert!(!idp.authz.calls().iter().any(|c| matches!(
        c,
        Call::RevokeConsent(_) | Call::RevokeSubject(_) | Call::SessionEnded(_)
    )));
    assert_eq!(browser.get("/account").await.status, 200, "still signed in");
}

async fn profile_changes_reach_the_claims_at_once(db: TestDatabase) {
    let idp = start(db, |_| {}).await;
    let alice = idp.user("alice").await;
    let before = claims(&idp, &alice.id).await;
    assert_eq!(before.name.as_deref(), Some("alice Example"));
    let mut browser = signed_in(&idp, "alice", PASSWORD).await;
    let saved = submit(
        &mut browser,
        "/account/profile",
        &[
            ("name", "Alice Liddell"),
            ("given_name", "Alice"),
            ("family_name", ""),
            ("locale", "fr_CA"),
        ],
    )
    .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert_eq!(saved.location.as_deref(), Some("/account?done=profile"));
    let after = claims(&idp, &alice.id).await;
    assert_eq!(after.name.as_deref(), Some("Alice Liddell"));
    assert_eq!(after.given_name.as_deref(), Some("Alice"));
    assert_eq!(after.family_name, None, "an empty field removes the claim");
    assert_eq!(after.locale.as_deref(), Some("fr-CA"));
    assert!(after.updated_at >= before.updated_at);
    let page = browser.get("/account?done=profile").await;
    assert!(page.body.contains("Your profile is saved."));
    assert!(page.body.contains(r#"value="Alice Liddell""#));
    // Bad input: the page again with the reason, nothing stored.
    for (field, value) in [("locale", "not a locale"), ("name", "bell\u{7}")] {
        let refused = submit(&mut browser, "/account/profile", &[(field, value)]).await;
        assert_eq!(refused.status, 400, "{field}");
        assert!(refused.body.contains(r#"id="account-error""#), "{}", refused.body);
    }
    assert_eq!(claims(&idp, &alice.id).await.name.as_deref(), Some("Alice Liddell"));
}

async fn usernames_are_unique_validated_and_held_after_a_change(db: TestDatabase) {
    let idp = start(db, |_| {}).await;
    let alice = idp.user("alice").await;
    idp.user("bob").await;
    let mut browser = signed_in(&idp, "alice", PASSWORD).await;
    for (taken, why) in [
        ("bob", "another user's username"),
        ("BOB", "the same name in other case"),
        ("bob@example.com", "another user's email"),
    ] {
        let refused = submit(&mut browser, "/account/username", &[("username", taken)]).await;
        assert_eq!(refused.status, 409, "{why}: {}", refused.body);
        assert!(refused.body.contains("That username is not available."));
    }
    for invalid in ["", "has space", &"x".repeat(65), "<script>"] {
        let refused = submit(&mut browser, "/account/username", &[("username", invalid)]).await;
        assert_eq!(refused.status, 400, "{invalid:?}");
    }
    assert_eq!(idp.users.get(&alice.id).await.unwrap().username, "alice");
    let changed = submit(&mut browser, "/account/username", &[("username", "Alice2")]).await;
    assert_eq!(changed.status, 303, "{}", changed.body);
    assert_eq!(idp.users.get(&alice.id).await.unwrap().username, "alice2");
    assert_eq!(
        claims(&idp, &alice.id).await.preferred_username.as_deref(),
        Some("alice2")
    );
    // The old name is held for alice: bob cannot take it, nor can a new account.
    let mut bob = signed_in(&idp, "bob", PASSWORD).await;
    let refused = submit(&mut bob, "/account/username", &[("username", "alice")]).await;
    assert_eq!(refused.status, 409);
    let created = idp
        .users
        .create(
            idp::users::NewUser {
                username: "alice".into(),
                profile: idp::users::Profile::default(),
            },
            PASSWORD.into(),
        )
        .await;
    assert!(matches!(created, Err(idp::IdpError::Conflict(_))), "{created:?}");
    // alice signs in with the new name and may take the old one back.
    let mut again = signed_in(&idp, "alice2", PASSWORD).await;
    let back = submit(&mut again, "/account/username", &[("username", "alice")]).await;
    assert_eq!(back.status, 303);
    assert_eq!(idp.users.get(&alice.id).await.unwrap().username, "alice");
}

async fn a_password_change_needs_the_current_one_and_ends_other_sessions(db: TestDatabase) {
    let idp = start(db, |_| {}).await;
    let alice = idp.user("alice").await;
    let mut here = signed_in(&idp, "alice", PASSWORD).await;
    let mut there = signed_in(&idp, "alice", PASSWORD).await;
    let wrong = submit(
        &mut here,
        "/account/password",
        &[("current", "not my password"), ("new", "a new password"), ("confirm", "a new password")],
    )
    .await;
    assert_eq!(wrong.status, 403);
    assert!(wrong.body.contains("The current password is not correct."));
    let differ = submit(
        &mut here,
        "/account/password",
        &[("current", PASSWORD), ("new", "a new password"), ("confirm", "another password")],
    )
    .await;
    assert_eq!(differ.status, 400);
    let short = submit(
        &mut here,
        "/account/password",
        &[("current", PASSWORD), ("new", "short"), ("confirm", "short")],
    )
    .await;
    assert_eq!(short.status, 400);
    assert_eq!(there.get("/account").await.status, 200, "nothing changed yet");
    assert_eq!(session_ended_calls(&idp.authz), 0);
    let changed = submit(
        &mut here,
        "/account/password",
        &[("current", PASSWORD), ("new", "a new password"), ("confirm", "a new password")],
    )
    .await;
    assert_eq!(changed.status, 303, "{}", changed.body);
    assert_eq!(here.get("/account").await.status, 200, "this session stays");
    let gone = there.get("/account").await;
    assert_eq!(gone.status, 303, "the other session ended");
    assert_eq!(session_ended_calls(&idp.authz), 1, "authz is told");
    assert!(idp.users.authenticate("alice", "a new password".into()).await.unwrap().is_some());
    assert!(idp.users.authenticate("alice", PASSWORD.into()).await.unwrap().is_none());
    assert_eq!(alice.id, idp.users.get("alice").await.unwrap().id);
}

async fn other_sessions_end_on_request(db: TestDatabase) {
    let idp = start(db, |_| {}).await;
    idp.user("alice").await;
    let mut here = signed_in(&idp, "alice", PASSWORD).await;
    let mut there = signed_in(&idp, "alice", PASSWORD).await;
    let page = here.get("/account").await;
    assert_eq!(page.body.matches(r#"<tr class="session">"#).count(), 2);
    assert!(page.body.contains("this browser"));
    let ended = submit(&mut here, "/account/sessions", &[]).await;
    assert_eq!(ended.status, 303);
    assert_eq!(ended.location.as_deref(), Some("/account?done=sessions"));
    assert_eq!(there.get("/account").await.status, 303);
    let page = here.get("/account").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.body.matches(r#"<tr class="session">"#).count(), 1);
    assert_eq!(session_ended_calls(&idp.authz), 1);
}

async fn apps_with_remembered_consent_are_listed_and_revoked_at_authz(db: TestDatabase) {
    let idp = start(db, |_| {}).await;
    let alice = idp.user("alice").await;
    idp.authz
        .remember(&alice.id, "demo-app", "Demo App", &["openid", "profile"]);
    idp.authz.remember(&alice.id, "other-app", "", &["openid"]);
    let mut browser = signed_in(&idp, "alice", PASSWORD).await;
    let page = browser.get("/account").await;
    assert_eq!(page.body.matches(r#"<tr class="app">"#).count(), 2, "{}", page.body);
    assert!(page.body.contains("Demo App"));
    assert!(page.body.contains("other-app"), "the id when there is no name");
    let revoked = submit(&mut browser, "/account/apps/revoke", &[("client_id", "demo-app")]).await;
    assert_eq!(revoked.status, 303, "{}", revoked.body);
    assert!(idp.authz.calls().iter().any(|c| matches!(
        c,
        Call::RevokeConsent(r) if r.subject == alice.id && r.client_id == "demo-app"
    )));
    let page = browser.get("/account").await;
    assert_eq!(page.body.matches(r#"<tr class="app">"#).count(), 1);
    assert!(!page.body.contains("Demo App"));
    let empty = submit(&mut browser, "/account/apps/revoke", &[("client_id", "  ")]).await;
    assert_eq!(empty.status, 400);
}

async fn deletion_needs_re_authentication_then_removes_everything(db: TestDatabase) {
    let idp = start(db, |_| {}).await;
    let alice = idp.user("alice").await;
    let mut browser = signed_in(&idp, "alice", PASSWORD).await;
    let mut other = signed_in(&idp, "alice", PASSWORD).await;
    for password in ["", "not my password"] {
        let refused = submit(&mut browser, "/account/delete", &[("password", password)]).await;
        assert_eq!(refused.status, 403, "{password:?}");
        assert!(idp.users.by_id(&alice.id).await.unwrap().is_some());
    }
    assert!(!idp.authz.calls().iter().any(|c| matches!(c, Call::RevokeSubject(_))));
    let deleted = submit(&mut browser, "/account/delete", &[("password", PASSWORD)]).await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert!(deleted.body.contains(r#"id="account-deleted""#));
    assert!(
        deleted.set_cookie("idp_session").is_some_and(|c| c.contains("Max-Age=0")),
        "{:?}",
        deleted.set_cookies
    );
    assert!(idp.users.by_id(&alice.id).await.unwrap().is_none());
    assert!(idp.authz.calls().iter().any(|c| matches!(
        c,
        Call::RevokeSubject(r) if r.subject == alice.id
    )));
    assert_eq!(other.get("/account").await.status, 303, "every session is gone");
    assert!(idp.users.authenticate("alice", PASSWORD.into()).await.unwrap().is_none());
    assert_eq!(idp.metric("idp_revocations_pending").await, 0.0);
}

async fn a_deletion_while_authz_is_down_is_revoked_once_it_is_back(db: TestDatabase) {
    // An address nobody listens on yet: authz is down.
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down = reserved.local_addr().unwrap();
    drop(reserved);
    let idp = start(db, |c| {
        c.authz.grpc_url = format!("http://{down}");
        c.authz.timeout = Duration::from_millis(500);
        c.account.revocation_retry = Duration::from_millis(100);
        c.account.revocation_retry_max = Duration::from_millis(200);
    })
    .await;
    let alice = idp.user("alice").await;
    let mut browser = signed_in(&idp, "alice", PASSWORD).await;
    let page = browser.get("/account").await;
    assert!(
        page.body.contains("Your applications cannot be listed right now."),
        "the page works without authz"
    );
    let deleted = submit(&mut browser, "/account/delete", &[("password", PASSWORD)]).await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert!(idp.users.by_id(&alice.id).await.unwrap().is_none());
    // authz comes back on its address: the queued revocation reaches it.
    let (authz, _) = FakeAuthz::start_on(down).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let delivered = authz.calls().iter().any(|c| matches!(
            c,
            Call::RevokeSubject(r) if r.subject == alice.id
        ));
        if delivered && idp.metric("idp_revocations_pending").await == 0.0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never delivered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(idp.metric("idp_revocation_failures_total").await >= 1.0);
}

storage::backend_tests!(idp::MIGRATIONS;
    signed_out_browsers_get_a_redirect_never_data,
    every_form_refuses_a_missing_or_foreign_csrf_token,
    profile_changes_reach_the_claims_at_once,
    usernames_are_unique_validated_and_held_after_a_change,
    a_password_change_needs_the_current_one_and_ends_other_sessions,
    other_sessions_end_on_request,
    apps_with_remembered_consent_are_listed_and_revoked_at_authz,
    deletion_needs_re_authentication_then_removes_everything,
    a_deletion_while_authz_is_down_is_revoked_once_it_is_back,
);
