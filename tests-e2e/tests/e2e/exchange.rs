//! Token exchange (RFC 8693) rs → downstream with the real authz and rs: rs's
//! `/api/v1/delegate` exchanges the caller's token for the downstream audience with its own
//! client credentials, and `/api/v1/downstream` (its own guard) reports the `act` chain it
//! saw, in `jwt` and in `introspection` mode.

use std::process::Command;

use serde_json::{Value, json};

use crate::harness::{Service, TEST_KEK, free_port, workspace};

const RS_AUD: &str = "https://rs.example.test";
const DOWNSTREAM_AUD: &str = "https://rs.example.test/downstream";

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn create_client(db_url: &str, id: &str, extra: &[&str]) -> String {
    let out = Command::new(crate::harness::binary("authz"))
        .current_dir(workspace())
        .args(["clients", "create", "--id", id, "--name", id, "--json"])
        .args(extra)
        .env("AUTHZ__DATABASE__URL", db_url)
        .env("AUTHZ__KEYS__ENCRYPTION_KEY", TEST_KEK)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    created["client_secret"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rs_delegates_to_its_downstream_route_with_an_exchanged_token() {
    let data = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}/authz.db", data.path().display());
    crate::code_flow::migrate("authz", &[("AUTHZ__DATABASE__URL".into(), db_url.clone())]);
    let caller = create_client(
        &db_url,
        "caller",
        &["--scope", "items:read items:write", "--audience", RS_AUD],
    );
    let rs_secret = create_client(
        &db_url,
        "rs",
        &[
            "--introspect",
            "true",
            "--grant-type",
            "client_credentials",
            "--grant-type",
            "urn:ietf:params:oauth:grant-type:token-exchange",
            "--exchange-audience",
            DOWNSTREAM_AUD,
            "--exchange-scope",
            "items:read",
        ],
    );
    let secret_file = data.path().join("rs-secret");
    std::fs::write(&secret_file, format!("{rs_secret}\n")).unwrap();

    let port = free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let authz = Service::start(
        "authz",
        data.path(),
        &pairs(&[
            ("AUTHZ__HTTP__PORT", &port.to_string()),
            ("AUTHZ__ISSUER", &issuer),
            ("AUTHZ__DATABASE__URL", &db_url),
        ]),
    )
    .await;
    let grpc = authz.url("grpc");
    let start_rs = |mode: &'static str| {
        let dir = data.path().join(mode);
        std::fs::create_dir_all(&dir).unwrap();
        let env = pairs(&[
            ("RS__GUARD__MODE", mode),
            ("RS__GUARD__ISSUER", &issuer),
            ("RS__GUARD__AUDIENCE", RS_AUD),
            ("RS__GUARD__INTROSPECTION__ENDPOINT", &grpc),
            ("RS__GUARD__INTROSPECTION__CLIENT_ID", "rs"),
            (
                "RS__GUARD__INTROSPECTION__CLIENT_SECRET_FILE",
                secret_file.to_str().unwrap(),
            ),
            ("RS__EXCHANGE__ENABLED", "true"),
            ("RS__EXCHANGE__CLIENT_ID", "rs"),
            (
                "RS__EXCHANGE__CLIENT_SECRET_FILE",
                secret_file.to_str().unwrap(),
            ),
            ("RS__EXCHANGE__AUDIENCE", DOWNSTREAM_AUD),
        ]);
        async move { (mode, Service::start("rs", &dir, &env).await) }
    };
    let (jwt, introspection) = tokio::join!(start_rs("jwt"), start_rs("introspection"));

    let http = reqwest::Client::new();
    let token: Value = http
        .post(format!("{}/token", authz.url("http")))
        .basic_auth("caller", Some(&caller))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();

    for (mode, rs) in [&jwt, &introspection] {
        let api = format!("{}/api/v1", rs.url("http"));
        let res = http
            .get(format!("{api}/delegate"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{mode}: {}", rs.logs());
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["sub"], "caller", "{mode}: {body}");
        let seen = &body["downstream"];
        assert_eq!(seen["sub"], "caller", "{mode}: {body}");
        assert_eq!(seen["client_id"], "rs", "{mode}: {body}");
        assert_eq!(seen["aud"], json!([DOWNSTREAM_AUD]), "{mode}: {body}");
        assert_eq!(seen["scopes"], json!(["items:read"]), "{mode}: down-scoped");
        assert_eq!(seen["act"], json!([{"sub": "rs"}]), "{mode}: {body}");

        // The downstream route takes only tokens for its audience; the delegating route
        // needs a token at all.
        let direct = http
            .get(format!("{api}/downstream"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(direct.status(), 401, "{mode}");
        let anonymous = http.get(format!("{api}/delegate")).send().await.unwrap();
        assert_eq!(anonymous.status(), 401, "{mode}");
    }

    // rs may not revoke the caller's token (RFC 7009 §2.1): refused, and it stays active.
    let refused = http
        .post(format!("{}/revoke", authz.url("http")))
        .basic_auth("rs", Some(&rs_secret))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let refused: Value = refused.json().await.unwrap();
    assert_eq!(refused["error"], "unauthorized_client");
    let answer: Value = http
        .post(format!("{}/introspect", authz.url("http")))
        .basic_auth("rs", Some(&rs_secret))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["active"], true, "{answer}");

    // Once the caller's token is revoked by its owner, delegation stops: the exchange is
    // refused and rs answers 401 (introspection) or 502 exchange_failed (local JWT check,
    // which cannot see revocation).
    let revoked = http
        .post(format!("{}/revoke", authz.url("http")))
        .basic_auth("caller", Some(&caller))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let res = http
        .get(format!("{}/api/v1/delegate", jwt.1.url("http")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 502);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "exchange_failed", "{body}");
}
