//! The Device Authorization Grant (RFC 8628) through authz's public HTTP API and the
//! `LoginFlow` device RPCs idp's verification page uses: the device authorization
//! endpoint and who may use it, user codes (wrong, expired, reused), polling
//! (`authorization_pending`, `slow_down` with a growing interval, `access_denied`,
//! `expired_token`) and single use of the device code, on SQLite and PostgreSQL.

use std::sync::Arc;
use std::time::Duration;

use authz::clients::{Clients, NewClient};
use domain::{GrantType, ScopeSet, TokenEndpointAuthMethod};
use proto::authz::v1::{AcceptDeviceRequest, GetDeviceRequestRequest, RejectDeviceRequest};
use reqwest::StatusCode;
use serde_json::Value;
use storage::Database;
use storage::testing::TestDatabase;

use crate::flow_env::*;

const GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// [`start`] plus the device clients: `tv` (public; device code and refresh token) and
/// `tvc` (confidential; device code only).
async fn start_tv(db: &TestDatabase) -> Env {
    let env = start(db).await;
    let pool = Database::connect(db.config(), &authz::MIGRATIONS)
        .await
        .unwrap();
    let clients = Clients::new(pool, Arc::new(env.clock.clone()), Duration::ZERO);
    let mut tv = client("tv");
    tv.auth_method = TokenEndpointAuthMethod::None;
    tv.redirect_uris = Vec::new();
    tv.grant_types = vec![GrantType::DeviceCode, GrantType::RefreshToken];
    clients
        .create(NewClient {
            client: tv,
            secret: None,
        })
        .await
        .unwrap();
    let mut tvc = client("tvc");
    tvc.redirect_uris = Vec::new();
    tvc.grant_types = vec![GrantType::DeviceCode];
    tvc.scopes = ScopeSet::parse("openid profile api:read").unwrap();
    clients
        .create(NewClient {
            client: tvc,
            secret: Some(SECRET.to_owned()),
        })
        .await
        .unwrap();
    env
}

/// `POST /device_authorization` with `form`, Basic credentials when `auth` is given.
async fn device_authorization(
    env: &Env,
    auth: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut req = env
        .http
        .post(format!("http://{}/device_authorization", env.addrs.http))
        .form(form);
    if let Some((id, secret)) = auth {
        req = req.header("authorization", basic(id, secret));
    }
    let res = req.send().await.unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    (status, headers, res.json().await.unwrap_or(Value::Null))
}

/// A device authorization of the public `tv` for `scope`: (device_code, user_code).
async fn start_device(env: &Env, scope: &str) -> (String, String) {
    let (status, _, body) =
        device_authorization(env, None, &[("client_id", "tv"), ("scope", scope)]).await;
    assert_eq!(status, 200, "{body}");
    (
        body["device_code"].as_str().unwrap().to_owned(),
        body["user_code"].as_str().unwrap().to_owned(),
    )
}

/// One poll of the public `tv`.
async fn poll(env: &Env, device_code: &str) -> (StatusCode, Value) {
    let (status, headers, body) = env
        .token(
            None,
            &[
                ("grant_type", GRANT),
                ("device_code", device_code),
                ("client_id", "tv"),
            ],
        )
        .await;
    assert_eq!(headers["cache-control"], "no-store");
    (status, body)
}

/// Asserts a poll's RFC 8628 §3.5 error.
async fn assert_poll_error(env: &Env, device_code: &str, error: &str) {
    let (status, body) = poll(env, device_code).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], error, "{body}");
}

async fn get_device(
    env: &Env,
    user_code: &str,
) -> Result<proto::authz::v1::DeviceRequest, tonic::Status> {
    env.login_flow()
        .await
        .get_device_request(env.as_idp(GetDeviceRequestRequest {
            user_code: user_code.to_owned(),
        }))
        .await
        .map(tonic::Response::into_inner)
}

async fn accept_device(env: &Env, user_code: &str, subject: &str) -> Result<(), tonic::Status> {
    env.idp.session("idp-session-1", subject);
    env.login_flow()
        .await
        .accept_device(env.as_idp(AcceptDeviceRequest {
            user_code: user_code.to_owned(),
            subject: subject.to_owned(),
            session_id: "idp-session-1".to_owned(),
            auth_time: env.now(),
            amr: vec!["pwd".into()],
            acr: String::new(),
        }))
        .await
        .map(|_| ())
}

async fn reject_device(env: &Env, user_code: &str) -> Result<(), tonic::Status> {
    env.login_flow()
        .await
        .reject_device(env.as_idp(RejectDeviceRequest {
            user_code: user_code.to_owned(),
        }))
        .await
        .map(|_| ())
}

fn is_user_code(code: &str) -> bool {
    let alphabet = "BCDFGHJKLMNPQRSTVWXZ";
    let (a, b) = code.split_once('-').unwrap_or_default();
    a.len() == 4 && b.len() == 4 && a.chars().chain(b.chars()).all(|c| alphabet.contains(c))
}

async fn a_device_login_ends_in_tokens_once(db: TestDatabase) {
    let env = start_tv(&db).await;
    let (status, headers, body) = device_authorization(
        &env,
        None,
        &[
            ("client_id", "tv"),
            ("scope", "openid profile offline_access"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    let user_code = body["user_code"].as_str().unwrap().to_owned();
    let device_code = body["device_code"].as_str().unwrap().to_owned();
    assert!(is_user_code(&user_code), "{user_code}");
    assert!(device_code.len() >= 43, "high entropy: {device_code}");
    assert_eq!(body["verification_uri"], format!("{IDP_URL}/device"));
    assert_eq!(
        body["verification_uri_complete"],
        format!("{IDP_URL}/device?user_code={user_code}")
    );
    assert_eq!(body["expires_in"], 600);
    assert_eq!(body["interval"], 5);

    assert_poll_error(&env, &device_code, "authorization_pending").await;

    // idp reads the request however the user typed the code.
    let typed = user_code.to_lowercase().replace('-', " ");
    let request = get_device(&env, &typed).await.unwrap();
    assert_eq!(request.user_code, user_code);
    let client = request.client.unwrap();
    assert_eq!(client.client_id, "tv");
    assert_eq!(client.name, "App tv");
    assert_eq!(
        request.requested_scopes,
        ["offline_access", "openid", "profile"]
    );
    assert_eq!(request.expires_at, env.now() + 600);

    env.clock.advance(5);
    accept_device(&env, &typed, "alice").await.unwrap();
    // The answer is taken once.
    assert_eq!(
        accept_device(&env, &user_code, "bob")
            .await
            .unwrap_err()
            .code(),
        tonic::Code::NotFound
    );
    assert_eq!(
        get_device(&env, &user_code).await.unwrap_err().code(),
        tonic::Code::NotFound
    );

    env.clock.advance(5);
    let (status, body) = poll(&env, &device_code).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "offline_access openid profile");
    let keys = env.verifiers().await;
    let at = verify(&keys, body["access_token"].as_str().unwrap(), "at+jwt");
    assert_eq!(at["sub"], "alice");
    assert_eq!(at["client_id"], "tv");
    assert_eq!(at["aud"], serde_json::json!(["https://api.example.test"]));
    let id = verify(&keys, body["id_token"].as_str().unwrap(), "JWT");
    assert_eq!(id["sub"], "alice");
    assert_eq!(id["aud"], "tv");
    assert_eq!(id["name"], "User alice");
    assert_eq!(id["amr"], serde_json::json!(["pwd"]));
    assert!(id["sid"].as_str().unwrap().len() >= 22);
    assert!(id.get("nonce").is_none());
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    assert!(env.active(body["access_token"].as_str().unwrap()).await);

    // The device code is single-use.
    env.clock.advance(5);
    let (status, body) = poll(&env, &device_code).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant", "{body}");

    // The refresh token works like one of the code flow.
    let (status, _, body) = env
        .token(
            None,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh),
                ("client_id", "tv"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["access_token"].is_string());
}

async fn polling_faster_than_the_interval_slows_down(db: TestDatabase) {
    let env = start_tv(&db).await;
    let (device_code, _) = start_device(&env, "openid").await;
    assert_poll_error(&env, &device_code, "authorization_pending").await;
    // At once again: slow_down, and the interval is now 10 s.
    assert_poll_error(&env, &device_code, "slow_down").await;
    // 6 s later is still too soon for 10 s: slow_down again, now 15 s.
    env.clock.advance(6);
    assert_poll_error(&env, &device_code, "slow_down").await;
    env.clock.advance(11);
    assert_poll_error(&env, &device_code, "slow_down").await;
    // Waiting the grown interval (20 s) is fine.
    env.clock.advance(20);
    assert_poll_error(&env, &device_code, "authorization_pending").await;
    env.clock.advance(20);
    assert_poll_error(&env, &device_code, "authorization_pending").await;
}

async fn a_denied_device_gets_access_denied(db: TestDatabase) {
    let env = start_tv(&db).await;
    let (device_code, user_code) = start_device(&env, "openid profile").await;
    reject_device(&env, &user_code).await.unwrap();
    assert_poll_error(&env, &device_code, "access_denied").await;
    // The code cannot be answered again, either way.
    assert_eq!(
        accept_device(&env, &user_code, "alice")
            .await
            .unwrap_err()
            .code(),
        tonic::Code::NotFound
    );
    assert_eq!(
        reject_device(&env, &user_code).await.unwrap_err().code(),
        tonic::Code::NotFound
    );
    env.clock.advance(5);
    assert_poll_error(&env, &device_code, "access_denied").await;
}

async fn expired_codes_are_refused(db: TestDatabase) {
    let env = start_tv(&db).await;
    let (device_code, user_code) = start_device(&env, "openid").await;
    env.clock.advance(600);
    assert_eq!(
        get_device(&env, &user_code).await.unwrap_err().code(),
        tonic::Code::NotFound
    );
    assert_eq!(
        accept_device(&env, &user_code, "alice")
            .await
            .unwrap_err()
            .code(),
        tonic::Code::NotFound
    );
    assert_poll_error(&env, &device_code, "expired_token").await;

    // Approved but not picked up in time: expired as well.
    let (device_code, user_code) = start_device(&env, "openid").await;
    accept_device(&env, &user_code, "alice").await.unwrap();
    env.clock.advance(601);
    assert_poll_error(&env, &device_code, "expired_token").await;
}

async fn wrong_user_codes_are_not_found(db: TestDatabase) {
    let env = start_tv(&db).await;
    let (_, user_code) = start_device(&env, "openid").await;
    // A well-formed code nobody was given (the real one with one character changed).
    let mut wrong: Vec<char> = user_code.chars().collect();
    wrong[0] = if wrong[0] == 'B' { 'C' } else { 'B' };
    let wrong: String = wrong.into_iter().collect();
    for typed in [wrong.as_str(), "0000-0000", "", "BCDF", &"B".repeat(300)] {
        assert_eq!(
            get_device(&env, typed).await.unwrap_err().code(),
            tonic::Code::NotFound,
            "{typed}"
        );
        assert_eq!(
            accept_device(&env, typed, "alice")
                .await
                .unwrap_err()
                .code(),
            tonic::Code::NotFound,
            "{typed}"
        );
    }
    // Only idp may read or answer device requests.
    let intruder = env
        .login_flow()
        .await
        .get_device_request(as_client(
            GetDeviceRequestRequest {
                user_code: user_code.clone(),
            },
            Some(("intruder", SECRET)),
        ))
        .await
        .unwrap_err();
    assert_eq!(intruder.code(), tonic::Code::PermissionDenied);
    let anonymous = env
        .login_flow()
        .await
        .accept_device(as_client(
            AcceptDeviceRequest {
                user_code: user_code.clone(),
                subject: "alice".into(),
                session_id: "s".into(),
                auth_time: env.now(),
                amr: vec![],
                acr: String::new(),
            },
            None,
        ))
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), tonic::Code::Unauthenticated);
    // A malformed login is refused and leaves the code usable.
    env.idp.session("s", "alice");
    let bad = env
        .login_flow()
        .await
        .accept_device(env.as_idp(AcceptDeviceRequest {
            user_code: user_code.clone(),
            subject: String::new(),
            session_id: "s".into(),
            auth_time: env.now(),
            amr: vec![],
            acr: String::new(),
        }))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    assert!(get_device(&env, &user_code).await.is_ok());
}

async fn the_device_authorization_endpoint_checks_the_client(db: TestDatabase) {
    let env = start_tv(&db).await;
    // A confidential client without its secret.
    let (status, headers, body) =
        device_authorization(&env, None, &[("client_id", "tvc"), ("scope", "openid")]).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "invalid_client");
    assert!(headers.contains_key("www-authenticate"));
    // With a wrong one.
    let (status, _, body) =
        device_authorization(&env, Some(("tvc", "wrong")), &[("scope", "openid")]).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_client");
    // No credentials at all.
    let (status, _, body) = device_authorization(&env, None, &[("scope", "openid")]).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_client");
    // With it: fine, and without `scope` every scope it may have.
    let (status, _, body) = device_authorization(&env, Some(("tvc", SECRET)), &[]).await;
    assert_eq!(status, 200, "{body}");
    let device_code = body["device_code"].as_str().unwrap().to_owned();
    let user_code = body["user_code"].as_str().unwrap().to_owned();
    assert_eq!(
        get_device(&env, &user_code).await.unwrap().requested_scopes,
        ["api:read", "openid", "profile"]
    );
    // A client without the grant type.
    let (status, _, body) =
        device_authorization(&env, Some(("web", SECRET)), &[("scope", "openid")]).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "unauthorized_client");
    let (status, _, body) = env
        .token(
            Some(("web", SECRET)),
            &[("grant_type", GRANT), ("device_code", &device_code)],
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "unauthorized_client", "{body}");
    // Scopes the client may not have.
    let (status, _, body) =
        device_authorization(&env, Some(("tvc", SECRET)), &[("scope", "openid email")]).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_scope", "{body}");
    // Another client's device code, and the confidential client polling without its
    // secret.
    accept_device(&env, &user_code, "alice").await.unwrap();
    let (status, _, body) = env
        .token(
            None,
            &[
                ("grant_type", GRANT),
                ("device_code", &device_code),
                ("client_id", "tv"),
            ],
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant", "{body}");
    let (status, _, body) = env
        .token(
            None,
            &[
                ("grant_type", GRANT),
                ("device_code", &device_code),
                ("client_id", "tvc"),
            ],
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_client", "{body}");
    let (status, _, body) = env
        .token(
            Some(("tvc", SECRET)),
            &[("grant_type", GRANT), ("device_code", "made-up")],
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant", "{body}");
    let (status, _, body) = env
        .token(Some(("tvc", SECRET)), &[("grant_type", GRANT)])
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_request", "{body}");
    // The owner gets its tokens: no refresh token (not allowed), an ID token (openid).
    let (status, _, body) = env
        .token(
            Some(("tvc", SECRET)),
            &[("grant_type", GRANT), ("device_code", &device_code)],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("refresh_token").is_none(), "{body}");
    assert!(body["id_token"].is_string());
    // Only POST.
    let res = env
        .http
        .get(format!("http://{}/device_authorization", env.addrs.http))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    // Discovery names the endpoint and the grant.
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
    assert_eq!(
        doc["device_authorization_endpoint"],
        format!("{ISSUER}/device_authorization")
    );
    assert!(
        doc["grant_types_supported"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g == GRANT)
    );
}

storage::backend_tests!(
    authz::MIGRATIONS;
    a_device_login_ends_in_tokens_once,
    polling_faster_than_the_interval_slows_down,
    a_denied_device_gets_access_denied,
    expired_codes_are_refused,
    wrong_user_codes_are_not_found,
    the_device_authorization_endpoint_checks_the_client,
);
