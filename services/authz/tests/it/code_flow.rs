//! The authorization code flow through the in-process server: /authorize and its errors
//! (RFC 6749 §4.1, OpenID Connect Core §3.1.2), the LoginFlow delegation as idp drives it,
//! codes and refresh tokens at /token (RFC 6749 §4.1.3, §6; RFC 7636; RFC 9700 §4.14),
//! ID tokens, userinfo (Core §5.3, RFC 6750) and RP-initiated logout.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proto::authz::v1::{GetLoginRequestRequest, RejectRequest, RevokeSubjectRequest};
use reqwest::StatusCode;
use serde_json::Value;
use storage::testing::TestDatabase;

use crate::flow_env::*;

/// Request parameters.
type Params<'a> = Vec<(&'a str, &'a str)>;

fn at_hash(token: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    URL_SAFE_NO_PAD.encode(&d.as_ref()[..16])
}

fn assert_token_error(
    (status, headers, body): &(StatusCode, reqwest::header::HeaderMap, Value),
    want_status: u16,
    want: &str,
) {
    assert_eq!(status.as_u16(), want_status, "{body}");
    assert_eq!(body["error"], want, "{body}");
    assert_eq!(headers["cache-control"], "no-store");
}

async fn code_flow_with_login_consent_sso_refresh_and_replay(db: TestDatabase) {
    let env = start(&db).await;
    let mut browser = Browser::new(&env);
    let (verifier, challenge) = pkce();
    let scope = "openid profile email api:read";

    // 1. /authorize sends the browser to idp's login page with a challenge and binds the
    //    pending request to the browser with a flow cookie.
    let seen = browser
        .authorize(&code_request(
            "web",
            WEB_CB,
            scope,
            &challenge,
            &[("login_hint", "alice"), ("ui_locales", "fr-CA fr en")],
        ))
        .await;
    let login = seen.redirected_to(&format!("{IDP_URL}/login"));
    let login_challenge = login["login_challenge"].clone();
    assert!(
        browser.jar.keys().any(|k| k.starts_with("authz_flow_")),
        "{:?}",
        browser.jar
    );
    assert!(!browser.jar.contains_key("authz_session"));

    // 2. idp reads the request.
    let request = env.get_login(&login_challenge).await.unwrap();
    assert_eq!(request.client.as_ref().unwrap().client_id, "web");
    assert_eq!(request.client.as_ref().unwrap().name, "App web");
    assert!(!request.client.as_ref().unwrap().first_party);
    assert_eq!(
        request.requested_scopes,
        vec!["api:read", "email", "openid", "profile"]
    );
    assert_eq!(request.login_hint, "alice");
    assert_eq!(request.ui_locales, vec!["fr-CA", "fr", "en"]);
    assert!(request.prompt.is_empty());
    assert_eq!(request.max_age, None);
    assert_eq!(request.expires_at, env.now() + 600);

    // 3. idp accepts the login; the challenge is then used up.
    let auth_time = env.now();
    let back = env
        .accept_login(&login_challenge, "alice", "idp-sess-1", auth_time)
        .await
        .unwrap();
    assert!(
        back.starts_with(&format!("{ISSUER}/authorize/resume?request=")),
        "{back}"
    );
    assert_eq!(
        env.get_login(&login_challenge).await.unwrap_err().code(),
        tonic::Code::NotFound
    );
    assert_eq!(
        env.accept_login(&login_challenge, "alice", "idp-sess-1", auth_time)
            .await
            .unwrap_err()
            .code(),
        tonic::Code::NotFound
    );

    // 4. Back at authz: a session is set, then consent is asked at idp.
    let seen = browser.get(&back).await;
    let consent = seen.redirected_to(&format!("{IDP_URL}/consent"));
    assert!(browser.jar.contains_key("authz_session"));
    let consent_challenge = consent["consent_challenge"].clone();
    let asked = env.get_consent(&consent_challenge).await.unwrap();
    assert_eq!(asked.subject, "alice");
    assert_eq!(asked.client.unwrap().client_id, "web");
    assert!(asked.granted_scopes.is_empty(), "nothing remembered yet");
    assert_eq!(asked.requested_scopes.len(), 4);

    // 5. Consent (without api:read, remembered) → the code, with state and iss.
    let back = env
        .accept_consent(&consent_challenge, &["openid", "profile", "email"], true)
        .await
        .unwrap();
    let seen = browser.get(&back).await;
    let reply = seen.redirected_to(WEB_CB);
    assert_eq!(reply["state"], "st-123");
    assert_eq!(reply["iss"], ISSUER);
    assert!(!reply.contains_key("error"));
    let code = reply["code"].clone();
    assert!(code.len() >= 43, "{code}");
    assert!(
        !browser.jar.keys().any(|k| k.starts_with("authz_flow_")),
        "flow cookie cleared: {:?}",
        browser.jar
    );
    // The request is finished: resuming it again shows a page.
    browser.get(&back).await.assert_page(400);

    // 6. The code → tokens.
    let (status, headers, body) = env.redeem("web", &code, &verifier).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "email openid profile");
    assert_eq!(body["expires_in"], 600);
    let access = body["access_token"].as_str().unwrap().to_owned();
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    let id_token = body["id_token"].as_str().unwrap().to_owned();
    let keys = env.verifiers().await;
    let id = verify(&keys, &id_token, "JWT");
    assert_eq!(id["iss"], ISSUER);
    assert_eq!(id["sub"], "alice");
    assert_eq!(id["aud"], "web");
    assert_eq!(id["iat"], env.now());
    assert_eq!(id["exp"], env.now() + 300);
    assert_eq!(id["auth_time"], auth_time);
    assert_eq!(id["nonce"], "n-456");
    assert_eq!(id["amr"], serde_json::json!(["pwd"]));
    assert!(id.get("acr").is_none(), "no acr reported");
    assert!(id["sid"].as_str().unwrap().len() >= 22);
    assert_eq!(id["at_hash"], at_hash(&access));
    assert_eq!(id["name"], "User alice");
    assert_eq!(id["email"], "alice@example.test");
    assert_eq!(id["email_verified"], true);
    let at = verify(&keys, &access, "at+jwt");
    assert_eq!(at["sub"], "alice");
    assert_eq!(at["client_id"], "web");
    assert_eq!(at["scope"], "email openid profile");
    assert_eq!(at["aud"], serde_json::json!(["https://api.example.test"]));

    // 7. userinfo: GET with the header, POST with the form parameter.
    let (status, headers, info) = env.userinfo(&access).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(info["sub"], "alice");
    assert_eq!(info["name"], "User alice");
    assert_eq!(info["email"], "alice@example.test");
    let posted: Value = env
        .http
        .post(format!("http://{}/userinfo", env.addrs.http))
        .form(&[("access_token", access.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(posted, info);

    // 8. SSO: the same browser gets a code without seeing idp (the session is alive at
    //    idp, consent is remembered).
    env.clock.advance(30);
    let checks = env.idp.checks();
    let (verifier2, challenge2) = pkce();
    let seen = browser
        .authorize(&code_request(
            "web",
            WEB_CB,
            "openid email",
            &challenge2,
            &[],
        ))
        .await;
    let reply = seen.redirected_to(WEB_CB);
    assert_eq!(reply["iss"], ISSUER);
    assert_eq!(reply["state"], "st-123");
    assert_eq!(env.idp.checks(), checks + 1, "idp's session was checked");
    let code2 = reply["code"].clone();

    // Remembered consent belongs to one user and one client: the same user with another
    // client, and another user with the same client, are asked again.
    let (_, challenge3) = pkce();
    let seen = browser
        .authorize(&code_request(
            "opaque",
            WEB_CB,
            "openid email",
            &challenge3,
            &[],
        ))
        .await;
    seen.redirected_to(&format!("{IDP_URL}/consent"));
    let mut other = Browser::new(&env);
    let seen = other
        .authorize(&code_request(
            "web",
            WEB_CB,
            "openid email",
            &challenge3,
            &[],
        ))
        .await;
    let login = seen.redirected_to(&format!("{IDP_URL}/login"));
    let back = env
        .accept_login(&login["login_challenge"], "bob", "idp-sess-2", env.now())
        .await
        .unwrap();
    let consent = other
        .get(&back)
        .await
        .redirected_to(&format!("{IDP_URL}/consent"));
    let asked = env
        .get_consent(&consent["consent_challenge"])
        .await
        .unwrap();
    assert_eq!(asked.subject, "bob");
    assert!(
        asked.granted_scopes.is_empty(),
        "alice's consent is not bob's"
    );

    // 9. Refresh: rotated, same grant, original auth_time, no nonce.
    env.clock.advance(30);
    let (status, _, body) = env.refresh("web", &refresh).await;
    assert_eq!(status, 200, "{body}");
    let refresh2 = body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(refresh2, refresh);
    let access2 = body["access_token"].as_str().unwrap().to_owned();
    let id2 = verify(&keys, body["id_token"].as_str().unwrap(), "JWT");
    assert_eq!(id2["auth_time"], auth_time, "OIDC Core §12.2");
    assert_eq!(id2["iat"], env.now());
    assert_eq!(id2["sid"], id["sid"]);
    assert_eq!(id2["sub"], "alice");
    assert!(id2.get("nonce").is_none());
    assert_eq!(id2["at_hash"], at_hash(&access2));
    // A narrower scope for the access token; the refresh token keeps the grant's.
    let (status, _, body) = env
        .token(
            Some(("web", SECRET)),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh2),
                ("scope", "openid email"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "email openid");
    let refresh3 = body["refresh_token"].as_str().unwrap().to_owned();
    let (status, _, body) = env.refresh("web", &refresh3).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "email openid profile");
    let refresh4 = body["refresh_token"].as_str().unwrap().to_owned();
    let access4 = body["access_token"].as_str().unwrap().to_owned();
    assert!(env.active(&access4).await);

    // 10. Reusing a rotated refresh token revokes the family (RFC 9700 §4.14.2).
    let replay = env.refresh("web", &refresh).await;
    assert_token_error(&replay, 400, "invalid_grant");
    assert_token_error(&env.refresh("web", &refresh4).await, 400, "invalid_grant");
    for t in [&access, &access2, &access4] {
        assert!(!env.active(t).await, "revoked with its grant");
    }
    assert_eq!(env.userinfo(&access4).await.0, 401);

    // 11. The second code: redeemed once; replayed, it revokes what it gave.
    let (status, _, body) = env.redeem("web", &code2, &verifier2).await;
    assert_eq!(status, 200, "{body}");
    let access5 = body["access_token"].as_str().unwrap().to_owned();
    let refresh5 = body["refresh_token"].as_str().unwrap().to_owned();
    assert!(env.active(&access5).await);
    assert_token_error(
        &env.redeem("web", &code2, &verifier2).await,
        400,
        "invalid_grant",
    );
    assert!(!env.active(&access5).await, "RFC 6749 §4.1.2");
    assert_token_error(&env.refresh("web", &refresh5).await, 400, "invalid_grant");
}

async fn authorize_errors_before_the_redirect_uri_is_trusted_are_pages(db: TestDatabase) {
    let env = start(&db).await;
    let mut browser = Browser::new(&env);
    let (_, challenge) = pkce();
    let good = code_request("web", WEB_CB, "openid", &challenge, &[]);
    let without = |name: &str| -> Vec<(&str, &str)> {
        good.iter().copied().filter(|(k, _)| *k != name).collect()
    };
    let with = |name: &'static str, value: &'static str| -> Vec<(&str, &str)> {
        let mut p = without(name);
        p.push((name, value));
        p
    };
    let mut twice = good.clone();
    twice.push(("client_id", "web"));
    let mut twice_uri = good.clone();
    twice_uri.push(("redirect_uri", WEB_CB));
    for (case, params) in [
        ("no client_id", without("client_id")),
        ("unknown client", with("client_id", "ghost")),
        ("repeated client_id", twice),
        ("no redirect_uri", without("redirect_uri")),
        (
            "unregistered redirect_uri",
            with("redirect_uri", "https://evil.example.test/cb"),
        ),
        (
            "registered prefix, other path",
            with("redirect_uri", "https://rp.example.test/cb/x"),
        ),
        (
            "registered plus query",
            with("redirect_uri", "https://rp.example.test/cb?x=1"),
        ),
        (
            "another client's uri",
            with("redirect_uri", "https://spa.example.test/cb"),
        ),
        ("repeated redirect_uri", twice_uri),
    ] {
        let seen = browser.authorize(&params).await;
        seen.assert_page(400);
        assert!(
            seen.headers["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("default-src 'none'"),
            "{case}"
        );
        assert!(!seen.body.contains("evil.example.test"), "{case}");
    }
    // Unknown response type with a bad redirect URI: still a page.
    let mut p = with("redirect_uri", "https://evil.example.test/cb");
    p.retain(|(k, _)| *k != "response_type");
    p.push(("response_type", "token"));
    browser.authorize(&p).await.assert_page(400);
    // A POST that is not a form.
    let res = env
        .http
        .post(format!("http://{}/authorize", env.addrs.http))
        .json(&serde_json::json!({"client_id": "web"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.headers().get("location").is_none());
    // Loopback redirect URIs may change port only (RFC 8252 §7.3).
    let (_, c) = pkce();
    let native = code_request("web", "http://127.0.0.1:51004/native", "openid", &c, &[]);
    let seen = browser.authorize(&native).await;
    seen.redirected_to(&format!("{IDP_URL}/login"));
    let native = code_request("web", "http://127.0.0.1:51004/other", "openid", &c, &[]);
    browser.authorize(&native).await.assert_page(400);
}

async fn authorize_errors_after_trust_are_redirected_with_state_and_iss(db: TestDatabase) {
    let env = start(&db).await;
    let mut browser = Browser::new(&env);
    let (_, challenge) = pkce();
    let base = code_request("web", WEB_CB, "openid", &challenge, &[]);
    let edit = |remove: &[&str], add: &[(&'static str, &'static str)]| -> Vec<(&str, &str)> {
        let mut p: Vec<(&str, &str)> = base
            .iter()
            .copied()
            .filter(|(k, _)| !remove.contains(k))
            .collect();
        p.extend_from_slice(add);
        p
    };
    let long = "x".repeat(3000);
    let long: &'static str = Box::leak(long.into_boxed_str());
    let cases: Vec<(&str, Params<'_>, &str)> = vec![
        (
            "no response_type",
            edit(&["response_type"], &[]),
            "invalid_request",
        ),
        (
            "token",
            edit(&["response_type"], &[("response_type", "token")]),
            "unsupported_response_type",
        ),
        (
            "hybrid",
            edit(&["response_type"], &[("response_type", "code id_token")]),
            "unsupported_response_type",
        ),
        (
            "no PKCE",
            edit(&["code_challenge", "code_challenge_method"], &[]),
            "invalid_request",
        ),
        (
            "plain PKCE",
            edit(
                &["code_challenge_method"],
                &[("code_challenge_method", "plain")],
            ),
            "invalid_request",
        ),
        (
            "PKCE method omitted (plain)",
            edit(&["code_challenge_method"], &[]),
            "invalid_request",
        ),
        (
            "malformed challenge",
            edit(&["code_challenge"], &[("code_challenge", "too-short")]),
            "invalid_request",
        ),
        ("no scope", edit(&["scope"], &[]), "invalid_scope"),
        (
            "scope not allowed",
            edit(&["scope"], &[("scope", "openid admin")]),
            "invalid_scope",
        ),
        (
            "malformed scope",
            edit(&["scope"], &[("scope", "openid  email")]),
            "invalid_scope",
        ),
        (
            "repeated scope",
            edit(&[], &[("scope", "openid")]),
            "invalid_request",
        ),
        (
            "prompt none with login",
            edit(&[], &[("prompt", "none login")]),
            "invalid_request",
        ),
        (
            "unknown prompt",
            edit(&[], &[("prompt", "maybe")]),
            "invalid_request",
        ),
        (
            "select_account",
            edit(&[], &[("prompt", "select_account")]),
            "account_selection_required",
        ),
        (
            "prompt none, no session",
            edit(&[], &[("prompt", "none")]),
            "login_required",
        ),
        (
            "negative max_age",
            edit(&[], &[("max_age", "-1")]),
            "invalid_request",
        ),
        (
            "fragment mode",
            edit(&[], &[("response_mode", "fragment")]),
            "invalid_request",
        ),
        (
            "request_uri",
            edit(&[], &[("request_uri", "https://rp.example.test/r")]),
            "request_uri_not_supported",
        ),
        (
            "bad id_token_hint",
            edit(&[], &[("id_token_hint", "not.a.jwt")]),
            "invalid_request",
        ),
        (
            "nonce too long",
            edit(&["nonce"], &[("nonce", long)]),
            "invalid_request",
        ),
    ];
    for (case, params, error) in cases {
        let seen = browser.authorize(&params).await;
        let reply = seen.redirected_to(WEB_CB);
        assert_eq!(
            reply.get("error").map(String::as_str),
            Some(error),
            "{case}"
        );
        assert_eq!(reply["state"], "st-123", "{case}");
        assert_eq!(reply["iss"], ISSUER, "{case}");
        assert!(!reply.contains_key("code"), "{case}");
        assert_eq!(seen.headers["cache-control"], "no-store");
    }

    // JAR (RFC 9101): a request object replaces the query, so its redirect URI is not
    // trusted until it verifies; an unverifiable one (here unsigned) is an error page
    // naming invalid_request_object, never a redirect.
    let seen = browser
        .authorize(&edit(&[], &[("request", "e30.e30.")]))
        .await;
    assert_eq!(seen.status, 400, "{seen:?}");
    assert!(seen.body.contains("invalid_request_object"), "{seen:?}");

    // A client that may not use the code flow.
    let (_, c) = pkce();
    let seen = browser
        .authorize(&code_request("m2m", WEB_CB, "openid", &c, &[]))
        .await;
    let reply = seen.redirected_to(WEB_CB);
    assert_eq!(reply["error"], "unauthorized_client");
    assert_eq!(reply["iss"], ISSUER);

    // No state in the request: none in the response, iss still there.
    let seen = browser
        .authorize(&edit(&["state", "response_type"], &[]))
        .await;
    let reply = seen.redirected_to(WEB_CB);
    assert_eq!(reply["error"], "invalid_request");
    assert!(!reply.contains_key("state"));
    assert_eq!(reply["iss"], ISSUER);

    // form_post: an auto-submitting form to the redirect URI, with the same parameters.
    let seen = browser
        .authorize(&edit(
            &["response_type"],
            &[("response_mode", "form_post"), ("response_type", "token")],
        ))
        .await;
    assert_eq!(seen.status, 200);
    assert!(seen.location().is_none());
    let csp = seen.headers["content-security-policy"].to_str().unwrap();
    let nonce = csp
        .split("script-src 'nonce-")
        .nth(1)
        .and_then(|r| r.split('\'').next())
        .unwrap();
    assert!(seen.body.contains(&format!("<script nonce=\"{nonce}\">")));
    assert!(seen.body.contains(&format!("action=\"{WEB_CB}\"")));
    assert!(
        seen.body
            .contains(r#"name="error" value="unsupported_response_type""#)
    );
    assert!(seen.body.contains(r#"name="state" value="st-123""#));
    assert!(
        seen.body
            .contains(&format!(r#"name="iss" value="{ISSUER}""#))
    );
    assert!(seen.body.contains("<noscript>"));
    assert_eq!(seen.headers["cache-control"], "no-store");

    // POST /authorize works like GET.
    let seen = browser
        .post(
            "/authorize",
            &edit(&["response_type"], &[("response_type", "token")]),
        )
        .await;
    let reply = seen.redirected_to(WEB_CB);
    assert_eq!(reply["error"], "unsupported_response_type");
    assert_eq!(reply["iss"], ISSUER);
}

async fn login_flow_api_rejections_and_browser_binding(db: TestDatabase) {
    let env = start(&db).await;
    let mut browser = Browser::new(&env);
    let (_, challenge) = pkce();
    let seen = browser
        .authorize(&code_request("web", WEB_CB, "openid", &challenge, &[]))
        .await;
    let login_challenge =
        seen.redirected_to(&format!("{IDP_URL}/login"))["login_challenge"].clone();
    let get = |auth: Option<(&'static str, &'static str)>| {
        as_client(
            GetLoginRequestRequest {
                login_challenge: login_challenge.clone(),
            },
            auth,
        )
    };
    let mut api = env.login_flow().await;
    for (auth, code) in [
        (None, tonic::Code::Unauthenticated),
        (Some(("idp", "wrong")), tonic::Code::Unauthenticated),
        (Some(("ghost", SECRET)), tonic::Code::Unauthenticated),
        (Some(("intruder", SECRET)), tonic::Code::PermissionDenied),
    ] {
        assert_eq!(
            api.get_login_request(get(auth)).await.unwrap_err().code(),
            code,
            "{auth:?}"
        );
    }
    assert_eq!(
        env.get_login("no-such-challenge").await.unwrap_err().code(),
        tonic::Code::NotFound
    );
    assert_eq!(
        env.get_login("").await.unwrap_err().code(),
        tonic::Code::InvalidArgument
    );
    // Bad AcceptLogin arguments leave the challenge usable.
    for (subject, session, time) in [
        ("", "s", env.now()),
        ("alice", "", env.now()),
        ("alice", "s", 0),
        ("alice", "s", env.now() + 3600),
    ] {
        assert_eq!(
            env.accept_login(&login_challenge, subject, session, time)
                .await
                .unwrap_err()
                .code(),
            tonic::Code::InvalidArgument
        );
    }
    // The browser comes back before idp answered: a page.
    let request_id = {
        let back = env.get_login(&login_challenge).await.unwrap();
        assert_eq!(back.challenge, login_challenge);
        browser
            .jar
            .keys()
            .find_map(|k| k.strip_prefix("authz_flow_"))
            .unwrap()
            .to_owned()
    };
    browser
        .get(&format!("/authorize/resume?request={request_id}"))
        .await
        .assert_page(400);

    // Rejection: unknown error codes are refused, access_denied goes to the client.
    let reject = |error: &str| {
        env.as_idp(RejectRequest {
            challenge: login_challenge.clone(),
            error: error.to_owned(),
            error_description: "The user said no".to_owned(),
        })
    };
    assert_eq!(
        api.reject_login(reject("bogus")).await.unwrap_err().code(),
        tonic::Code::InvalidArgument
    );
    let back = api
        .reject_login(reject("access_denied"))
        .await
        .unwrap()
        .into_inner()
        .redirect_to;
    assert_eq!(
        api.reject_login(reject("access_denied"))
            .await
            .unwrap_err()
            .code(),
        tonic::Code::NotFound,
        "single use"
    );
    // Another browser (no flow cookie) cannot use the resume link.
    let mut stranger = Browser::new(&env);
    stranger.get(&back).await.assert_page(400);
    let mut forged = Browser::new(&env);
    forged
        .jar
        .insert(format!("authz_flow_{request_id}"), "guess".into());
    forged.get(&back).await.assert_page(400);
    let reply = browser.get(&back).await.redirected_to(WEB_CB);
    assert_eq!(reply["error"], "access_denied");
    assert_eq!(reply["error_description"], "The user said no");
    assert_eq!(reply["state"], "st-123");
    assert_eq!(reply["iss"], ISSUER);

    // Consent rejected; a grant wider than the request refused.
    let (_, challenge) = pkce();
    let seen = browser
        .authorize(&code_request(
            "web",
            WEB_CB,
            "openid email",
            &challenge,
            &[],
        ))
        .await;
    let c = seen.redirected_to(&format!("{IDP_URL}/login"))["login_challenge"].clone();
    let back = env
        .accept_login(&c, "bob", "idp-bob", env.now())
        .await
        .unwrap();
    let seen = browser.get(&back).await;
    let consent = seen.redirected_to(&format!("{IDP_URL}/consent"))["consent_challenge"].clone();
    assert_eq!(
        env.accept_consent(&consent, &["openid", "profile"], false)
            .await
            .unwrap_err()
            .code(),
        tonic::Code::InvalidArgument
    );
    let back = api
        .reject_consent(env.as_idp(RejectRequest {
            challenge: consent.clone(),
            error: String::new(),
            error_description: String::new(),
        }))
        .await
        .unwrap()
        .into_inner()
        .redirect_to;
    assert_eq!(
        env.get_consent(&consent).await.unwrap_err().code(),
        tonic::Code::NotFound
    );
    let reply = browser.get(&back).await.redirected_to(WEB_CB);
    assert_eq!(reply["error"], "access_denied");
    assert_eq!(reply["iss"], ISSUER);

    // Challenges expire with the request.
    let (_, challenge) = pkce();
    let mut other = Browser::new(&env);
    let seen = other
        .authorize(&code_request("web", WEB_CB, "openid", &challenge, &[]))
        .await;
    let c = seen.redirected_to(&format!("{IDP_URL}/login"))["login_challenge"].clone();
    env.clock.advance(601);
    assert_eq!(
        env.get_login(&c).await.unwrap_err().code(),
        tonic::Code::NotFound
    );
    assert_eq!(
        env.accept_login(&c, "alice", "s", env.now())
            .await
            .unwrap_err()
            .code(),
        tonic::Code::NotFound
    );
}

async fn prompt_max_age_and_sso(db: TestDatabase) {
    let env = start(&db).await;
    let mut browser = Browser::new(&env);
    // A first-party client needs no consent.
    let (code, verifier) = env
        .sign_in(&mut browser, "first", "openid email", "alice", "idp-a")
        .await;
    let (status, _, body) = env.redeem("first", &code, &verifier).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("refresh_token").is_none(), "first may not refresh");
    let first_id = body["id_token"].as_str().unwrap().to_owned();
    let auth_time = env.now();

    // prompt=none with a live session: a code at once.
    env.clock.advance(100);
    let (_, c) = pkce();
    let seen = browser
        .authorize(&code_request(
            "first",
            WEB_CB,
            "openid",
            &c,
            &[("prompt", "none")],
        ))
        .await;
    assert!(seen.redirected_to(WEB_CB).contains_key("code"));
    // With an id_token_hint of the signed-in user: fine; of a browser without session: not.
    let hint = [("prompt", "none"), ("id_token_hint", first_id.as_str())];
    let seen = browser
        .authorize(&code_request("first", WEB_CB, "openid", &c, &hint))
        .await;
    assert!(seen.redirected_to(WEB_CB).contains_key("code"));
    let mut fresh = Browser::new(&env);
    let seen = fresh
        .authorize(&code_request("first", WEB_CB, "openid", &c, &hint))
        .await;
    assert_eq!(seen.redirected_to(WEB_CB)["error"], "login_required");

    // response_mode=form_post (OAuth 2.0 Form Post Response Mode §2): the code, state and
    // iss arrive as the fields of a form POSTed to the redirect URI, and the code works.
    let (form_verifier, form_challenge) = pkce();
    let seen = browser
        .authorize(&code_request(
            "first",
            WEB_CB,
            "openid",
            &form_challenge,
            &[("response_mode", "form_post")],
        ))
        .await;
    assert_eq!(seen.status, 200);
    assert!(seen.location().is_none());
    assert_eq!(seen.headers["cache-control"], "no-store");
    assert!(
        seen.body.contains(&format!("action=\"{WEB_CB}\"")),
        "{}",
        seen.body
    );
    assert!(seen.body.contains(r#"name="state" value="st-123""#));
    assert!(
        seen.body
            .contains(&format!(r#"name="iss" value="{ISSUER}""#))
    );
    let code = seen
        .body
        .split(r#"name="code" value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no code field in {}", seen.body))
        .to_owned();
    let (status, _, body) = env.redeem("first", &code, &form_verifier).await;
    assert_eq!(status, 200, "{body}");

    // prompt=none for a third-party client without remembered consent.
    let seen = browser
        .authorize(&code_request(
            "web",
            WEB_CB,
            "openid",
            &c,
            &[("prompt", "none")],
        ))
        .await;
    let reply = seen.redirected_to(WEB_CB);
    assert_eq!(reply["error"], "consent_required");
    assert_eq!(reply["state"], "st-123");
    assert_eq!(reply["iss"], ISSUER);
    // prompt=consent shows consent even for a first-party client.
    let seen = browser
        .authorize(&code_request(
            "first",
            WEB_CB,
            "openid",
            &c,
            &[("prompt", "consent")],
        ))
        .await;
    seen.redirected_to(&format!("{IDP_URL}/consent"));

    // max_age: the session is 100 s old.
    let seen = browser
        .authorize(&code_request(
            "first",
            WEB_CB,
            "openid",
            &c,
            &[("max_age", "200")],
        ))
        .await;
    assert!(seen.redirected_to(WEB_CB).contains_key("code"));
    let seen = browser
        .authorize(&code_request(
            "first",
            WEB_CB,
            "openid",
            &c,
            &[("max_age", "50"), ("prompt", "none")],
        ))
        .await;
    assert_eq!(seen.redirected_to(WEB_CB)["error"], "login_required");
    // max_age=0 forces a login; idp must report a fresh authentication.
    let (verifier, c) = pkce();
    let seen = browser
        .authorize(&code_request(
            "first",
            WEB_CB,
            "openid",
            &c,
            &[("max_age", "0")],
        ))
        .await;
    let challenge = seen.redirected_to(&format!("{IDP_URL}/login"))["login_challenge"].clone();
    let request = env.get_login(&challenge).await.unwrap();
    assert_eq!(request.max_age, Some(0));
    assert_eq!(request.subject_hint, "alice", "SSO hint");
    let stale = env
        .accept_login(&challenge, "alice", "idp-a", auth_time)
        .await
        .unwrap_err();
    assert_eq!(stale.code(), tonic::Code::FailedPrecondition);
    let back = env
        .accept_login(&challenge, "alice", "idp-a", env.now())
        .await
        .unwrap();
    let code = browser.get(&back).await.redirected_to(WEB_CB)["code"].clone();
    let (status, _, body) = env.redeem("first", &code, &verifier).await;
    assert_eq!(status, 200, "{body}");
    let keys = env.verifiers().await;
    let id_token = body["id_token"].as_str().unwrap();
    let id = verify(&keys, id_token, "JWT");
    assert_eq!(id["auth_time"], env.now(), "the new authentication");
    // max_age=0 again in the same second as that login: still a new login, no code.
    let seen = browser
        .authorize(&code_request(
            "first",
            WEB_CB,
            "openid",
            &c,
            &[("max_age", "0")],
        ))
        .await;
    seen.redirected_to(&format!("{IDP_URL}/login"));
    // This client signs with RS256 (the bounded signing pool), at_hash with SHA-256.
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(id_token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "JWT");
    assert_eq!(
        id["at_hash"],
        at_hash(body["access_token"].as_str().unwrap())
    );

    // prompt=login: to idp even with a session, and the login must be new. No session can
    // satisfy it, so idp is not asked whether its session lives (no CheckSession).
    let (_, c) = pkce();
    let checks = env.idp.checks();
    let seen = browser
        .authorize(&code_request(
            "first",
            WEB_CB,
            "openid",
            &c,
            &[("prompt", "login")],
        ))
        .await;
    assert_eq!(env.idp.checks(), checks, "no CheckSession for prompt=login");
    let challenge = seen.redirected_to(&format!("{IDP_URL}/login"))["login_challenge"].clone();
    assert_eq!(
        env.get_login(&challenge).await.unwrap().prompt,
        vec!["login"]
    );
    env.clock.advance(5);
    assert_eq!(
        env.accept_login(&challenge, "alice", "idp-a", env.now() - 10)
            .await
            .unwrap_err()
            .code(),
        tonic::Code::FailedPrecondition
    );

    // idp ended its session. A forced login still only hints authz's record of it, without
    // asking idp, and keeps the cookie...
    env.idp.kill_session("idp-a");
    let checks = env.idp.checks();
    let seen = browser
        .authorize(&code_request(
            "first",
            WEB_CB,
            "openid",
            &c,
            &[("max_age", "0")],
        ))
        .await;
    let challenge = seen.redirected_to(&format!("{IDP_URL}/login"))["login_challenge"].clone();
    assert_eq!(
        env.get_login(&challenge).await.unwrap().subject_hint,
        "alice"
    );
    assert_eq!(env.idp.checks(), checks, "no CheckSession for max_age=0");
    assert!(browser.jar.contains_key("authz_session"));
    // ...but any other request asks: authz's session no longer counts, and its cookie goes.
    let seen = browser
        .authorize(&code_request(
            "first",
            WEB_CB,
            "openid",
            &c,
            &[("prompt", "none")],
        ))
        .await;
    assert_eq!(seen.redirected_to(WEB_CB)["error"], "login_required");
    assert!(!browser.jar.contains_key("authz_session"));
}

async fn token_endpoint_errors_of_the_user_grants(db: TestDatabase) {
    let env = start(&db).await;
    let mut browser = Browser::new(&env);
    let (code, verifier) = env
        .sign_in(&mut browser, "web", "openid profile", "alice", "idp-a")
        .await;
    let ac = |extra: &[(&'static str, &str)]| -> Vec<(&'static str, String)> {
        let mut p = vec![("grant_type", "authorization_code".to_owned())];
        for (k, v) in extra {
            p.push((k, (*v).to_owned()));
        }
        p
    };
    let post = |auth: Option<(&'static str, &'static str)>, form: Vec<(&'static str, String)>| {
        let env = &env;
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            env.token(auth, &form).await
        }
    };
    let web = Some(("web", SECRET));
    let full = [
        ("code", code.as_str()),
        ("redirect_uri", WEB_CB),
        ("code_verifier", verifier.as_str()),
    ];
    let without = |name: &str| -> Vec<(&'static str, String)> {
        ac(&full
            .iter()
            .copied()
            .filter(|(k, _)| *k != name)
            .collect::<Vec<_>>())
    };
    for missing in ["code", "redirect_uri", "code_verifier"] {
        assert_token_error(&post(web, without(missing)).await, 400, "invalid_request");
    }
    let (other_verifier, _) = pkce();
    for (case, form, status, error) in [
        (
            "unknown code",
            ac(&[
                ("code", "0123456789abcdefnope"),
                ("redirect_uri", WEB_CB),
                ("code_verifier", &verifier),
            ]),
            400,
            "invalid_grant",
        ),
        (
            "wrong verifier",
            ac(&[
                ("code", &code),
                ("redirect_uri", WEB_CB),
                ("code_verifier", &other_verifier),
            ]),
            400,
            "invalid_grant",
        ),
        (
            "malformed verifier",
            ac(&[
                ("code", &code),
                ("redirect_uri", WEB_CB),
                ("code_verifier", "short"),
            ]),
            400,
            "invalid_request",
        ),
        (
            "other redirect_uri",
            ac(&[
                ("code", &code),
                ("redirect_uri", "http://127.0.0.1/native"),
                ("code_verifier", &verifier),
            ]),
            400,
            "invalid_grant",
        ),
    ] {
        let res = post(web, form).await;
        assert_token_error(&res, status, error);
        assert!(res.2["error_description"].is_string(), "{case}");
    }
    // Another client presents web's code.
    assert_token_error(
        &post(Some(("opaque", SECRET)), ac(&full)).await,
        400,
        "invalid_grant",
    );
    // A client that may not use the grant; bad client authentication.
    assert_token_error(
        &post(Some(("m2m", SECRET)), ac(&full)).await,
        400,
        "unauthorized_client",
    );
    assert_token_error(
        &post(Some(("web", "wrong")), ac(&full)).await,
        401,
        "invalid_client",
    );
    // None of the failures used the code up.
    let (status, _, body) = post(web, ac(&full)).await;
    assert_eq!(status, 200, "{body}");
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();

    // An expired code.
    let (code, verifier) = env
        .sign_in(&mut browser, "web", "openid profile", "alice", "idp-a")
        .await;
    env.clock.advance(61);
    assert_token_error(
        &env.redeem("web", &code, &verifier).await,
        400,
        "invalid_grant",
    );

    // Refresh errors.
    let rt = |extra: &[(&'static str, &str)]| -> Vec<(&'static str, String)> {
        let mut p = vec![("grant_type", "refresh_token".to_owned())];
        for (k, v) in extra {
            p.push((k, (*v).to_owned()));
        }
        p
    };
    assert_token_error(&post(web, rt(&[])).await, 400, "invalid_request");
    assert_token_error(
        &post(web, rt(&[("refresh_token", "unknown-token")])).await,
        400,
        "invalid_grant",
    );
    assert_token_error(
        &post(Some(("opaque", SECRET)), rt(&[("refresh_token", &refresh)])).await,
        400,
        "invalid_grant",
    );
    assert_token_error(
        &post(
            web,
            rt(&[
                ("refresh_token", &refresh),
                ("scope", "openid profile email"),
            ]),
        )
        .await,
        400,
        "invalid_scope",
    );
    assert_token_error(
        &post(Some(("first", SECRET)), rt(&[("refresh_token", &refresh)])).await,
        400,
        "unauthorized_client",
    );
    // None of those rotated it.
    let (status, _, body) = env.refresh("web", &refresh).await;
    assert_eq!(status, 200, "{body}");
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    // Refresh tokens expire.
    env.clock.advance(3601);
    assert_token_error(&env.refresh("web", &refresh).await, 400, "invalid_grant");

    // A disabled, then a deleted user: no refresh, no userinfo.
    let mut bobs = Browser::new(&env);
    let (code, verifier) = env
        .sign_in(&mut bobs, "web", "openid profile", "bob", "idp-b")
        .await;
    let (_, _, body) = env.redeem("web", &code, &verifier).await;
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    let access = body["access_token"].as_str().unwrap().to_owned();
    env.idp.user("bob", true);
    assert_token_error(&env.refresh("web", &refresh).await, 400, "invalid_grant");
    let (status, headers, _) = env.userinfo(&access).await;
    assert_eq!(status, 401);
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains(r#"error="invalid_token""#)
    );
    env.idp.user("bob", false);
    let (status, _, body) = env.refresh("web", &refresh).await;
    assert_eq!(status, 200, "enabled again: {body}");
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    env.idp.delete_user("bob");
    assert_token_error(&env.refresh("web", &refresh).await, 400, "invalid_grant");
    // Disabled at redemption time too.
    let (code, verifier) = env
        .sign_in(&mut browser, "web", "openid", "alice", "idp-a")
        .await;
    env.idp.user("alice", true);
    assert_token_error(
        &env.redeem("web", &code, &verifier).await,
        400,
        "invalid_grant",
    );
}

async fn public_client_and_opaque_tokens(db: TestDatabase) {
    let env = start(&db).await;
    let mut browser = Browser::new(&env);
    // A public client: authenticates with client_id only, gets rotating refresh tokens.
    let (verifier, challenge) = pkce();
    let spa_cb = "https://spa.example.test/cb";
    let seen = browser
        .authorize(&code_request(
            "spa",
            spa_cb,
            "openid profile",
            &challenge,
            &[],
        ))
        .await;
    let c = seen.redirected_to(&format!("{IDP_URL}/login"))["login_challenge"].clone();
    let back = env
        .accept_login(&c, "alice", "idp-a", env.now())
        .await
        .unwrap();
    let c = browser
        .get(&back)
        .await
        .redirected_to(&format!("{IDP_URL}/consent"))["consent_challenge"]
        .clone();
    let back = env
        .accept_consent(&c, &["openid", "profile"], false)
        .await
        .unwrap();
    let code = browser.get(&back).await.redirected_to(spa_cb)["code"].clone();
    let redeem = |verifier: String| {
        let env = &env;
        let code = code.clone();
        async move {
            env.token(
                None,
                &[
                    ("grant_type", "authorization_code"),
                    ("client_id", "spa"),
                    ("code", &code),
                    ("redirect_uri", spa_cb),
                    ("code_verifier", &verifier),
                ],
            )
            .await
        }
    };
    let (wrong, _) = pkce();
    assert_token_error(&redeem(wrong).await, 400, "invalid_grant");
    let (status, _, body) = redeem(verifier).await;
    assert_eq!(status, 200, "{body}");
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    let public_refresh = |token: String| {
        let env = &env;
        async move {
            env.token(
                None,
                &[
                    ("grant_type", "refresh_token"),
                    ("client_id", "spa"),
                    ("refresh_token", &token),
                ],
            )
            .await
        }
    };
    let (status, _, body) = public_refresh(refresh.clone()).await;
    assert_eq!(status, 200, "{body}");
    let next = body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(next, refresh, "rotated");
    assert_token_error(&public_refresh(refresh).await, 400, "invalid_grant");
    assert_token_error(&public_refresh(next).await, 400, "invalid_grant");
    // Remembered consent was not asked for: the next request asks again.
    let (_, challenge) = pkce();
    let seen = browser
        .authorize(&code_request(
            "spa",
            spa_cb,
            "openid profile",
            &challenge,
            &[],
        ))
        .await;
    seen.redirected_to(&format!("{IDP_URL}/consent"));

    // Opaque access tokens from a grant are deleted when the code is replayed, and
    // revoking a refresh token (RFC 7009) revokes its grant.
    let (code, verifier) = env
        .sign_in(&mut browser, "opaque", "openid", "alice", "idp-a")
        .await;
    let (status, _, body) = env.redeem("opaque", &code, &verifier).await;
    assert_eq!(status, 200, "{body}");
    let access = body["access_token"].as_str().unwrap().to_owned();
    assert!(!access.contains('.'), "opaque");
    assert!(env.active(&access).await);
    assert_eq!(env.userinfo(&access).await.0, 200);
    assert_token_error(
        &env.redeem("opaque", &code, &verifier).await,
        400,
        "invalid_grant",
    );
    assert!(!env.active(&access).await);

    let (code, verifier) = env
        .sign_in(&mut browser, "web", "openid", "alice", "idp-a")
        .await;
    let (_, _, body) = env.redeem("web", &code, &verifier).await;
    let access = body["access_token"].as_str().unwrap().to_owned();
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    let revoke = |id: &'static str| {
        let env = &env;
        let refresh = refresh.clone();
        async move {
            env.http
                .post(format!("http://{}/revoke", env.addrs.http))
                .header("authorization", basic(id, SECRET))
                .form(&[
                    ("token", refresh.as_str()),
                    ("token_type_hint", "refresh_token"),
                ])
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(
        revoke("opaque").await,
        400,
        "another client's refresh token: refused (RFC 7009 §2.1)"
    );
    assert!(env.active(&access).await, "left alone");
    assert!(env.active(&refresh).await, "the refresh token too");
    assert_eq!(revoke("web").await, 200);
    assert!(!env.active(&access).await);
    assert_token_error(&env.refresh("web", &refresh).await, 400, "invalid_grant");
}

async fn twenty_parallel_redemptions_and_refreshes_have_one_winner(db: TestDatabase) {
    let env = Arc::new(start(&db).await);
    let mut browser = Browser::new(&env);
    let (code, verifier) = env
        .sign_in(&mut browser, "web", "openid profile", "alice", "idp-a")
        .await;
    let results = futures_util::future::join_all((0..20).map(|_| {
        let env = Arc::clone(&env);
        let (code, verifier) = (code.clone(), verifier.clone());
        async move { env.redeem("web", &code, &verifier).await }
    }))
    .await;
    let winners: Vec<&Value> = results
        .iter()
        .filter(|(s, _, _)| *s == 200)
        .map(|(_, _, b)| b)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one redemption wins");
    for r in results.iter().filter(|(s, _, _)| *s != 200) {
        assert_token_error(r, 400, "invalid_grant");
    }
    // The losers were replays: what the winner got is revoked (RFC 6749 §4.1.2).
    let access = winners[0]["access_token"].as_str().unwrap();
    assert!(!env.active(access).await);

    let (code, verifier) = env
        .sign_in(&mut browser, "web", "openid profile", "alice", "idp-a")
        .await;
    let (status, _, body) = env.redeem("web", &code, &verifier).await;
    assert_eq!(status, 200, "{body}");
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    let results = futures_util::future::join_all((0..20).map(|_| {
        let env = Arc::clone(&env);
        let refresh = refresh.clone();
        async move { env.refresh("web", &refresh).await }
    }))
    .await;
    let winners = results.iter().filter(|(s, _, _)| *s == 200).count();
    assert_eq!(winners, 1, "exactly one refresh wins");
    for r in results.iter().filter(|(s, _, _)| *s != 200) {
        assert_token_error(r, 400, "invalid_grant");
    }
}

async fn userinfo_errors(db: TestDatabase) {
    let env = start(&db).await;
    let url = format!("http://{}/userinfo", env.addrs.http);
    let res = env.http.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["www-authenticate"], r#"Bearer realm="authz""#);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let (status, headers, body) = env.userinfo("not-a-token").await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_token");
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with(r#"Bearer realm="authz", error="invalid_token""#)
    );
    let res = env
        .http
        .get(format!("{url}?access_token=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );
    let res = env
        .http
        .post(&url)
        .header("authorization", "Bearer a")
        .form(&[("access_token", "b")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400, "token in two places");
    // A client_credentials token has no openid scope.
    let (status, _, body) = env
        .token(
            Some(("rs", SECRET)),
            &[("grant_type", "client_credentials"), ("scope", "api:read")],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, headers, body) = env.userinfo(body["access_token"].as_str().unwrap()).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"], "insufficient_scope");
    let challenge = headers["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains(r#"error="insufficient_scope""#),
        "{challenge}"
    );
    assert!(challenge.contains(r#"scope="openid""#), "{challenge}");
}

async fn rp_initiated_logout(db: TestDatabase) {
    let env = start(&db).await;
    let mut browser = Browser::new(&env);
    let (code, verifier) = env
        .sign_in(&mut browser, "web", "openid profile", "alice", "idp-a")
        .await;
    let (_, _, online) = env.redeem("web", &code, &verifier).await;
    let (code, verifier) = env
        .sign_in(
            &mut browser,
            "web",
            "openid offline_access",
            "alice",
            "idp-a",
        )
        .await;
    let (_, _, offline) = env.redeem("web", &code, &verifier).await;
    let id_token = online["id_token"].as_str().unwrap();
    let end = "/end_session";

    // Unregistered post_logout_redirect_uri, or a bad hint: a page, nothing ended.
    for query in [
        vec![
            ("id_token_hint", id_token),
            ("post_logout_redirect_uri", "https://evil.example.test/"),
        ],
        vec![("post_logout_redirect_uri", WEB_BYE)],
        vec![("id_token_hint", "x.y.z")],
        vec![("id_token_hint", id_token), ("client_id", "opaque")],
    ] {
        let q: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&query)
            .finish();
        browser.get(&format!("{end}?{q}")).await.assert_page(400);
    }
    assert!(env.idp.ended().is_empty());

    // Without a hint: the End-User is asked; a forged confirmation does nothing.
    let seen = browser
        .get(&format!(
            "/end_session?client_id=web&post_logout_redirect_uri={WEB_BYE}&state=s1"
        ))
        .await;
    assert_eq!(seen.status, 200);
    assert!(seen.body.contains("Sign out?"), "{}", seen.body);
    let csrf = seen
        .body
        .split(r#"name="csrf" value=""#)
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_owned();
    let seen = browser
        .post(
            "/end_session",
            &[("confirm", "yes"), ("csrf", "forged"), ("client_id", "web")],
        )
        .await;
    assert!(seen.body.contains("Sign out?"));
    assert!(env.idp.ended().is_empty());
    assert!(browser.jar.contains_key("authz_session"));

    // Confirmed: everything ends.
    let seen = browser
        .post(
            "/end_session",
            &[
                ("confirm", "yes"),
                ("csrf", &csrf),
                ("client_id", "web"),
                ("post_logout_redirect_uri", WEB_BYE),
                ("state", "s1"),
            ],
        )
        .await;
    let params = seen.redirected_to(WEB_BYE);
    assert_eq!(params["state"], "s1");
    assert_eq!(env.idp.ended(), vec!["idp-a".to_owned()]);
    assert!(!browser.jar.contains_key("authz_session"));
    // Session-bound tokens are revoked, offline ones are not.
    let online_refresh = online["refresh_token"].as_str().unwrap();
    assert_token_error(
        &env.refresh("web", online_refresh).await,
        400,
        "invalid_grant",
    );
    assert!(!env.active(online["access_token"].as_str().unwrap()).await);
    let (status, _, body) = env
        .refresh("web", offline["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(status, 200, "offline_access survives logout: {body}");
    // SSO is over.
    let (_, c) = pkce();
    let seen = browser
        .authorize(&code_request(
            "web",
            WEB_CB,
            "openid",
            &c,
            &[("prompt", "none")],
        ))
        .await;
    assert_eq!(seen.redirected_to(WEB_CB)["error"], "login_required");

    // With an id_token_hint of the signed-in user: no question asked.
    let mut browser = Browser::new(&env);
    let (code, verifier) = env
        .sign_in(&mut browser, "web", "openid", "bob", "idp-b")
        .await;
    let (_, _, body) = env.redeem("web", &code, &verifier).await;
    let hint = body["id_token"].as_str().unwrap();
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("id_token_hint", hint),
            ("post_logout_redirect_uri", WEB_BYE),
            ("state", "s2"),
        ])
        .finish();
    let seen = browser.get(&format!("/end_session?{q}")).await;
    assert_eq!(seen.redirected_to(WEB_BYE)["state"], "s2");
    assert_eq!(env.idp.ended().last().map(String::as_str), Some("idp-b"));
    // No redirect URI: a page saying so.
    let seen = browser.get("/end_session").await;
    assert_eq!(seen.status, 200);
    assert!(seen.body.contains("signed out"), "{}", seen.body);
}

async fn discovery_lists_the_code_flow(db: TestDatabase) {
    let env = start(&db).await;
    let doc: Value = env
        .http
        .get(format!(
            "http://{}/.well-known/openid-configuration",
            env.addrs.http
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["issuer"], ISSUER);
    assert_eq!(doc["authorization_endpoint"], format!("{ISSUER}/authorize"));
    assert_eq!(doc["userinfo_endpoint"], format!("{ISSUER}/userinfo"));
    assert_eq!(doc["end_session_endpoint"], format!("{ISSUER}/end_session"));
    assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(
        doc["response_modes_supported"],
        serde_json::json!(["query", "form_post"])
    );
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
    assert_eq!(
        doc["grant_types_supported"],
        serde_json::json!([
            "authorization_code",
            "client_credentials",
            "refresh_token",
            "urn:ietf:params:oauth:grant-type:token-exchange",
            "urn:ietf:params:oauth:grant-type:device_code"
        ])
    );
    assert_eq!(
        doc["prompt_values_supported"],
        serde_json::json!(["none", "login", "consent"])
    );
    assert_eq!(
        doc["subject_types_supported"],
        serde_json::json!(["public"])
    );
    for scope in ["openid", "profile", "email", "offline_access"] {
        assert!(
            doc["scopes_supported"]
                .as_array()
                .unwrap()
                .contains(&scope.into())
        );
    }
    for claim in ["sub", "auth_time", "nonce", "sid", "at_hash", "email"] {
        assert!(
            doc["claims_supported"]
                .as_array()
                .unwrap()
                .contains(&claim.into())
        );
    }
    assert!(
        doc["id_token_signing_alg_values_supported"]
            .as_array()
            .unwrap()
            .contains(&"RS256".into())
    );
}

/// `LoginFlow.RevokeSubject` (idp disabled or deleted the user): every grant of the
/// subject is revoked (refresh → invalid_grant; its JWT and opaque access tokens inactive
/// at introspection, RFC 7662 §2.2), its unredeemed codes die, its authz browser session
/// ends; other users keep theirs; only idp may call it; a repeat revokes nothing more.
async fn revoke_subject_signs_the_user_out_everywhere(db: TestDatabase) {
    let env = start(&db).await;
    let mut alice = Browser::new(&env);
    let (code, verifier) = env
        .sign_in(&mut alice, "web", "openid", "alice", "idp-a")
        .await;
    let (status, _, body) = env.redeem("web", &code, &verifier).await;
    assert_eq!(status, 200, "{body}");
    let jwt = body["access_token"].as_str().unwrap().to_owned();
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    let (code, verifier) = env
        .sign_in(&mut alice, "opaque", "openid", "alice", "idp-a")
        .await;
    let (status, _, body) = env.redeem("opaque", &code, &verifier).await;
    assert_eq!(status, 200, "{body}");
    let opaque = body["access_token"].as_str().unwrap().to_owned();
    let (pending_code, pending_verifier) = env
        .sign_in(&mut alice, "web", "openid", "alice", "idp-a")
        .await;
    let mut bob = Browser::new(&env);
    let (code, verifier) = env.sign_in(&mut bob, "web", "openid", "bob", "idp-b").await;
    let (_, _, body) = env.redeem("web", &code, &verifier).await;
    let bob_access = body["access_token"].as_str().unwrap().to_owned();
    let bob_refresh = body["refresh_token"].as_str().unwrap().to_owned();
    assert!(env.active(&jwt).await && env.active(&opaque).await);

    let mut api = env.login_flow().await;
    let request = || RevokeSubjectRequest {
        subject: "alice".into(),
    };
    let denied = api
        .revoke_subject(as_client(request(), None))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::Unauthenticated);
    let denied = api
        .revoke_subject(as_client(request(), Some(("web", SECRET))))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    let empty = api
        .revoke_subject(env.as_idp(RevokeSubjectRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(empty.code(), tonic::Code::InvalidArgument);
    assert!(env.active(&jwt).await, "refused calls change nothing");

    let done = api
        .revoke_subject(env.as_idp(request()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((done.grants_revoked, done.sessions_ended), (2, 1));
    assert!(!env.active(&jwt).await, "JWT access token denylisted");
    assert!(!env.active(&opaque).await, "opaque access token deleted");
    assert_token_error(&env.refresh("web", &refresh).await, 400, "invalid_grant");
    assert_token_error(
        &env.redeem("web", &pending_code, &pending_verifier).await,
        400,
        "invalid_grant",
    );
    // The authz browser session ended: the next request goes to idp's login page again.
    let (_, challenge) = pkce();
    alice
        .authorize(&code_request("web", WEB_CB, "openid", &challenge, &[]))
        .await
        .redirected_to(&format!("{IDP_URL}/login"));
    // Bob keeps everything.
    assert!(env.active(&bob_access).await);
    let (status, _, body) = env.refresh("web", &bob_refresh).await;
    assert_eq!(status, 200, "{body}");
    // A repeat (idp retrying) finds nothing left.
    let again = api
        .revoke_subject(env.as_idp(request()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((again.grants_revoked, again.sessions_ended), (0, 0));
}

storage::backend_tests!(
    authz::MIGRATIONS;
    code_flow_with_login_consent_sso_refresh_and_replay,
    authorize_errors_before_the_redirect_uri_is_trusted_are_pages,
    authorize_errors_after_trust_are_redirected_with_state_and_iss,
    login_flow_api_rejections_and_browser_binding,
    prompt_max_age_and_sso,
    token_endpoint_errors_of_the_user_grants,
    public_client_and_opaque_tokens,
    twenty_parallel_redemptions_and_refreshes_have_one_winner,
    userinfo_errors,
    rp_initiated_logout,
    discovery_lists_the_code_flow,
    revoke_subject_signs_the_user_out_everywhere,
);
