//! Password reset by email (issue 21): `/forgot` answers the same whether or not an account
//! matches, mails a single-use expiring link through the file sink, `/reset` sets the new
//! password once, ends the account's sessions, asks authz to revoke its grants and sends
//! "your password was changed"; dead links, CSRF and the rate limits.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use idp::IdpConfig;
use idp::mail::MailTransport;
use storage::testing::TestDatabase;

use crate::fake_authz::Call;
use crate::harness::{Browser, Idp, PASSWORD, Page, start};
use crate::mailbox;

pub const NEW_PASSWORD: &str = "a brand new passphrase";

/// Mail into `dir` through the file sink; sign-up and reset on.
pub fn mail_on(dir: &Path) -> impl FnOnce(&mut IdpConfig) + use<> {
    let dir = dir.to_path_buf();
    move |c: &mut IdpConfig| {
        c.mail.transport = MailTransport::File;
        c.mail.file_dir = dir;
        c.password_reset.enabled = true;
        c.signup.enabled = true;
    }
}

/// An idp with mail on, and the directory its messages land in.
pub async fn idp_with_mail(
    db: TestDatabase,
    tweak: impl FnOnce(&mut IdpConfig),
) -> (Idp, tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let mail = dir.path().join("mail");
    let on = mail_on(&mail);
    let idp = start(db, |c| {
        on(c);
        tweak(c);
    })
    .await;
    (idp, dir, mail)
}

/// GET /forgot, then post `login` with the form's token.
pub async fn forgot(browser: &mut Browser, login: &str) -> Page {
    let form = browser.get("/forgot").await;
    assert_eq!(form.status, 200, "{}", form.body);
    let csrf = form.hidden("csrf");
    browser
        .post("/forgot", &[("csrf", &csrf), ("login", login)])
        .await
}

/// The path and query of the link starting with `prefix` in message number `count` to
/// `to`. Links are absolute, on `public_url` (the tests' default, not the bound port).
pub async fn mailed_path(mail: &Path, to: &str, count: usize, prefix: &str, _idp: &Idp) -> String {
    let messages = mailbox::wait_for(mail, to, count).await;
    let public = "http://localhost:8081";
    let link = mailbox::link(&messages[count - 1], &format!("{public}{prefix}"));
    link[public.len()..].to_owned()
}

/// GET the reset form at `path`, post `password`/`confirm` with its tokens.
async fn set_password(browser: &mut Browser, path: &str, password: &str, confirm: &str) -> Page {
    let form = browser.get(path).await;
    assert_eq!(form.status, 200, "{}", form.body);
    let csrf = form.hidden("csrf");
    let token = form.hidden("token");
    browser
        .post(
            "/reset",
            &[
                ("csrf", &csrf),
                ("token", &token),
                ("password", password),
                ("confirm", confirm),
            ],
        )
        .await
}

fn revoked(calls: &[Call]) -> Vec<String> {
    calls
        .iter()
        .filter_map(|c| match c {
            Call::RevokeSubject(r) => Some(r.subject.clone()),
            _ => None,
        })
        .collect()
}

async fn a_reset_link_sets_a_new_password_once(db: TestDatabase) {
    let (idp, _dir, mail) = idp_with_mail(db, |_| {}).await;
    let alice = idp.user("alice").await;
    // Alice is signed in in one browser.
    idp.authz.login("c1");
    let mut signed_in = Browser::new(&idp);
    assert_eq!(signed_in.login("c1", "alice", PASSWORD).await.status, 303);

    // The login page links to the reset page when it is on.
    idp.authz.login("c2");
    let login = Browser::new(&idp).get("/login?login_challenge=c2").await;
    assert!(
        login.body.contains(r#"href="/forgot?login_challenge=c2""#),
        "{}",
        login.body
    );

    let mut browser = Browser::new(&idp);
    let sent = forgot(&mut browser, "Alice").await;
    assert_eq!(sent.status, 200);
    assert!(sent.body.contains("Check your email"), "{}", sent.body);
    let path = mailed_path(&mail, "alice@example.com", 1, "/reset?token=", &idp).await;
    let message = &mailbox::messages_to(&mail, "alice@example.com")[0];
    assert!(
        message.contains("Subject: Reset your password\r\n"),
        "{message}"
    );
    assert!(message.contains("30 minutes"), "{message}");

    // Bad new passwords: the form again with the reason, the link still works.
    let differ = set_password(&mut browser, &path, NEW_PASSWORD, "something else").await;
    assert_eq!(differ.status, 400);
    assert!(
        differ.body.contains("The two passwords differ."),
        "{}",
        differ.body
    );
    let short = set_password(&mut browser, &path, "short", "short").await;
    assert_eq!(short.status, 400);
    assert!(short.body.contains("at least 8"), "{}", short.body);

    let done = set_password(&mut browser, &path, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("Password changed"), "{}", done.body);

    // The old password no longer works, the new one does.
    assert!(
        idp.users
            .authenticate("alice", PASSWORD.into())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        idp.users
            .authenticate("alice", NEW_PASSWORD.into())
            .await
            .unwrap()
            .is_some()
    );
    // Alice's other session ended: the login form is shown instead of an immediate accept.
    idp.authz.login("c3");
    let again = signed_in.get("/login?login_challenge=c3").await;
    assert_eq!(again.status, 200, "no session left: {}", again.body);
    // authz was asked to revoke the account's grants.
    assert_eq!(revoked(&idp.authz.calls()), vec![alice.id.clone()]);
    // "Your password was changed" went to the account's address.
    let notices = mailbox::wait_for(&mail, "alice@example.com", 2).await;
    assert!(
        notices[1].contains("Subject: Your password was changed\r\n"),
        "{}",
        notices[1]
    );
    assert!(
        notices[1].contains("through a password reset link"),
        "{}",
        notices[1]
    );

    // The link worked once: neither the form nor a replayed post accept it again.
    let reused = browser.get(&path).await;
    assert_eq!(reused.status, 400);
    assert!(
        reused.body.contains("This link does not work"),
        "{}",
        reused.body
    );
    // A replayed post with a valid CSRF token (from the form of a newer link) is refused too.
    let form_token = path.trim_start_matches("/reset?token=").to_owned();
    assert_eq!(forgot(&mut browser, "alice").await.status, 200);
    let newer = mailed_path(&mail, "alice@example.com", 3, "/reset?token=", &idp).await;
    let reset_csrf = browser.get(&newer).await.hidden("csrf");
    let replay = browser
        .post(
            "/reset",
            &[
                ("csrf", &reset_csrf),
                ("token", &form_token),
                ("password", "yet another passphrase"),
                ("confirm", "yet another passphrase"),
            ],
        )
        .await;
    assert_eq!(replay.status, 400, "{}", replay.body);
    assert!(
        idp.users
            .authenticate("alice", NEW_PASSWORD.into())
            .await
            .unwrap()
            .is_some()
    );
}

async fn forgot_answers_the_same_whether_or_not_an_account_exists(db: TestDatabase) {
    let (idp, _dir, mail) = idp_with_mail(db, |_| {}).await;
    idp.user("alice").await;
    idp.user("carol").await;
    idp.users.set_disabled("carol", true).await.unwrap();
    let mut browser = Browser::new(&idp);
    let known = forgot(&mut browser, "alice@example.com").await;
    let unknown = forgot(&mut browser, "nobody").await;
    let unknown_email = forgot(&mut browser, "nobody@example.com").await;
    let disabled = forgot(&mut browser, "carol").await;
    for page in [&known, &unknown, &unknown_email, &disabled] {
        assert_eq!(page.status, 200);
        assert_eq!(page.body, known.body, "one answer for every case");
    }
    mailbox::wait_for(&mail, "alice@example.com", 1).await;
    // Only the enabled account got a link (give the background sends a moment to land).
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        mailbox::messages(&mail).len(),
        1,
        "{:?}",
        mailbox::messages(&mail)
    );
    assert!(mailbox::messages_to(&mail, "carol@example.com").is_empty());
}

async fn expired_tampered_and_foreign_reset_links_do_not_work(db: TestDatabase) {
    let (idp, _dir, mail) = idp_with_mail(db, |_| {}).await;
    idp.user("alice").await;
    let mut browser = Browser::new(&idp);
    forgot(&mut browser, "alice").await;
    let path = mailed_path(&mail, "alice@example.com", 1, "/reset?token=", &idp).await;
    // Tampered: one character changed.
    let mut tampered = path.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    for bad in [
        tampered.as_str(),
        "/reset",
        "/reset?token=",
        "/reset?token=not+a+token%21",
    ] {
        let page = browser.get(bad).await;
        assert_eq!(page.status, 400, "{bad}");
        assert!(page.body.contains("This link does not work"), "{bad}");
        assert!(page.body.contains(r#"href="/forgot""#), "{bad}");
    }
    // The genuine link still works until it expires (30 minutes).
    assert_eq!(browser.get(&path).await.status, 200);
    idp.clock.advance(Duration::from_secs(31 * 60));
    let expired = browser.get(&path).await;
    assert_eq!(expired.status, 400);
    assert!(expired.body.contains("This link does not work"));
    // A newer link replaces the older one.
    forgot(&mut browser, "alice").await;
    let first = mailed_path(&mail, "alice@example.com", 2, "/reset?token=", &idp).await;
    forgot(&mut browser, "alice").await;
    let second = mailed_path(&mail, "alice@example.com", 3, "/reset?token=", &idp).await;
    assert_eq!(browser.get(&first).await.status, 400, "replaced");
    assert_eq!(browser.get(&second).await.status, 200);
    // A sign-up link is no reset link.
    let signup = crate::signup::sign_up(&mut browser, "newbie", "newbie@example.com").await;
    assert_eq!(signup.status, 200, "{}", signup.body);
    let verify = mailed_path(
        &mail,
        "newbie@example.com",
        1,
        "/signup/verify?token=",
        &idp,
    )
    .await;
    let as_reset = verify.replace("/signup/verify?", "/reset?");
    assert_eq!(browser.get(&as_reset).await.status, 400);
}

async fn forgot_is_rate_limited_per_email_and_per_address(db: TestDatabase) {
    let (idp, _dir, mail) = idp_with_mail(db, |c| {
        c.password_reset.per_email = 2;
        c.password_reset.per_address = 3;
    })
    .await;
    idp.user("alice").await;
    // Per email: two requests for alice from anywhere, the third is refused.
    for i in 0..2u8 {
        let mut b = Browser::from_address(&idp, IpAddr::V4(Ipv4Addr::new(127, 0, 1, 10 + i)));
        assert_eq!(forgot(&mut b, "alice").await.status, 200);
    }
    let mut b = Browser::from_address(&idp, IpAddr::V4(Ipv4Addr::new(127, 0, 1, 20)));
    let limited = forgot(&mut b, "ALICE").await;
    assert_eq!(limited.status, 429, "{}", limited.body);
    assert!(
        limited.body.contains("Too many requests"),
        "{}",
        limited.body
    );
    let retry: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&retry), "{retry}");
    // Unknown names are limited alike (being limited tells nothing).
    for _ in 0..2 {
        let mut b = Browser::from_address(&idp, IpAddr::V4(Ipv4Addr::new(127, 0, 1, 30)));
        assert_eq!(forgot(&mut b, "ghost").await.status, 200);
    }
    let mut b = Browser::from_address(&idp, IpAddr::V4(Ipv4Addr::new(127, 0, 1, 31)));
    assert_eq!(forgot(&mut b, "ghost").await.status, 429);
    // Per address: three requests from one address, then refused whatever the name.
    let mut one = Browser::from_address(&idp, IpAddr::V4(Ipv4Addr::new(127, 0, 2, 1)));
    for name in ["u1", "u2", "u3"] {
        assert_eq!(forgot(&mut one, name).await.status, 200, "{name}");
    }
    assert_eq!(forgot(&mut one, "u4").await.status, 429);
    // Two links were mailed, not three.
    mailbox::wait_for(&mail, "alice@example.com", 2).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(mailbox::messages_to(&mail, "alice@example.com").len(), 2);
    // After the window, requests go through again.
    idp.clock.advance(Duration::from_secs(3601));
    assert_eq!(forgot(&mut one, "alice").await.status, 200);
    assert!(
        idp.metric(r#"idp_email_rate_limited_total{form="reset"}"#)
            .await
            >= 3.0
    );
}

async fn every_mail_form_needs_its_csrf_token(db: TestDatabase) {
    let (idp, _dir, mail) = idp_with_mail(db, |_| {}).await;
    idp.user("alice").await;
    let mut browser = Browser::new(&idp);
    // A token of another form does not do either.
    let login_token = {
        idp.authz.login("c1");
        browser
            .get("/login?login_challenge=c1")
            .await
            .hidden("csrf")
    };
    for csrf in [None, Some("forged"), Some(login_token.as_str())] {
        let with = |mut fields: Vec<(&'static str, String)>| {
            if let Some(t) = csrf {
                fields.push(("csrf", t.to_owned()));
            }
            fields
        };
        for (path, fields) in [
            ("/forgot", with(vec![("login", "alice".into())])),
            (
                "/reset",
                with(vec![
                    ("token", "x".into()),
                    ("password", NEW_PASSWORD.into()),
                    ("confirm", NEW_PASSWORD.into()),
                ]),
            ),
            (
                "/signup",
                with(vec![
                    ("username", "mallory".into()),
                    ("email", "mallory@example.com".into()),
                    ("password", NEW_PASSWORD.into()),
                    ("confirm", NEW_PASSWORD.into()),
                ]),
            ),
            ("/signup/verify", with(vec![("token", "x".into())])),
        ] {
            let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let refused = browser.post(path, &fields).await;
            assert_eq!(refused.status, 403, "{path} {csrf:?}");
            assert!(refused.body.contains("This form has expired"), "{path}");
        }
    }
    // The genuine token of the forgot form, from a browser without the CSRF cookie.
    let token = browser.get("/forgot").await.hidden("csrf");
    let mut stranger = Browser::new(&idp);
    let refused = stranger
        .post("/forgot", &[("csrf", &token), ("login", "alice")])
        .await;
    assert_eq!(refused.status, 403);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(mailbox::messages(&mail).is_empty(), "nothing was sent");
    assert!(idp.users.get("mallory").await.is_err(), "nobody signed up");
    assert!(
        idp.metric(r#"idp_csrf_rejected_total{form="forgot"}"#)
            .await
            >= 4.0
    );
}

async fn disabled_flows_have_no_pages_and_no_links(db: TestDatabase) {
    let idp = start(db, |_| {}).await;
    let mut browser = Browser::new(&idp);
    for path in [
        "/forgot",
        "/reset?token=x",
        "/signup",
        "/signup/verify?token=x",
    ] {
        assert_eq!(browser.get(path).await.status, 404, "{path}");
    }
    for path in ["/forgot", "/reset", "/signup", "/signup/verify"] {
        assert_eq!(
            browser.post(path, &[("csrf", "x")]).await.status,
            404,
            "{path}"
        );
    }
    idp.authz.login("c1");
    let login = browser.get("/login?login_challenge=c1").await;
    assert!(!login.body.contains("/forgot"), "{}", login.body);
    assert!(!login.body.contains("/signup"), "{}", login.body);
}

storage::backend_tests!(idp::MIGRATIONS;
    a_reset_link_sets_a_new_password_once,
    forgot_answers_the_same_whether_or_not_an_account_exists,
    expired_tampered_and_foreign_reset_links_do_not_work,
    forgot_is_rate_limited_per_email_and_per_address,
    every_mail_form_needs_its_csrf_token,
    disabled_flows_have_no_pages_and_no_links,
);
