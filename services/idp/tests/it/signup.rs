//! Self-registration (issue 21): the account exists only once the emailed link is
//! followed, then with `email_verified = true`; taken and invalid usernames, bad emails and
//! passwords, a registered address answered like a new one, dead links and rate limits.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use storage::testing::TestDatabase;

use crate::harness::{Browser, Page};
use crate::mailbox;
use crate::password_reset::{NEW_PASSWORD, idp_with_mail, mailed_path};

/// GET /signup, then post `username`, `email` and [`NEW_PASSWORD`] twice.
pub async fn sign_up(browser: &mut Browser, username: &str, email: &str) -> Page {
    sign_up_with(browser, username, email, NEW_PASSWORD, NEW_PASSWORD).await
}

async fn sign_up_with(
    browser: &mut Browser,
    username: &str,
    email: &str,
    password: &str,
    confirm: &str,
) -> Page {
    let form = browser.get("/signup").await;
    assert_eq!(form.status, 200, "{}", form.body);
    let csrf = form.hidden("csrf");
    browser
        .post(
            "/signup",
            &[
                ("csrf", &csrf),
                ("username", username),
                ("email", email),
                ("name", "New Person"),
                ("password", password),
                ("confirm", confirm),
            ],
        )
        .await
}

/// GET the confirmation page at `path` and press its button.
async fn verify(browser: &mut Browser, path: &str) -> Page {
    let page = browser.get(path).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = page.hidden("csrf");
    let token = page.hidden("token");
    browser
        .post("/signup/verify", &[("csrf", &csrf), ("token", &token)])
        .await
}

async fn an_account_exists_only_once_its_address_is_verified(db: TestDatabase) {
    let (idp, _dir, mail) = idp_with_mail(db, |_| {}).await;
    idp.authz.login("c1");
    let mut browser = Browser::new(&idp);
    let login = browser.get("/login?login_challenge=c1").await;
    assert!(
        login.body.contains(r#"href="/signup?login_challenge=c1""#),
        "{}",
        login.body
    );
    let form = browser.get("/signup?login_challenge=c1").await;
    assert!(
        form.body.contains(r#"href="/login?login_challenge=c1""#),
        "back to sign-in"
    );

    let sent = sign_up(&mut browser, "Newbie", "Newbie@Example.com").await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    assert!(sent.body.contains("Check your email"), "{}", sent.body);
    assert!(sent.body.contains("newbie@example.com"), "{}", sent.body);
    // Not usable before verification: no such user, the password signs nobody in.
    assert!(idp.users.get("newbie").await.is_err());
    assert!(
        idp.users
            .authenticate("newbie", NEW_PASSWORD.into())
            .await
            .unwrap()
            .is_none()
    );

    let path = mailed_path(
        &mail,
        "newbie@example.com",
        1,
        "/signup/verify?token=",
        &idp,
    )
    .await;
    let message = &mailbox::messages_to(&mail, "newbie@example.com")[0];
    assert!(
        message.contains("Subject: Confirm your email address\r\n"),
        "{message}"
    );
    // Opening the link (as a mail scanner would) does not use it.
    let confirm = browser.get(&path).await;
    assert_eq!(confirm.status, 200);
    assert!(confirm.body.contains("newbie"), "{}", confirm.body);
    assert!(idp.users.get("newbie").await.is_err());

    let done = verify(&mut browser, &path).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("Your account is ready"), "{}", done.body);
    let user = idp.users.get("newbie").await.unwrap();
    assert_eq!(user.profile.email.as_deref(), Some("newbie@example.com"));
    assert!(user.profile.email_verified);
    assert_eq!(user.profile.name.as_deref(), Some("New Person"));
    assert!(!user.disabled);
    // The new account signs in through the login form.
    assert_eq!(
        browser.login("c1", "newbie", NEW_PASSWORD).await.status,
        303
    );

    // The link worked once.
    let reused = browser.get(&path).await;
    assert_eq!(reused.status, 400);
    assert!(reused.body.contains("This link does not work"));
}

async fn sign_up_refuses_taken_and_invalid_input(db: TestDatabase) {
    let (idp, _dir, _mail) = idp_with_mail(db, |_| {}).await;
    idp.user("alice").await;
    let mut browser = Browser::new(&idp);
    let taken = sign_up(&mut browser, "ALICE", "someone@example.com").await;
    assert_eq!(taken.status, 409);
    assert!(
        taken.body.contains("This username is taken"),
        "{}",
        taken.body
    );
    assert!(
        taken.body.contains(r#"value="someone@example.com""#),
        "form kept"
    );
    // A username its owner changed away from on the account page stays held for them, so
    // nobody can sign up with it meanwhile.
    let mut alice = crate::account::signed_in(&idp, "alice", crate::harness::PASSWORD).await;
    let renamed = crate::account::submit(
        &mut alice,
        "/account/username",
        &[("username", "alice-renamed")],
    )
    .await;
    assert_eq!(renamed.status, 303, "{}", renamed.body);
    let held = sign_up(&mut browser, "alice", "other@example.com").await;
    assert_eq!(held.status, 409, "{}", held.body);
    // A pending sign-up holds its username until its link expires.
    assert_eq!(
        sign_up(&mut browser, "pending", "p1@example.com")
            .await
            .status,
        200
    );
    let held = sign_up(&mut browser, "pending", "p2@example.com").await;
    assert_eq!(held.status, 409, "{}", held.body);
    for (username, email, password, confirm, expect) in [
        (
            "has space",
            "a@example.com",
            NEW_PASSWORD,
            NEW_PASSWORD,
            "A username is 1 to 64",
        ),
        (
            "",
            "a@example.com",
            NEW_PASSWORD,
            NEW_PASSWORD,
            "A username is 1 to 64",
        ),
        (
            &*"x".repeat(65),
            "a@example.com",
            NEW_PASSWORD,
            NEW_PASSWORD,
            "A username is 1 to 64",
        ),
        (
            "fine",
            "not-an-email",
            NEW_PASSWORD,
            NEW_PASSWORD,
            "valid email",
        ),
        (
            "fine",
            "a@example.com",
            NEW_PASSWORD,
            "different one",
            "passwords differ",
        ),
        ("fine", "a@example.com", "short", "short", "at least 8"),
    ] {
        let page = sign_up_with(&mut browser, username, email, password, confirm).await;
        assert_eq!(page.status, 400, "{username:?} {email:?}: {}", page.body);
        assert!(page.body.contains(expect), "{expect}: {}", page.body);
    }
    assert!(idp.users.get("fine").await.is_err());
    assert_eq!(idp.users.list().await.unwrap().len(), 1);
}

async fn a_registered_address_is_answered_like_a_new_one(db: TestDatabase) {
    let (idp, _dir, mail) = idp_with_mail(db, |_| {}).await;
    idp.user("alice").await;
    let mut browser = Browser::new(&idp);
    let new = sign_up(&mut browser, "bob", "bob@example.com").await;
    let existing = sign_up(&mut browser, "alice2", "alice@example.com").await;
    assert_eq!(existing.status, new.status);
    assert_eq!(
        existing.body.replace("alice@example.com", "X"),
        new.body.replace("bob@example.com", "X"),
        "one answer whether or not the address is registered"
    );
    // Alice is told someone tried; she gets no activation link.
    let told = mailbox::wait_for(&mail, "alice@example.com", 1).await;
    assert!(
        told[0].contains("Subject: Sign-up attempt with your email address\r\n"),
        "{}",
        told[0]
    );
    assert!(!told[0].contains("/signup/verify"), "{}", told[0]);
    assert!(told[0].contains("/forgot"), "reset is on: {}", told[0]);
    assert!(idp.users.get("alice2").await.is_err());
}

async fn expired_tampered_and_raced_sign_up_links_create_nothing(db: TestDatabase) {
    let (idp, _dir, mail) = idp_with_mail(db, |_| {}).await;
    let mut browser = Browser::new(&idp);
    assert_eq!(
        sign_up(&mut browser, "late", "late@example.com")
            .await
            .status,
        200
    );
    let path = mailed_path(&mail, "late@example.com", 1, "/signup/verify?token=", &idp).await;
    // One character changed (never to itself: the token is random base64url).
    let mut tampered = path.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    for bad in [
        tampered.as_str(),
        "/signup/verify",
        "/signup/verify?token=%00",
    ] {
        let page = browser.get(bad).await;
        assert_eq!(page.status, 400, "{bad}");
        assert!(page.body.contains(r#"href="/signup""#), "{bad}");
    }
    // A reset link is no sign-up link.
    idp.user("alice").await;
    crate::password_reset::forgot(&mut browser, "alice").await;
    let reset = mailed_path(&mail, "alice@example.com", 1, "/reset?token=", &idp).await;
    let as_signup = reset.replace("/reset?", "/signup/verify?");
    assert_eq!(browser.get(&as_signup).await.status, 400);
    // Two pending sign-ups of one address: the first verified wins, the second finds the
    // address taken and creates nothing.
    assert_eq!(
        sign_up(&mut browser, "first", "twice@example.com")
            .await
            .status,
        200
    );
    assert_eq!(
        sign_up(&mut browser, "second", "twice@example.com")
            .await
            .status,
        200
    );
    let first = mailed_path(&mail, "twice@example.com", 1, "/signup/verify?token=", &idp).await;
    let second = mailed_path(&mail, "twice@example.com", 2, "/signup/verify?token=", &idp).await;
    let second_page = browser.get(&second).await;
    assert_eq!(verify(&mut browser, &first).await.status, 200);
    let raced = browser
        .post(
            "/signup/verify",
            &[
                ("csrf", &second_page.hidden("csrf")),
                ("token", &second_page.hidden("token")),
            ],
        )
        .await;
    assert_eq!(raced.status, 409, "{}", raced.body);
    assert!(idp.users.get("second").await.is_err());
    assert!(idp.users.get("first").await.unwrap().profile.email_verified);
    // Expired after signup.link_lifetime (24 hours).
    idp.clock.advance(Duration::from_secs(24 * 3600 + 1));
    assert_eq!(browser.get(&path).await.status, 400);
    assert!(idp.users.get("late").await.is_err());
    // Its username is free again once the pending sign-up expired.
    assert_eq!(
        sign_up(&mut browser, "late", "late2@example.com")
            .await
            .status,
        200
    );
}

async fn sign_up_is_rate_limited_per_email_and_per_address(db: TestDatabase) {
    let (idp, _dir, _mail) = idp_with_mail(db, |c| {
        c.signup.per_email = 1;
        c.signup.per_address = 2;
    })
    .await;
    let mut a = Browser::from_address(&idp, IpAddr::V4(Ipv4Addr::new(127, 0, 3, 1)));
    assert_eq!(sign_up(&mut a, "one", "same@example.com").await.status, 200);
    let mut b = Browser::from_address(&idp, IpAddr::V4(Ipv4Addr::new(127, 0, 3, 2)));
    let limited = sign_up(&mut b, "two", "Same@example.com").await;
    assert_eq!(limited.status, 429, "{}", limited.body);
    assert!(limited.headers.contains_key("retry-after"));
    assert_eq!(
        sign_up(&mut a, "three", "other@example.com").await.status,
        200
    );
    let limited = sign_up(&mut a, "four", "fourth@example.com").await;
    assert_eq!(limited.status, 429, "per address");
    idp.clock.advance(Duration::from_secs(3601));
    assert_eq!(
        sign_up(&mut a, "four", "fourth@example.com").await.status,
        200
    );
}

storage::backend_tests!(idp::MIGRATIONS;
    an_account_exists_only_once_its_address_is_verified,
    sign_up_refuses_taken_and_invalid_input,
    a_registered_address_is_answered_like_a_new_one,
    expired_tampered_and_raced_sign_up_links_create_nothing,
    sign_up_is_rate_limited_per_email_and_per_address,
);
