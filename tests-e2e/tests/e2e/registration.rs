//! dcr: the acceptance flow of issue 17 through real authz and idp processes. An operator
//! mints an initial access token with `authz registration-tokens create`; a relying party
//! registers itself at the discovered `registration_endpoint` (RFC 7591) with its public
//! key (`private_key_jwt`, RFC 7523); it pushes its authorization request to the
//! `pushed_authorization_request_endpoint` (RFC 9126), authenticating with a signed
//! assertion; the browser signs in at idp with only `client_id` and `request_uri`; the RP
//! redeems the code, authenticating with a new assertion. A second registration with the
//! spent token and a second use of the `request_uri` are refused.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use issuer::jws::Signer;
use issuer::{Algorithm, PrivateKey};
use reqwest::{StatusCode, Url};
use serde_json::{Value, json};

use crate::code_flow::{
    Browser, SeeOther, authz_keys, cli, migrate, pairs, random, sha256_b64, write,
};
use crate::harness::{Service, TEST_KEK, free_port};

const REDIRECT_URI: &str = "http://127.0.0.1/dynamic/cb";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .try_into()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_client_with_private_key_jwt_pushes_and_signs_in() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    let (authz_http, authz_grpc, idp_http, idp_grpc) =
        (free_port(), free_port(), free_port(), free_port());
    let issuer = format!("http://localhost:{authz_http}");
    let idp_url = format!("http://localhost:{idp_http}");
    let idp_secret = write(dir, "idp-secret", "idp-calls-authz-loginflow-0123456789");
    let authz_secret = write(dir, "authz-secret", "authz-calls-idp-sessions-0123456789");
    let password = write(dir, "password", crate::code_flow::PASSWORD);

    let mut authz_env = authz_keys();
    authz_env.extend(pairs(&[
        (
            "AUTHZ__DATABASE__URL",
            &format!("sqlite://{}/authz.db", dir.display()),
        ),
        ("AUTHZ__KEYS__ENCRYPTION_KEY", TEST_KEK),
    ]));
    migrate("authz", &authz_env);
    cli(
        "authz",
        &authz_env,
        &[
            "clients",
            "create",
            "--id",
            "idp",
            "--name",
            "idp",
            "--secret-file",
            &idp_secret,
            "--json",
        ],
    );
    // The operator's initial access token: one registration, for an hour.
    let minted = cli(
        "authz",
        &authz_env,
        &[
            "registration-tokens",
            "create",
            "--expires",
            "1h",
            "--uses",
            "1",
            "--scope",
            "openid profile",
            "--description",
            "e2e relying party",
            "--json",
        ],
    );
    let initial_token = minted["token"].as_str().unwrap().to_owned();
    let listed = cli(
        "authz",
        &authz_env,
        &["registration-tokens", "list", "--json"],
    );
    assert_eq!(listed[0]["uses_left"], 1, "{listed}");
    assert!(listed[0].get("token").is_none(), "values are never listed");

    let idp_db = pairs(&[(
        "IDP__DATABASE__URL",
        &format!("sqlite://{}/idp.db", dir.display()),
    )]);
    migrate("idp", &idp_db);
    cli(
        "idp",
        &idp_db,
        &[
            "users",
            "create",
            "--username",
            crate::code_flow::USERNAME,
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
    authz_env.extend(pairs(&[
        ("AUTHZ__ISSUER", &issuer),
        ("AUTHZ__HTTP__PORT", &authz_http.to_string()),
        ("AUTHZ__GRPC__PORT", &authz_grpc.to_string()),
        ("AUTHZ__LOGIN__IDP_CLIENT_ID", "idp"),
        ("AUTHZ__IDP__PUBLIC_URL", &idp_url),
        (
            "AUTHZ__IDP__GRPC_URL",
            &format!("http://127.0.0.1:{idp_grpc}"),
        ),
        ("AUTHZ__IDP__CLIENT_ID", "authz"),
        ("AUTHZ__IDP__CLIENT_SECRET_FILE", &authz_secret),
    ]));
    let _authz = Service::start("authz", dir, &authz_env).await;
    let _idp = Service::start(
        "idp",
        dir,
        &pairs(&[
            ("IDP__PUBLIC_URL", &idp_url),
            ("IDP__HTTP__PORT", &idp_http.to_string()),
            ("IDP__GRPC__PORT", &idp_grpc.to_string()),
            (
                "IDP__AUTHZ__GRPC_URL",
                &format!("http://127.0.0.1:{authz_grpc}"),
            ),
            ("IDP__AUTHZ__CLIENT_ID", "idp"),
            ("IDP__AUTHZ__CLIENT_SECRET_FILE", &idp_secret),
            ("IDP__SESSIONS_API__CLIENT_ID", "authz"),
            ("IDP__SESSIONS_API__CLIENT_SECRET_FILE", &authz_secret),
            ("IDP__CSRF__KEY", &STANDARD.encode([7u8; 32])),
        ]),
    )
    .await;

    let http = reqwest::Client::new();
    let doc: Value = http
        .get(format!("{issuer}/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let endpoint = |name: &str| doc[name].as_str().unwrap().to_owned();
    assert!(
        doc["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap()
            .contains(&"private_key_jwt".into()),
        "{doc}"
    );

    // 1. Registration with the initial access token and the RP's public key.
    let key = PrivateKey::generate(Algorithm::ES256, 2048).unwrap();
    let metadata = json!({
        "client_name": "Dynamic RP",
        "redirect_uris": [REDIRECT_URI],
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": { "keys": [Value::Object(key.public_jwk().clone())] },
        "scope": "openid profile",
    });
    let res = http
        .post(endpoint("registration_endpoint"))
        .bearer_auth(&initial_token)
        .json(&metadata)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let registered: Value = res.json().await.unwrap();
    let client_id = registered["client_id"].as_str().unwrap().to_owned();
    assert!(registered.get("client_secret").is_none(), "{registered}");
    assert_eq!(registered["token_endpoint_auth_method"], "private_key_jwt");
    // The token had one use.
    let res = http
        .post(endpoint("registration_endpoint"))
        .bearer_auth(&initial_token)
        .json(&metadata)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_token");
    // An ordinary client: the CLI lists it.
    let clients = cli("authz", &authz_env, &["clients", "list", "--json"]);
    assert!(
        clients
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["client_id"] == client_id.as_str()),
        "{clients}"
    );

    let signer = Signer::new(&key).unwrap();
    let assertion = |aud: &str| {
        signer
            .sign_jwt(
                "JWT",
                &json!({
                    "iss": client_id, "sub": client_id, "aud": aud,
                    "jti": random(), "exp": now() + 60,
                }),
            )
            .unwrap()
    };

    // 2. The pushed authorization request, authenticated with private_key_jwt.
    let (state, nonce, verifier) = (random(), random(), random());
    let challenge = sha256_b64(verifier.as_bytes());
    let par = endpoint("pushed_authorization_request_endpoint");
    let res = http
        .post(&par)
        .form(&[
            ("client_id", client_id.as_str()),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &assertion(&issuer)),
            ("response_type", "code"),
            ("redirect_uri", REDIRECT_URI),
            ("scope", "openid profile"),
            ("state", &state),
            ("nonce", &nonce),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let pushed: Value = res.json().await.unwrap();
    let request_uri = pushed["request_uri"].as_str().unwrap().to_owned();
    assert!(pushed["expires_in"].as_i64().unwrap() > 0);

    // 3. The browser: only client_id and request_uri; login and consent at idp.
    let authorize = Url::parse_with_params(
        &endpoint("authorization_endpoint"),
        &[
            ("client_id", client_id.as_str()),
            ("request_uri", &request_uri),
        ],
    )
    .unwrap();
    let resume = format!("{issuer}/authorize/resume?request=");
    let mut browser = Browser::new();
    let to = browser
        .get(&authorize)
        .await
        .see_other(&format!("{idp_url}/login?login_challenge="));
    let form = browser.get(&to).await;
    let to = browser.log_in(&form).await.see_other(&resume);
    let to = browser
        .get(&to)
        .await
        .see_other(&format!("{idp_url}/consent?consent_challenge="));
    let form = browser.get(&to).await;
    assert!(form.body.contains("Dynamic RP"), "{}", form.body);
    let to = browser.consent(&form).await.see_other(&resume);
    let back = browser.get(&to).await.see_other(REDIRECT_URI);
    assert!(back.as_str().starts_with(REDIRECT_URI), "{back}");
    let params: std::collections::HashMap<_, _> = back.query_pairs().into_owned().collect();
    assert_eq!(params.get("state"), Some(&state), "{back}");
    assert_eq!(params.get("iss"), Some(&issuer), "{back}");
    let code = params
        .get("code")
        .unwrap_or_else(|| panic!("no code: {back}"));

    // The request_uri was single-use.
    let again = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(authorize.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    assert!(again.text().await.unwrap().contains("invalid_request_uri"));

    // 4. The code, redeemed with a new assertion.
    let token_endpoint = endpoint("token_endpoint");
    let res = http
        .post(&token_endpoint)
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", &verifier),
            ("client_id", client_id.as_str()),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &assertion(&token_endpoint)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let tokens: Value = res.json().await.unwrap();
    assert_eq!(tokens["token_type"], "Bearer");
    assert!(tokens["access_token"].is_string(), "{tokens}");
    assert!(tokens["id_token"].is_string(), "{tokens}");
    let info: Value = http
        .get(endpoint("userinfo_endpoint"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["name"], "Alice Example", "{info}");
}
