//! The login and consent pages in a real headless Chromium (Debian's `chromium`, which
//! `.ci/run` installs): it renders both pages, saves screenshots, types into the form,
//! presses the buttons and lands at the client's redirect URI with a code.
//!
//! authz is the fake `LoginFlow` here: its `AcceptLogin` answer sends the browser to the
//! consent page and its `AcceptConsent` answer to a callback listener of the test, as the
//! real authz would after issuing a code. Chromium is driven by the shared `browser-test`
//! crate (DevTools protocol on `--remote-debugging-pipe`). Without Chromium the test says
//! so and passes.

use std::path::Path;
use std::sync::{Arc, Mutex};

use browser_test::{Chromium, find_chromium};
use proto::authz::v1::{ConsentRequest, LoginRequest};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::fake_authz::{Call, client};
use crate::harness::{PASSWORD, start};

/// Serves the client's redirect URI: records each request line, answers a small page.
async fn callback_listener() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && head.len() < 16_384 {
                    if stream.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head);
                log.lock()
                    .unwrap()
                    .push(head.lines().next().unwrap_or_default().to_owned());
                let body = "<!doctype html><title>Demo App</title><h1>Signed in to Demo App</h1>";
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    (base, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_and_consent_in_chromium() {
    let Some(binary) = find_chromium() else {
        println!(
            "SKIPPED login_and_consent_in_chromium: Chromium not found on PATH \
             (install Debian's `chromium`, as .ci/run does, or set CHROMIUM=/path/to/chrome)"
        );
        return;
    };
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("idp-browser");
    std::fs::create_dir_all(&shots).unwrap();

    let db = storage::testing::TestDatabase::sqlite(&idp::MIGRATIONS)
        .await
        .unwrap();
    let idp = start(db, |_| {}).await;
    let demo = idp.user("demo").await;
    let (client_base, requests) = callback_listener().await;
    let scopes: Vec<String> = ["openid", "profile", "email"].map(String::from).into();
    idp.authz.add_login(
        LoginRequest {
            challenge: "browser-login".into(),
            client: client("Demo App"),
            requested_scopes: scopes.clone(),
            ..LoginRequest::default()
        },
        &format!("{}/consent?consent_challenge=browser-consent", idp.url),
    );
    let redirect = format!("{client_base}/callback?code=SplxlOBeZQQYbYS6WxSbIA&state=af0ifjsldkj");
    idp.authz.add_consent(
        ConsentRequest {
            challenge: "browser-consent".into(),
            client: client("Demo App"),
            subject: demo.id.clone(),
            requested_scopes: scopes,
            ..ConsentRequest::default()
        },
        &redirect,
    );

    let mut chromium = Chromium::launch(&binary, &shots.join("chromium.log"))
        .await
        .unwrap();
    let mut tab = chromium.new_tab().await.unwrap();

    // The login page, on a desktop and a phone-sized screen.
    tab.viewport(1024, 720, false).await.unwrap();
    tab.navigate(&format!("{}/login?login_challenge=browser-login", idp.url))
        .await
        .unwrap();
    tab.wait_for("document.readyState === 'complete' && !!document.getElementById('password')")
        .await
        .unwrap();
    assert_eq!(tab.eval("document.title").await.unwrap(), json!("Sign in"));
    assert_eq!(
        tab.eval("document.documentElement.lang").await.unwrap(),
        json!("en")
    );
    assert_eq!(
        tab.eval("document.activeElement.id").await.unwrap(),
        json!("username"),
        "the username field has the focus"
    );
    tab.screenshot(&shots.join("login.png")).await.unwrap();
    tab.viewport(390, 844, true).await.unwrap();
    assert_eq!(
        tab.eval("document.documentElement.scrollWidth <= 390")
            .await
            .unwrap(),
        json!(true),
        "no horizontal scrolling on a phone"
    );
    tab.screenshot(&shots.join("login-mobile.png"))
        .await
        .unwrap();
    tab.viewport(1024, 720, false).await.unwrap();

    // Type and press "Sign in": the consent page comes next.
    tab.type_into("#username", "demo").await.unwrap();
    tab.type_into("#password", PASSWORD).await.unwrap();
    tab.click("button[value=login]").await.unwrap();
    tab.wait_for(
        "location.pathname === '/consent' && document.readyState === 'complete' \
         && !!document.querySelector('button[value=allow]')",
    )
    .await
    .unwrap();
    let text = tab.eval("document.body.innerText").await.unwrap();
    let text = text.as_str().unwrap();
    assert!(text.contains("Demo App"), "{text}");
    assert!(text.contains("See your email address"), "{text}");
    assert!(text.contains("Signed in as demo"), "{text}");
    tab.screenshot(&shots.join("consent.png")).await.unwrap();

    // The session cookie as the browser keeps it.
    let cookies = tab.browser().cookies().await.unwrap();
    let session = cookies
        .iter()
        .find(|c| c["name"] == "idp_session")
        .expect("an idp_session cookie");
    assert_eq!(session["httpOnly"], json!(true));
    assert_eq!(session["sameSite"], json!("Lax"));
    assert_eq!(session["path"], json!("/"));

    // "Remember my decision" is on by default; Allow: back at the client's redirect URI
    // with the code.
    assert_eq!(
        tab.eval("document.getElementById('remember').checked")
            .await
            .unwrap(),
        json!(true)
    );
    tab.click("button[value=allow]").await.unwrap();
    let landed = tab
        .wait_for(&format!(
            "location.href.startsWith('{client_base}/callback') && document.readyState === 'complete' && location.href"
        ))
        .await
        .unwrap();
    assert_eq!(landed, json!(redirect));
    tab.screenshot(&shots.join("client-callback.png"))
        .await
        .unwrap();
    chromium.close().await;

    assert!(
        requests
            .lock()
            .unwrap()
            .iter()
            .any(|r| r.starts_with("GET /callback?code=SplxlOBeZQQYbYS6WxSbIA&state=af0ifjsldkj ")),
        "{:?}",
        requests.lock().unwrap()
    );
    let calls = idp.authz.calls();
    assert!(
        matches!(&calls[0], Call::AcceptLogin(a) if a.subject == demo.id && a.amr == ["pwd"]),
        "{calls:?}"
    );
    assert!(
        matches!(&calls[1], Call::AcceptConsent(a) if a.remember && a.granted_scopes.len() == 3),
        "{calls:?}"
    );
    println!("screenshots in {}", shots.display());
}

/// upstream sign-in: the login page with a provider button and the first-login setup step
/// in Chromium, against the local OpenID provider stand-in; screenshots kept like above.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_button_and_setup_step_in_chromium() {
    let Some(binary) = find_chromium() else {
        println!(
            "SKIPPED provider_button_and_setup_step_in_chromium: Chromium not found on PATH \
             (install Debian's `chromium`, as .ci/run does, or set CHROMIUM=/path/to/chrome)"
        );
        return;
    };
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("idp-browser");
    std::fs::create_dir_all(&shots).unwrap();
    let op = crate::upstream_fakes::FakeOp::start().await;
    op.add_user(
        "up-erin",
        json!({"preferred_username": "erin", "email": "erin@corp.example", "email_verified": true, "name": "Erin"}),
    );
    // The upstream redirects to public_url, so idp listens where public_url says.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let db = storage::testing::TestDatabase::sqlite(&idp::MIGRATIONS)
        .await
        .unwrap();
    let issuer = op.issuer.clone();
    let idp = start(db, move |c| {
        c.http = runtime::ListenConfig::loopback(port);
        c.public_url = format!("http://127.0.0.1:{port}").parse().unwrap();
        c.upstreams.providers.insert(
            "corp".into(),
            idp::upstream::ProviderConfig {
                kind: idp::upstream::ProviderKind::Oidc,
                display_name: "Demo Corp SSO".into(),
                issuer: Some(issuer.parse().unwrap()),
                client_id: crate::upstream_fakes::CLIENT_ID.into(),
                client_secret: Some(config::Secret::new(
                    crate::upstream_fakes::CLIENT_SECRET.into(),
                )),
                ..idp::upstream::ProviderConfig::default()
            },
        );
    })
    .await;
    let (client_base, requests) = callback_listener().await;
    let redirect = format!("{client_base}/callback?code=upstream-code&state=xyz");
    idp.authz.add_login(
        LoginRequest {
            challenge: "browser-upstream".into(),
            client: client("Demo App"),
            ..LoginRequest::default()
        },
        &redirect,
    );

    let mut chromium = Chromium::launch(&binary, &shots.join("chromium-upstream.log"))
        .await
        .unwrap();
    let mut tab = chromium.new_tab().await.unwrap();
    tab.viewport(1024, 720, false).await.unwrap();
    tab.navigate(&format!(
        "{}/login?login_challenge=browser-upstream",
        idp.url
    ))
    .await
    .unwrap();
    tab.wait_for(
        "document.readyState === 'complete' && !!document.getElementById('provider-corp')",
    )
    .await
    .unwrap();
    let text = tab
        .eval("document.getElementById('provider-corp').innerText")
        .await
        .unwrap();
    assert!(
        text.as_str()
            .unwrap()
            .contains("Sign in with Demo Corp SSO"),
        "{text}"
    );
    tab.screenshot(&shots.join("login-with-providers.png"))
        .await
        .unwrap();
    tab.viewport(390, 844, true).await.unwrap();
    assert_eq!(
        tab.eval("document.documentElement.scrollWidth <= 390")
            .await
            .unwrap(),
        json!(true),
        "no horizontal scrolling on a phone"
    );
    tab.screenshot(&shots.join("login-with-providers-mobile.png"))
        .await
        .unwrap();
    tab.viewport(1024, 720, false).await.unwrap();

    // The button: off to the provider, which signs erin in and sends her back to the setup.
    tab.click("#provider-corp").await.unwrap();
    tab.wait_for(
        "location.pathname === '/upstream/setup' && document.readyState === 'complete' \
         && !!document.getElementById('username')",
    )
    .await
    .unwrap();
    assert_eq!(
        tab.eval("document.getElementById('username').value")
            .await
            .unwrap(),
        json!("erin")
    );
    assert_eq!(
        tab.eval("document.getElementById('email').value")
            .await
            .unwrap(),
        json!("erin@corp.example")
    );
    tab.screenshot(&shots.join("upstream-setup.png"))
        .await
        .unwrap();
    tab.click("button[value=create]").await.unwrap();
    let landed = tab
        .wait_for(&format!(
            "location.href.startsWith('{client_base}/callback') && document.readyState === 'complete' && location.href"
        ))
        .await
        .unwrap();
    assert_eq!(landed, json!(redirect));
    chromium.close().await;
    assert!(!requests.lock().unwrap().is_empty());
    let erin = idp.users.get("erin").await.unwrap();
    let calls = idp.authz.calls();
    assert!(
        matches!(&calls[0], Call::AcceptLogin(a) if a.subject == erin.id && a.amr == ["fed"]),
        "{calls:?}"
    );
    println!("screenshots in {}", shots.display());
}
