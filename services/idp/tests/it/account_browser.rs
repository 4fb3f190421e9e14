//! The account page in a real headless Chromium: the redirect to sign in, a profile edit,
//! an avatar upload (a real file input) and the account deletion, with screenshots kept
//! under `CARGO_TARGET_TMPDIR/idp-account-browser`. Without Chromium the test says so and
//! passes, as the login page's browser test does.

use std::path::Path;

use browser_test::{Chromium, find_chromium};
use serde_json::json;

use crate::harness::{PASSWORD, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_page_in_chromium() {
    let Some(binary) = find_chromium() else {
        println!(
            "SKIPPED account_page_in_chromium: Chromium not found on PATH \
             (install Debian's `chromium`, as .ci/run does, or set CHROMIUM=/path/to/chrome)"
        );
        return;
    };
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("idp-account-browser");
    std::fs::create_dir_all(&shots).unwrap();
    let picture = shots.join("upload.png");
    std::fs::write(&picture, crate::account::png_with_metadata(320, 200)).unwrap();

    let db = storage::testing::TestDatabase::sqlite(&idp::MIGRATIONS)
        .await
        .unwrap();
    let idp = start(db, |_| {}).await;
    let demo = idp.user("demo").await;
    let mut chromium = Chromium::launch(&binary, &shots.join("chromium.log"))
        .await
        .unwrap();
    let mut tab = chromium.new_tab().await.unwrap();
    tab.viewport(1024, 900, false).await.unwrap();

    // Signed out: the account page sends the browser to sign in.
    tab.navigate(&format!("{}/account", idp.url)).await.unwrap();
    tab.wait_for(
        "location.pathname === '/account/login' && document.readyState === 'complete' \
         && !!document.getElementById('password')",
    )
    .await
    .unwrap();
    tab.screenshot(&shots.join("account-login.png"))
        .await
        .unwrap();
    tab.type_into("#username", "demo").await.unwrap();
    tab.type_into("#password", PASSWORD).await.unwrap();
    tab.click("button[type=submit]").await.unwrap();
    tab.wait_for(
        "location.pathname === '/account' && document.readyState === 'complete' \
         && !!document.getElementById('save-profile')",
    )
    .await
    .unwrap();
    assert_eq!(
        tab.eval("document.title").await.unwrap(),
        json!("Your account")
    );
    tab.screenshot(&shots.join("account.png")).await.unwrap();

    // Profile edit.
    tab.eval("document.getElementById('name').value = ''")
        .await
        .unwrap();
    tab.type_into("#name", "Demo Liddell").await.unwrap();
    tab.click("#save-profile").await.unwrap();
    tab.wait_for(
        "location.search === '?done=profile' && document.readyState === 'complete' \
         && document.getElementById('name').value === 'Demo Liddell'",
    )
    .await
    .unwrap();
    assert_eq!(
        idp.users
            .get(&demo.id)
            .await
            .unwrap()
            .profile
            .name
            .as_deref(),
        Some("Demo Liddell")
    );
    tab.screenshot(&shots.join("account-profile-saved.png"))
        .await
        .unwrap();

    // Avatar upload through the file input.
    let input = tab
        .call(
            "Runtime.evaluate",
            json!({ "expression": "document.getElementById('avatar-file')" }),
        )
        .await
        .unwrap();
    let object = input["result"]["objectId"].as_str().unwrap().to_owned();
    tab.call(
        "DOM.setFileInputFiles",
        json!({ "files": [picture.to_str().unwrap()], "objectId": object }),
    )
    .await
    .unwrap();
    tab.click("#upload-avatar").await.unwrap();
    tab.wait_for(
        "location.search === '?done=avatar' && document.readyState === 'complete' \
         && !!document.getElementById('avatar-image') \
         && document.getElementById('avatar-image').complete \
         && document.getElementById('avatar-image').naturalWidth === 256",
    )
    .await
    .unwrap();
    let stored = idp.users.get(&demo.id).await.unwrap().profile.picture;
    assert!(
        stored
            .as_deref()
            .is_some_and(|p| p.contains(&format!("/avatars/{}?v=", demo.id))),
        "{stored:?}"
    );
    tab.screenshot(&shots.join("account-avatar.png"))
        .await
        .unwrap();

    // Deletion with the password.
    tab.type_into("#delete-password", PASSWORD).await.unwrap();
    tab.click("#delete-account").await.unwrap();
    tab.wait_for(
        "document.readyState === 'complete' && !!document.getElementById('account-deleted')",
    )
    .await
    .unwrap();
    tab.screenshot(&shots.join("account-deleted.png"))
        .await
        .unwrap();
    chromium.close().await;
    assert!(idp.users.by_id(&demo.id).await.unwrap().is_none());
    println!("screenshots in {}", shots.display());
}
