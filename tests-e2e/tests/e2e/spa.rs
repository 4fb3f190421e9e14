//! The demo single-page app in a real headless Chromium against the real services
//! (`deployments/demo.sh` on free ports): the page served by `demo app` at `/spa` runs the
//! authorization code flow with PKCE S256 from JavaScript as the public client
//! `demo-spa`, through idp's login and consent pages, exchanges the code at authz's token
//! endpoint and calls userinfo from the page (cross-origin: authz's CORS rules for the
//! client's redirect URI origin allow it) and shows the claims. A second sign-in in the
//! same browser comes straight back: idp's session and the remembered consent (on by
//! default) ask nothing. Screenshots go to `$CARGO_TARGET_TMPDIR/e2e-spa`. Without
//! Chromium the test says so and passes.

use std::path::Path;

use browser_test::{Chromium, Tab, find_chromium};
use serde_json::json;

use crate::demo::{Demo, Ports};

/// Waits until the SPA's status line reports success or an error, and returns it.
async fn spa_outcome(tab: &mut Tab<'_>) -> String {
    tab.wait_for(
        "(() => { const s = document.getElementById('status'); \
         return s && location.pathname.startsWith('/spa') \
         && (s.className.includes('error') || s.textContent.startsWith('Signed in with')) \
         && s.textContent; })()",
    )
    .await
    .unwrap()
    .as_str()
    .unwrap()
    .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_spa_signs_in_from_javascript_in_chromium() {
    let Some(binary) = find_chromium() else {
        println!(
            "SKIPPED the_demo_spa_signs_in_from_javascript_in_chromium: Chromium not found \
             (install Debian's `chromium` or set CHROMIUM=/path/to/chrome)"
        );
        return;
    };
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e-spa");
    std::fs::create_dir_all(&shots).unwrap();
    let data = tempfile::tempdir().unwrap();
    let ports = Ports::pick();
    let demo = Demo::start(data.path(), &ports, &[]).await;
    let app = ports.app_url();

    let mut chromium = Chromium::launch(&binary, &shots.join("chromium.log"))
        .await
        .unwrap();
    let mut tab = chromium.new_tab().await.unwrap();
    tab.viewport(1024, 800, false).await.unwrap();
    tab.navigate(&format!("{app}spa")).await.unwrap();
    tab.wait_for_text("Not signed in.").await.unwrap();
    tab.screenshot(&shots.join("spa-start.png")).await.unwrap();

    // The page sends the browser to authz, which sends it to idp's login page.
    tab.click("#sign-in").await.unwrap();
    tab.wait_for_selector("#password").await.unwrap();
    let login = tab.url().await.unwrap();
    assert!(
        login.starts_with("http://localhost:") && login.contains("/login?login_challenge="),
        "{login}"
    );
    tab.type_into("#username", "demo").await.unwrap();
    tab.type_into("#password", "demo-password").await.unwrap();
    tab.click("button[value=login]").await.unwrap();

    // Consent, with "remember my decision" on by default.
    tab.wait_for_selector("button[value=allow]").await.unwrap();
    let text = tab.text().await.unwrap();
    assert!(text.contains("Demo single-page app"), "{text}");
    assert_eq!(
        tab.eval("document.getElementById('remember').checked")
            .await
            .unwrap(),
        json!(true)
    );
    tab.screenshot(&shots.join("consent.png")).await.unwrap();
    tab.click("button[value=allow]").await.unwrap();

    // Back at the SPA: its script exchanged the code, verified the ID token and called
    // userinfo.
    let outcome = spa_outcome(&mut tab).await;
    assert_eq!(outcome, "Signed in with demo-spa from JavaScript.");
    let text = tab.text().await.unwrap();
    assert!(text.contains("Signed in as Demo User"), "{text}");
    assert!(text.contains("demo@example.com"), "userinfo claims: {text}");
    assert!(text.contains("\"nonce\""), "ID token claims: {text}");
    assert_eq!(
        tab.url().await.unwrap(),
        format!("{app}spa"),
        "the code left the address bar"
    );
    tab.screenshot(&shots.join("spa-signed-in.png"))
        .await
        .unwrap();

    // The tokens never reached the app's server: it has no session with a user.
    let cookies = tab.browser().cookies().await.unwrap();
    assert!(
        !cookies.iter().any(|c| c["name"] == "demo_app"),
        "{cookies:?}"
    );

    // A returning user: SSO at idp and the remembered consent, no page asks anything.
    tab.navigate(&format!("{app}spa")).await.unwrap();
    tab.wait_for_text("Not signed in.").await.unwrap();
    tab.click("#sign-in").await.unwrap();
    let outcome = spa_outcome(&mut tab).await;
    assert_eq!(outcome, "Signed in with demo-spa from JavaScript.");
    chromium.close().await;
    demo.stop().await;
    println!("screenshots in {}", shots.display());
}
