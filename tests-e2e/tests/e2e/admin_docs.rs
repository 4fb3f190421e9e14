//! admin2: Swagger UI of authz's admin API (issue 18) in a real headless Chromium against
//! the real binary (`authz serve --demo`): `/admin/docs` on the admin listener, "Authorize"
//! with the client credentials flow of the demo's `demo-admin` / `demo-admin-secret` (the
//! page posts to authz's token endpoint on the public listener: a cross-origin request
//! that authz's CORS answers for the admin listener's origin, which `demo-admin` lists in
//! its `allowed_origins`, and no other), then "Try it out" on `GET /admin/v1/clients`,
//! whose response lists `demo-client`. Screenshots go to `$CARGO_TARGET_TMPDIR/e2e-admin-docs`.
//! Without Chromium the test says so and passes.

use std::path::Path;

use browser_test::{Chromium, find_chromium};

use crate::harness::{Service, free_port};

/// The `GET /admin/v1/clients` operation block of the page.
const LIST: &str = r#".opblock-get:has(.opblock-summary-path[data-path="/admin/v1/clients"])"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swagger_ui_authorizes_with_the_demo_admin_and_lists_clients() {
    let Some(binary) = find_chromium() else {
        println!(
            "SKIPPED swagger_ui_authorizes_with_the_demo_admin_and_lists_clients: Chromium \
             not found (install Debian's `chromium` or set CHROMIUM=/path/to/chrome)"
        );
        return;
    };
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e-admin-docs");
    std::fs::create_dir_all(&shots).unwrap();
    let data = tempfile::tempdir().unwrap();
    // The issuer names the public port: Swagger UI's token URL comes from it.
    let port = free_port();
    let authz = Service::start_with(
        "authz",
        &["serve".to_owned(), "--demo".to_owned()],
        data.path(),
        &[
            ("AUTHZ__HTTP__PORT".to_owned(), port.to_string()),
            (
                "AUTHZ__ISSUER".to_owned(),
                format!("http://localhost:{port}"),
            ),
        ],
    )
    .await;
    let docs = format!("{}/admin/docs", authz.url("admin"));

    let mut chromium = Chromium::launch(&binary, &shots.join("chromium.log"))
        .await
        .unwrap();
    let mut tab = chromium.new_tab().await.unwrap();
    tab.viewport(1280, 1000, false).await.unwrap();
    tab.navigate(&docs).await.unwrap();
    tab.wait_for_selector(LIST).await.unwrap();
    tab.screenshot(&shots.join("docs.png")).await.unwrap();

    // "Authorize": the client credentials flow of the document's `admin` scheme.
    tab.click(".auth-wrapper .btn.authorize").await.unwrap();
    tab.type_into("input[id^='client_id_']", "demo-admin")
        .await
        .unwrap();
    tab.type_into("input[id^='client_secret_']", "demo-admin-secret")
        .await
        .unwrap();
    tab.click(".scopes h2 a[data-all]").await.unwrap();
    tab.screenshot(&shots.join("authorize.png")).await.unwrap();
    tab.click(".auth-btn-wrapper .btn.modal-btn.auth.authorize")
        .await
        .unwrap();
    let outcome = tab
        .wait_for(
            "(() => { const m = document.querySelector('.modal-ux'); if (!m) return null; \
             const t = m.innerText; \
             return (t.includes('Logout') || t.includes('Auth Error') || t.includes('error')) && t; })()",
        )
        .await
        .unwrap();
    tab.screenshot(&shots.join("authorized.png")).await.unwrap();
    let outcome = outcome.as_str().unwrap_or_default().to_owned();
    assert!(
        outcome.contains("Logout") && !outcome.contains("Auth Error"),
        "Swagger UI did not get a token: {outcome}\n{}",
        authz.logs()
    );
    tab.click(".auth-btn-wrapper .btn-done").await.unwrap();

    // "Try it out" on the client list, then "Execute".
    tab.click(&format!("{LIST} .opblock-summary-path"))
        .await
        .unwrap();
    tab.click(&format!("{LIST} .try-out__btn")).await.unwrap();
    tab.click(&format!("{LIST} .btn.execute")).await.unwrap();
    let shown = tab
        .wait_for(&format!(
            "(() => {{ const r = document.querySelector({}); \
             return r && r.innerText.includes('demo-client') && r.innerText; }})()",
            serde_json::Value::from(format!("{LIST} .live-responses-table"))
        ))
        .await;
    tab.screenshot(&shots.join("try-it-out.png")).await.unwrap();
    let shown = match shown {
        Ok(v) => v,
        Err(e) => {
            let block = tab
                .eval(&format!(
                    "(() => {{ const b = document.querySelector({}); return b ? b.innerText : 'no block'; }})()",
                    serde_json::Value::from(LIST)
                ))
                .await
                .unwrap_or_default();
            panic!("no client list shown: {e}\n{block}\n{}", authz.logs());
        }
    };
    let shown = shown.as_str().unwrap_or_default();
    assert!(shown.contains("200"), "{shown}");
    assert!(shown.contains("\"client_id\": \"demo-client\""), "{shown}");
    assert!(
        !shown.contains("client_secret\""),
        "no secret in a listing: {shown}"
    );
    chromium.close().await;
}
