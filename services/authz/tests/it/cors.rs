//! CORS for browser-based clients on the token, userinfo and revocation endpoints
//! (WHATWG Fetch §3.2): preflights, allowed origins (the redirect URIs' origins and the
//! client's `allowed_origins`) answered with `Access-Control-Allow-Origin` and
//! `Vary: Origin`, other origins refused with `invalid_request` and no CORS headers,
//! `Access-Control-Allow-Credentials` never; discovery and JWKS readable from anywhere.

use std::sync::Arc;
use std::time::Duration;

use authz::clients::Clients;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;
use storage::Database;
use storage::testing::TestDatabase;

use crate::flow_env::*;

/// The origin of `web`'s redirect URI [`WEB_CB`].
const RP: &str = "https://rp.example.test";
/// An origin no client allows.
const EVIL: &str = "https://evil.example.test";
/// `spa`'s explicit allowed origin (its redirect URI is on https://spa.example.test).
const SPA_EXTRA: &str = "https://app.example.test";

/// Asserts the actual-response CORS headers for an allowed `origin`.
fn assert_allowed(headers: &HeaderMap, origin: &str) {
    assert_eq!(
        headers
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap()),
        Some(origin),
        "{headers:?}"
    );
    assert!(
        headers
            .get_all("vary")
            .iter()
            .any(|v| v.to_str().unwrap().contains("Origin")),
        "Vary: Origin: {headers:?}"
    );
    assert!(
        headers.get("access-control-allow-credentials").is_none(),
        "{headers:?}"
    );
}

/// Asserts that no CORS header was sent (the browser blocks the response).
fn assert_no_cors(headers: &HeaderMap) {
    for h in [
        "access-control-allow-origin",
        "access-control-allow-credentials",
        "access-control-allow-methods",
    ] {
        assert!(headers.get(h).is_none(), "{h}: {headers:?}");
    }
}

/// POST `path` with `form`, `Origin: origin` (if any) and Basic credentials (if any).
async fn post(
    env: &Env,
    path: &str,
    origin: Option<&str>,
    auth: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Value) {
    let mut req = env
        .http
        .post(format!("http://{}{path}", env.addrs.http))
        .form(form);
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    if let Some((id, secret)) = auth {
        req = req.header("authorization", basic(id, secret));
    }
    let res = req.send().await.unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    (status, headers, res.json().await.unwrap_or(Value::Null))
}

async fn userinfo(env: &Env, origin: Option<&str>, token: &str) -> (StatusCode, HeaderMap, Value) {
    let mut req = env
        .http
        .get(format!("http://{}/userinfo", env.addrs.http))
        .header("authorization", format!("Bearer {token}"));
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    let res = req.send().await.unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    (status, headers, res.json().await.unwrap_or(Value::Null))
}

async fn preflight(env: &Env, path: &str, origin: &str) -> (StatusCode, HeaderMap) {
    let res = env
        .http
        .request(
            reqwest::Method::OPTIONS,
            format!("http://{}{path}", env.addrs.http),
        )
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap();
    (res.status(), res.headers().clone())
}

async fn cors_on_token_userinfo_and_revocation(db: TestDatabase) {
    let env = start(&db).await;
    let scope = "openid profile offline_access";

    // Preflights: answered for an origin some client allows with methods, headers and
    // max age (which client is checked on the actual request), never with credentials.
    for (path, methods) in [
        ("/token", "POST"),
        ("/revoke", "POST"),
        ("/userinfo", "GET, POST"),
    ] {
        let (status, headers) = preflight(&env, path, RP).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{path}");
        assert_eq!(headers["access-control-allow-origin"], RP, "{path}");
        assert_eq!(headers["access-control-allow-methods"], methods, "{path}");
        let allowed = headers["access-control-allow-headers"].to_str().unwrap();
        assert!(
            allowed.contains("Authorization") && allowed.contains("Content-Type"),
            "{path}: {allowed}"
        );
        assert_eq!(headers["access-control-max-age"], "600", "{path}");
        assert!(headers["vary"].to_str().unwrap().contains("Origin"));
        assert!(headers.get("access-control-allow-credentials").is_none());
        // An origin no client allows, another port, an opaque origin (sandboxed frames,
        // file:): no CORS headers, the browser does not send the request.
        for origin in [EVIL, "https://rp.example.test:8443", SPA_EXTRA, "null"] {
            let (status, headers) = preflight(&env, path, origin).await;
            assert_eq!(status, StatusCode::NO_CONTENT, "{path} {origin}");
            assert_eq!(headers["allow"], methods, "{path}");
            assert_no_cors(&headers);
        }
    }

    // Token endpoint: the allowed origin (web's redirect URI's) gets the headers on the
    // token response.
    let mut browser = Browser::new(&env);
    let (code, verifier) = env.sign_in(&mut browser, "web", scope, "alice", "s1").await;
    let redeem = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", WEB_CB),
        ("code_verifier", verifier.as_str()),
    ];
    // Another origin is refused before the code is looked at: the code stays usable.
    let (status, headers, body) =
        post(&env, "/token", Some(EVIL), Some(("web", SECRET)), &redeem).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_request", "{body}");
    assert!(
        body["error_description"].as_str().unwrap().contains(EVIL),
        "{body}"
    );
    assert_no_cors(&headers);
    let (status, headers, tokens) =
        post(&env, "/token", Some(RP), Some(("web", SECRET)), &redeem).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_allowed(&headers, RP);
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();

    // Errors of an identified client carry the headers too (the page can read them);
    // a failed client authentication identifies no client and carries none.
    let unknown = [
        ("grant_type", "refresh_token"),
        ("refresh_token", "no-such-refresh-token"),
    ];
    let (status, headers, body) =
        post(&env, "/token", Some(RP), Some(("web", SECRET)), &unknown).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant", "{body}");
    assert_allowed(&headers, RP);
    let (status, headers, body) =
        post(&env, "/token", Some(RP), Some(("web", "wrong")), &redeem).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_client", "{body}");
    assert_no_cors(&headers);
    // Without Origin (a server-side client) there is nothing to say.
    let (status, headers, body) = post(
        &env,
        "/token",
        None,
        Some(("web", SECRET)),
        &[("grant_type", "refresh_token"), ("refresh_token", "nope")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_no_cors(&headers);
    assert!(
        !headers
            .get_all("vary")
            .iter()
            .any(|v| v.to_str().unwrap().contains("Origin"))
    );

    // Userinfo: the access token's client decides.
    let (status, headers, body) = userinfo(&env, Some(RP), &access).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["sub"], "alice");
    assert_allowed(&headers, RP);
    let (status, headers, body) = userinfo(&env, Some(EVIL), &access).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_request", "{body}");
    assert_no_cors(&headers);
    let (status, headers, _) = userinfo(&env, Some("https://rp.example.test:8443"), &access).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "another port is another origin"
    );
    assert_no_cors(&headers);
    let (status, headers, _) = userinfo(&env, None, &access).await;
    assert_eq!(status, StatusCode::OK);
    assert_no_cors(&headers);

    // Revocation: another origin changes nothing (a form post needs no preflight, so
    // the refusal is what protects the token); the allowed origin revokes.
    let revoke = [("token", refresh.as_str())];
    let (status, headers, body) =
        post(&env, "/revoke", Some(EVIL), Some(("web", SECRET)), &revoke).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_request", "{body}");
    assert_no_cors(&headers);
    assert!(env.active(&access).await, "the refused revocation revoked");
    let (status, headers, _) =
        post(&env, "/revoke", Some(RP), Some(("web", SECRET)), &revoke).await;
    assert_eq!(status, StatusCode::OK);
    assert_allowed(&headers, RP);
    assert!(!env.active(&access).await, "the grant is revoked");

    // An explicit allowed origin of the public client `spa`, besides its redirect URI's.
    let pool = Database::connect(db.config(), &authz::MIGRATIONS)
        .await
        .unwrap();
    let clients = Clients::new(pool, Arc::new(env.clock.clone()), Duration::ZERO);
    let (mut spa, _) = clients.get("spa").await.unwrap().unwrap();
    spa.allowed_origins = vec![SPA_EXTRA.to_owned()];
    clients.update(spa).await.unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", "spa"),
        ("code", "no-such-code"),
        ("redirect_uri", "https://spa.example.test/cb"),
        (
            "code_verifier",
            "a-verifier-of-the-right-length-0123456789abcdefghijk",
        ),
    ];
    let (status, headers) = preflight(&env, "/token", SPA_EXTRA).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(headers["access-control-allow-origin"], SPA_EXTRA);
    for origin in [SPA_EXTRA, "https://spa.example.test"] {
        let (status, headers, body) = post(&env, "/token", Some(origin), None, &form).await;
        assert_eq!(body["error"], "invalid_grant", "{origin}: {body}");
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_allowed(&headers, origin);
    }
    for origin in [RP, "http://spa.example.test", "null"] {
        let (_, headers, body) = post(&env, "/token", Some(origin), None, &form).await;
        assert_eq!(body["error"], "invalid_request", "{origin}: {body}");
        assert_no_cors(&headers);
    }

    // Public documents: any origin may read them.
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/jwks.json",
    ] {
        let res = env
            .http
            .get(format!("http://{}{path}", env.addrs.http))
            .header("origin", EVIL)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["access-control-allow-origin"], "*", "{path}");
        assert!(
            res.headers()
                .get("access-control-allow-credentials")
                .is_none()
        );
    }
}

storage::backend_tests!(
    authz::MIGRATIONS;
    cors_on_token_userinfo_and_revocation,
);

#[test]
fn allowed_origins_must_be_origins() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/authz.db", dir.path().display());
    let env = [("AUTHZ__DATABASE__URL", url.as_str())];
    let out = crate::cli::authz_in(dir.path(), &["migrate"], &env);
    assert_eq!(out.status.code(), Some(0));
    for bad in [
        "https://app.example.com/",
        "https://app.example.com/spa",
        "app.example.com",
        "ftp://app.example.com",
        "null",
    ] {
        let out = crate::cli::authz_in(
            dir.path(),
            &[
                "clients",
                "create",
                "--id",
                "spa",
                "--name",
                "SPA",
                "--auth-method",
                "none",
                "--grant-type",
                "authorization_code",
                "--allowed-origin",
                bad,
            ],
            &env,
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{bad}: {stderr}");
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with(&format!("error: allowed origin {bad:?} must be"))),
            "{stderr}"
        );
    }
    let out = crate::cli::authz_in(
        dir.path(),
        &[
            "clients",
            "create",
            "--id",
            "spa",
            "--name",
            "SPA",
            "--auth-method",
            "none",
            "--grant-type",
            "authorization_code",
            "--allowed-origin",
            "https://app.example.com:8443",
            "--allowed-origin",
            "http://localhost:3000",
            "--json",
        ],
        &env,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        shown["allowed_origins"],
        serde_json::json!(["https://app.example.com:8443", "http://localhost:3000"])
    );
}
