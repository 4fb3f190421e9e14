//! The account page through real authz and idp processes: a user signs in to a relying
//! party, edits the profile on idp's `/account` and sees it in a fresh ID token and at
//! userinfo; withdraws the app's access there, after which the app's refresh token is
//! refused; and deletes the account while authz is stopped, after which (authz started
//! again) every token of the user is dead: the deletion's revocation was queued and
//! delivered once authz was back.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use demo::browser::{Browser, Page};
use reqwest::{StatusCode, Url};
use serde_json::Value;

use crate::code_flow::{cli, pairs, random, sha256_b64, write};
use crate::harness::Service;
use crate::pair::{self, REDIRECT_URI, SCOPE};

const PASSWORD: &str = "correct horse battery staple";

/// The relying party's view of authz.
struct Rp {
    issuer: String,
    http: reqwest::Client,
    secret: String,
    introspector: String,
}

impl Rp {
    /// Signs in through authorize → idp (login and consent as needed) → code → tokens.
    async fn sign_in(&self, browser: &mut Browser) -> Value {
        let (state, verifier) = (random(), random());
        let url = Url::parse_with_params(
            &format!("{}/authorize", self.issuer),
            [
                ("response_type", "code"),
                ("client_id", "rp"),
                ("redirect_uri", REDIRECT_URI),
                ("scope", SCOPE),
                ("state", &state),
                ("nonce", &random()),
                ("code_challenge", &sha256_b64(verifier.as_bytes())),
                ("code_challenge_method", "S256"),
            ],
        )
        .unwrap();
        let first = browser.get(&url).await.unwrap();
        let (to, _) = browser
            .through_login(first, REDIRECT_URI, "alice", PASSWORD)
            .await
            .unwrap();
        let code = to
            .query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_else(|| panic!("no code in {to}"));
        let (status, tokens) = self
            .token(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", &verifier),
            ])
            .await;
        assert_eq!(status, 200, "{tokens}");
        tokens
    }

    async fn token(&self, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let res = self
            .http
            .post(format!("{}/token", self.issuer))
            .basic_auth("rp", Some(&self.secret))
            .form(form)
            .send()
            .await
            .unwrap();
        (res.status(), res.json().await.unwrap())
    }

    async fn refresh(&self, tokens: &Value) -> (StatusCode, Value) {
        self.token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ])
        .await
    }

    async fn active(&self, token: &str) -> bool {
        let res: Value = self
            .http
            .post(format!("{}/introspect", self.issuer))
            .basic_auth("introspector", Some(&self.introspector))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        res["active"].as_bool().unwrap()
    }

    async fn userinfo(&self, tokens: &Value) -> Value {
        self.http
            .get(format!("{}/userinfo", self.issuer))
            .bearer_auth(tokens["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// The claims of the ID token of `tokens` (its signature is checked in `code_flow`; here
/// only what it says matters).
fn id_claims(tokens: &Value) -> Value {
    let jwt = tokens["id_token"].as_str().unwrap();
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// Submits the form of `page` posting to `path` with `extra` fields.
async fn submit(browser: &mut Browser, page: &Page, path: &str, extra: &[(&str, &str)]) -> Page {
    let form = page.form(path).unwrap();
    browser.submit(&form, extra).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_page_profile_apps_and_deletion() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    let password = write(dir, "password", PASSWORD);
    let pair = pair::prepare(dir);
    let (issuer, idp_url, authz_env) = (&pair.issuer, &pair.idp_url, &pair.authz_env);
    let user = cli(
        "idp",
        &pair.idp_db,
        &[
            "users",
            "create",
            "--username",
            "alice",
            "--email",
            "alice@example.test",
            "--email-verified",
            "--name",
            "Alice Example",
            "--password-file",
            &password,
            "--json",
        ],
    );
    let sub = user["id"].as_str().unwrap().to_owned();

    let authz = Service::start("authz", dir, authz_env).await;
    let mut idp_env = pair.idp_env.clone();
    idp_env.extend(pairs(&[
        ("IDP__AUTHZ__TIMEOUT", "1s"),
        ("IDP__ACCOUNT__REVOCATION_RETRY", "200ms"),
        ("IDP__ACCOUNT__REVOCATION_RETRY_MAX", "500ms"),
    ]));
    let _idp = Service::start("idp", dir, &idp_env).await;
    let rp = Rp {
        issuer: issuer.clone(),
        http: reqwest::Client::new(),
        secret: pair.rp_secret.clone(),
        introspector: pair.introspector.clone(),
    };
    let mut browser = Browser::new(
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    );
    let account = Url::parse(&format!("{idp_url}/account")).unwrap();

    // 1. Sign in to the RP; the ID token has the profile as created.
    let first = rp.sign_in(&mut browser).await;
    assert_eq!(id_claims(&first)["name"], "Alice Example");

    // 2. The profile edited on the account page shows in a fresh ID token and userinfo.
    let page = browser.get(&account).await.unwrap();
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("Example RP"),
        "the app is listed: {}",
        page.body
    );
    let saved = submit(
        &mut browser,
        &page,
        "/account/profile",
        &[
            ("name", "Alice Liddell"),
            ("given_name", "Alice"),
            ("family_name", "Liddell"),
            ("locale", "en-GB"),
        ],
    )
    .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let fresh = rp.sign_in(&mut browser).await;
    let claims = id_claims(&fresh);
    assert_eq!(claims["sub"], sub.as_str());
    assert_eq!(claims["name"], "Alice Liddell");
    assert_eq!(claims["family_name"], "Liddell");
    assert_eq!(claims["locale"], "en-GB");
    let info = rp.userinfo(&fresh).await;
    assert_eq!(info["name"], "Alice Liddell", "{info}");

    // 3. Withdrawing the app's access on the account page kills its refresh tokens.
    let (status, _) = rp.refresh(&fresh).await;
    assert_eq!(status, 200, "alive before");
    let page = browser.get(&account).await.unwrap();
    let revoked = submit(&mut browser, &page, "/account/apps/revoke", &[]).await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER, "{}", revoked.body);
    let (status, refused) = rp.refresh(&first).await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"], "invalid_grant");
    let page = browser.get(&account).await.unwrap();
    assert!(!page.body.contains("Example RP"), "no longer listed");

    // 4. Signed in again (consent asked again), then the account is deleted while authz
    // is down: once authz is back, every token of the user is dead.
    let last = rp.sign_in(&mut browser).await;
    let access = last["access_token"].as_str().unwrap().to_owned();
    assert!(rp.active(&access).await);
    let page = browser.get(&account).await.unwrap();
    assert_eq!(authz.terminate(Duration::from_secs(15)).await, Some(0));
    let wrong = submit(
        &mut browser,
        &page,
        "/account/delete",
        &[("password", "nope")],
    )
    .await;
    assert_eq!(
        wrong.status,
        StatusCode::FORBIDDEN,
        "re-authentication is required"
    );
    let page = browser.get(&account).await.unwrap();
    let deleted = submit(
        &mut browser,
        &page,
        "/account/delete",
        &[("password", PASSWORD)],
    )
    .await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
    assert_eq!(
        browser.get(&account).await.unwrap().status,
        StatusCode::SEE_OTHER,
        "signed out"
    );
    let _authz = Service::start("authz", dir, authz_env).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while rp.active(&access).await {
        assert!(Instant::now() < deadline, "the access token stayed active");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, refused) = rp.refresh(&last).await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"], "invalid_grant");
}
