//! The consent and logout pages.

use proto::authz::v1::ConsentRequest;
use storage::testing::TestDatabase;

use crate::fake_authz::{Call, client};
use crate::harness::{Browser, PASSWORD, start};

fn consent(challenge: &str, subject: &str) -> ConsentRequest {
    ConsentRequest {
        challenge: challenge.into(),
        client: client("Photo Printer"),
        subject: subject.into(),
        requested_scopes: vec![
            "openid".into(),
            "profile".into(),
            "email".into(),
            "prints:order".into(),
        ],
        ..ConsentRequest::default()
    }
}

async fn consent_approve_and_deny(db: TestDatabase) {
    let idp = start(db, |_| {}).await;
    let leo = idp.user("leo").await;
    let mia = idp.user("mia").await;
    let mut browser = Browser::new(&idp);
    idp.authz.login("l1");
    assert_eq!(browser.login("l1", "leo", PASSWORD).await.status, 303);

    // Approve, remembering the decision.
    idp.authz
        .add_consent(consent("k1", &leo.id), "https://client.test/cb?code=abc");
    let page = browser.get("/consent?consent_challenge=k1").await;
    assert_eq!(page.status, 200, "{}", page.body);
    for text in [
        "Photo Printer",
        "See your email address",
        "See your profile: name, username, picture and language",
        "prints:order",
        "Remember my decision",
        "Signed in as leo",
    ] {
        assert!(page.body.contains(text), "{text}");
    }
    // "Remember my decision" is on by default (a returning user is not asked again).
    assert!(
        page.body.contains(
            r#"<input type="checkbox" id="remember" name="remember" value="yes" checked>"#
        ),
        "{}",
        page.body
    );
    let approved = browser
        .post(
            "/consent",
            &[
                ("csrf", &page.hidden("csrf")),
                ("consent_challenge", "k1"),
                ("remember", "yes"),
                ("action", "allow"),
            ],
        )
        .await;
    assert_eq!(approved.status, 303);
    assert_eq!(
        approved.location.as_deref(),
        Some("https://client.test/cb?code=abc")
    );

    // Deny.
    idp.authz
        .add_consent(consent("k2", &leo.id), "https://client.test/cb?code=never");
    let page = browser.get("/consent?consent_challenge=k2").await;
    let denied = browser
        .post(
            "/consent",
            &[
                ("csrf", &page.hidden("csrf")),
                ("consent_challenge", "k2"),
                ("action", "deny"),
            ],
        )
        .await;
    assert_eq!(denied.status, 303);
    assert_eq!(
        denied.location.as_deref(),
        Some("https://client.test/cb?error=access_denied")
    );

    let calls = idp.authz.calls();
    let consent_calls: Vec<&Call> = calls
        .iter()
        .filter(|c| matches!(c, Call::AcceptConsent(_) | Call::RejectConsent(_)))
        .collect();
    assert_eq!(consent_calls.len(), 2);
    match consent_calls[0] {
        Call::AcceptConsent(a) => {
            assert_eq!(a.consent_challenge, "k1");
            assert_eq!(
                a.granted_scopes,
                vec!["openid", "profile", "email", "prints:order"]
            );
            assert!(a.remember);
        }
        other => panic!("{other:?}"),
    }
    match consent_calls[1] {
        Call::RejectConsent(r) => {
            assert_eq!(r.challenge, "k2");
            assert_eq!(r.error, "access_denied");
        }
        other => panic!("{other:?}"),
    }

    // Not remembering, and a token of one consent form does not answer another.
    idp.authz
        .add_consent(consent("k3", &leo.id), "https://client.test/cb");
    idp.authz
        .add_consent(consent("k4", &leo.id), "https://client.test/cb");
    let k3 = browser.get("/consent?consent_challenge=k3").await;
    let replay = browser
        .post(
            "/consent",
            &[
                ("csrf", &k3.hidden("csrf")),
                ("consent_challenge", "k4"),
                ("action", "allow"),
            ],
        )
        .await;
    assert_eq!(replay.status, 403);
    let ok = browser
        .post(
            "/consent",
            &[
                ("csrf", &k3.hidden("csrf")),
                ("consent_challenge", "k3"),
                ("action", "allow"),
            ],
        )
        .await;
    assert_eq!(ok.status, 303);
    assert!(matches!(idp.authz.calls().last(), Some(Call::AcceptConsent(a)) if !a.remember));

    // The consent request of another user, or a browser without a session: refused.
    idp.authz
        .add_consent(consent("k5", &mia.id), "https://client.test/cb");
    let foreign = browser.get("/consent?consent_challenge=k5").await;
    assert_eq!(foreign.status, 403);
    let mut stranger = Browser::new(&idp);
    let anonymous = stranger.get("/consent?consent_challenge=k4").await;
    assert_eq!(anonymous.status, 403);
    assert!(idp.metric(r#"idp_consents_total{result="granted"}"#).await >= 2.0);
    assert!(idp.metric(r#"idp_consents_total{result="denied"}"#).await >= 1.0);
}

async fn logout_confirms_then_ends_the_session(db: TestDatabase) {
    let idp = start(db, |_| {}).await;
    idp.user("nia").await;
    let mut browser = Browser::new(&idp);
    idp.authz.login("l1");
    assert_eq!(browser.login("l1", "nia", PASSWORD).await.status, 303);

    let confirm = browser.get("/logout").await;
    assert_eq!(confirm.status, 200);
    assert!(confirm.body.contains("Sign out?"));
    assert!(confirm.body.contains("nia"));
    // GET alone ends nothing.
    idp.authz.login("l2");
    assert_eq!(browser.get("/login?login_challenge=l2").await.status, 303);

    let done = browser
        .post("/logout", &[("csrf", &confirm.hidden("csrf"))])
        .await;
    assert_eq!(done.status, 200);
    assert!(done.body.contains("You are signed out"));
    let cleared = done.set_cookie("idp_session").unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    // logout: authz is told which session ended (LoginFlow.SessionEnded), the one idp
    // reported at AcceptLogin.
    let calls = idp.authz.calls();
    let accepted = calls.iter().find_map(|c| match c {
        crate::fake_authz::Call::AcceptLogin(r) => Some(r.session_id.clone()),
        _ => None,
    });
    let ended: Vec<String> = calls
        .iter()
        .filter_map(|c| match c {
            crate::fake_authz::Call::SessionEnded(r) => Some(r.session_id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(ended, vec![accepted.unwrap()]);
    assert!(!browser.cookies.contains_key("idp_session"));
    idp.authz.login("l3");
    assert_eq!(browser.get("/login?login_challenge=l3").await.status, 200);

    // Without a session: the signed-out page.
    let mut stranger = Browser::new(&idp);
    let page = stranger.get("/logout").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("You are signed out"));
}

storage::backend_tests!(idp::MIGRATIONS; consent_approve_and_deny);
crate::login::sqlite_tests!(logout_confirms_then_ends_the_session);
