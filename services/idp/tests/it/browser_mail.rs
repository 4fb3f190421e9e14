//! Sign-up and password reset in a real headless Chromium (issue 21), each link read from
//! the file mail sink, screenshots of every page kept under
//! `$CARGO_TARGET_TMPDIR/idp-browser-mail` like the login browser test's. Without Chromium
//! the test says so and passes.
//!
//! Mailed links are absolute on `public_url`; the test's idp listens on a port only known
//! after it started, so the browser opens the link's path and query on the bound address.

use std::path::Path;

use browser_test::{Chromium, Tab, find_chromium};
use serde_json::json;

use crate::mailbox;
use crate::password_reset::idp_with_mail;

const SIGNUP_PASSWORD: &str = "first passphrase here";
const RESET_PASSWORD: &str = "second passphrase here";

/// Waits until the page is loaded and `selector` exists.
async fn ready(tab: &mut Tab<'_>, selector: &str) {
    tab.wait_for(&format!(
        "document.readyState === 'complete' && !!document.querySelector({selector:?})"
    ))
    .await
    .unwrap();
}

/// The path and query of the newest link to `to` starting with `prefix` (after
/// `public_url`), waiting for message number `count`.
async fn link(mail: &Path, to: &str, count: usize, prefix: &str) -> String {
    let messages = mailbox::wait_for(mail, to, count).await;
    let public = "http://localhost:8081";
    let link = mailbox::link(&messages[count - 1], &format!("{public}{prefix}"));
    link[public.len()..].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_and_password_reset_in_chromium() {
    let Some(binary) = find_chromium() else {
        println!(
            "SKIPPED sign_up_and_password_reset_in_chromium: Chromium not found on PATH \
             (install Debian's `chromium`, as .ci/run does, or set CHROMIUM=/path/to/chrome)"
        );
        return;
    };
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("idp-browser-mail");
    std::fs::create_dir_all(&shots).unwrap();
    let db = storage::testing::TestDatabase::sqlite(&idp::MIGRATIONS)
        .await
        .unwrap();
    let (idp, _dir, mail) = idp_with_mail(db, |_| {}).await;
    idp.authz.login("browser-login");

    let mut chromium = Chromium::launch(&binary, &shots.join("chromium.log"))
        .await
        .unwrap();
    let mut tab = chromium.new_tab().await.unwrap();
    tab.viewport(1024, 760, false).await.unwrap();

    // The login page offers both, and leads to the sign-up form.
    tab.navigate(&format!("{}/login?login_challenge=browser-login", idp.url))
        .await
        .unwrap();
    ready(&mut tab, "#signup-link").await;
    tab.screenshot(&shots.join("login-with-links.png"))
        .await
        .unwrap();
    tab.click("#signup-link").await.unwrap();
    ready(&mut tab, "#confirm").await;
    assert_eq!(
        tab.eval("document.title").await.unwrap(),
        json!("Create an account")
    );
    assert_eq!(
        tab.eval("document.activeElement.id").await.unwrap(),
        json!("username")
    );
    tab.type_into("#username", "newbie").await.unwrap();
    tab.type_into("#email", "newbie@example.com").await.unwrap();
    tab.type_into("#name", "New Person").await.unwrap();
    tab.type_into("#password", SIGNUP_PASSWORD).await.unwrap();
    tab.type_into("#confirm", SIGNUP_PASSWORD).await.unwrap();
    tab.screenshot(&shots.join("signup-form.png"))
        .await
        .unwrap();
    tab.click("form button.primary").await.unwrap();
    ready(&mut tab, "#signup-sent").await;
    let text = tab.text().await.unwrap();
    assert!(text.contains("newbie@example.com"), "{text}");
    tab.screenshot(&shots.join("signup-sent.png"))
        .await
        .unwrap();
    assert!(
        idp.users.get("newbie").await.is_err(),
        "no account before verification"
    );

    // The link from the mail: a confirmation page, then the account is active.
    let verify = link(&mail, "newbie@example.com", 1, "/signup/verify?token=").await;
    tab.navigate(&format!("{}{verify}", idp.url)).await.unwrap();
    ready(&mut tab, "form button.primary").await;
    tab.screenshot(&shots.join("signup-verify.png"))
        .await
        .unwrap();
    tab.click("form button.primary").await.unwrap();
    ready(&mut tab, "#notice").await;
    assert_eq!(
        tab.eval("document.title").await.unwrap(),
        json!("Your account is ready")
    );
    tab.screenshot(&shots.join("signup-done.png"))
        .await
        .unwrap();
    let user = idp.users.get("newbie").await.unwrap();
    assert!(user.profile.email_verified);

    // "Forgot password?" from the login page.
    tab.navigate(&format!("{}/login?login_challenge=browser-login", idp.url))
        .await
        .unwrap();
    ready(&mut tab, "#forgot-link").await;
    tab.click("#forgot-link").await.unwrap();
    ready(&mut tab, "#login").await;
    tab.type_into("#login", "newbie@example.com").await.unwrap();
    tab.screenshot(&shots.join("forgot-form.png"))
        .await
        .unwrap();
    tab.click("form button.primary").await.unwrap();
    ready(&mut tab, "#forgot-sent").await;
    tab.screenshot(&shots.join("forgot-sent.png"))
        .await
        .unwrap();
    assert_eq!(
        tab.eval("document.getElementById('back-to-login').getAttribute('href')")
            .await
            .unwrap(),
        json!("/login?login_challenge=browser-login")
    );

    // The reset link from the mail: the new password form, then the change.
    let reset = link(&mail, "newbie@example.com", 2, "/reset?token=").await;
    tab.navigate(&format!("{}{reset}", idp.url)).await.unwrap();
    ready(&mut tab, "#confirm").await;
    tab.type_into("#password", RESET_PASSWORD).await.unwrap();
    tab.type_into("#confirm", RESET_PASSWORD).await.unwrap();
    tab.screenshot(&shots.join("reset-form.png")).await.unwrap();
    tab.click("form button.primary").await.unwrap();
    ready(&mut tab, "#notice").await;
    assert_eq!(
        tab.eval("document.title").await.unwrap(),
        json!("Password changed")
    );
    tab.screenshot(&shots.join("reset-done.png")).await.unwrap();

    // The used link is dead in the browser too.
    tab.navigate(&format!("{}{reset}", idp.url)).await.unwrap();
    ready(&mut tab, "#notice-link").await;
    assert_eq!(
        tab.eval("document.title").await.unwrap(),
        json!("This link does not work")
    );
    tab.screenshot(&shots.join("reset-link-used.png"))
        .await
        .unwrap();
    chromium.close().await;

    assert!(
        idp.users
            .authenticate("newbie", RESET_PASSWORD.into())
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        idp.users
            .authenticate("newbie", SIGNUP_PASSWORD.into())
            .await
            .unwrap()
            .is_none()
    );
    let notice = mailbox::wait_for(&mail, "newbie@example.com", 3).await;
    assert!(
        notice[2].contains("Subject: Your password was changed\r\n"),
        "{}",
        notice[2]
    );
    println!("screenshots in {}", shots.display());
}
