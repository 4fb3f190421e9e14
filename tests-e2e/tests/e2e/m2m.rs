//! The machine-to-machine flow through the real binary: a client created with the CLI gets
//! a token, introspects it over HTTP and gRPC, revokes it, and sees it inactive on both.

use std::process::Command;

use base64::Engine;
use proto::authz::v1::IntrospectRequest;
use proto::authz::v1::introspection_client::IntrospectionClient;
use serde_json::Value;

use crate::harness::{Service, TEST_KEK, workspace};

fn authz_cli(db_url: &str, args: &[&str]) -> Value {
    let out = Command::new(crate::harness::binary("authz"))
        .current_dir(workspace())
        .args(args)
        .env("AUTHZ__DATABASE__URL", db_url)
        .env("AUTHZ__KEYS__ENCRYPTION_KEY", TEST_KEK)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_client_token_introspect_revoke() {
    let data = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}/authz.db", data.path().display());
    crate::code_flow::migrate("authz", &[("AUTHZ__DATABASE__URL".into(), db_url.clone())]);
    let api = authz_cli(
        &db_url,
        &[
            "clients",
            "create",
            "--id",
            "api-caller",
            "--name",
            "API caller",
            "--scope",
            "items:read",
            "--json",
        ],
    );
    let rs = authz_cli(
        &db_url,
        &[
            "clients",
            "create",
            "--id",
            "resource-server",
            "--name",
            "RS",
            "--introspect",
            "true",
            "--json",
        ],
    );
    let secret = api["client_secret"].as_str().unwrap().to_owned();
    let rs_secret = rs["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 43, "256-bit generated secret");
    let shown = authz_cli(&db_url, &["clients", "show", "api-caller", "--json"]);
    assert!(
        !shown.to_string().contains(&secret),
        "a secret is shown once"
    );

    // Client changes made by the CLI are seen by the running server at once (no cache).
    let no_cache = [("AUTHZ__CLIENTS__CACHE_TTL".to_owned(), "0s".to_owned())];
    let authz = Service::start("authz", data.path(), &no_cache).await;
    let http = reqwest::Client::new();
    let token: Value = http
        .post(format!("{}/token", authz.url("http")))
        .basic_auth("api-caller", Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();

    let introspect_http = || async {
        let v: Value = http
            .post(format!("{}/introspect", authz.url("http")))
            .basic_auth("resource-server", Some(&rs_secret))
            .form(&[("token", token.as_str())])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["active"].as_bool().unwrap()
    };
    let introspect_grpc = || async {
        let channel = tonic::transport::Endpoint::from_shared(authz.url("grpc"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut req = tonic::Request::new(IntrospectRequest {
            token: token.clone(),
            token_type_hint: String::new(),
        });
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("resource-server:{rs_secret}"));
        req.metadata_mut()
            .insert("authorization", format!("Basic {basic}").parse().unwrap());
        IntrospectionClient::new(channel)
            .introspect(req)
            .await
            .unwrap()
            .into_inner()
            .active
    };
    assert!(introspect_http().await);
    assert!(introspect_grpc().await);
    // RFC 7662 §2.2: an active answer names the token.
    let answer: Value = http
        .post(format!("{}/introspect", authz.url("http")))
        .basic_auth("resource-server", Some(&rs_secret))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (iat, exp) = (
        answer["iat"].as_i64().unwrap(),
        answer["exp"].as_i64().unwrap(),
    );
    assert!(iat < exp, "{answer}");
    assert_eq!(answer["client_id"], "api-caller");
    assert_eq!(answer["sub"], "api-caller");
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["scope"], "items:read");
    // A caller that may not introspect is refused (and counted).
    let refused = http
        .post(format!("{}/introspect", authz.url("http")))
        .basic_auth("api-caller", Some(&secret))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);

    let revoked = http
        .post(format!("{}/revoke", authz.url("http")))
        .basic_auth("api-caller", Some(&secret))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    assert!(!introspect_http().await);
    assert!(!introspect_grpc().await);

    // The rest of the CLI against the running server.
    let get_token = |secret: String| {
        let (http, url) = (http.clone(), format!("{}/token", authz.url("http")));
        async move {
            let res = http
                .post(url)
                .basic_auth("api-caller", Some(&secret))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap())
        }
    };
    let listed = authz_cli(&db_url, &["clients", "list", "--json"]);
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["client_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["api-caller", "resource-server"], "{listed}");
    assert!(!listed.to_string().contains(&secret));
    let updated = authz_cli(
        &db_url,
        &[
            "clients",
            "update",
            "api-caller",
            "--name",
            "API caller v2",
            "--json",
        ],
    );
    assert_eq!(updated["client_name"], "API caller v2");
    assert_eq!(
        authz_cli(&db_url, &["clients", "show", "api-caller", "--json"])["client_name"],
        "API caller v2"
    );

    // rotate-secret --grace: the new secret is shown once; both work during the grace.
    let rotated = authz_cli(
        &db_url,
        &[
            "clients",
            "rotate-secret",
            "api-caller",
            "--grace",
            "1h",
            "--json",
        ],
    );
    let second = rotated["client_secret"].as_str().unwrap().to_owned();
    assert_ne!(second, secret);
    assert_eq!(rotated["previous_valid_for"], 3600);
    let shown = authz_cli(&db_url, &["clients", "show", "api-caller", "--json"]);
    assert_eq!(shown["secrets"].as_array().unwrap().len(), 2, "{shown}");
    assert!(!shown.to_string().contains(&second));
    assert_eq!(get_token(secret.clone()).await.0, 200);
    assert_eq!(get_token(second.clone()).await.0, 200);
    // Without grace the previous secrets stop at once.
    let third = authz_cli(
        &db_url,
        &["clients", "rotate-secret", "api-caller", "--json"],
    )["client_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    for old in [&secret, &second] {
        let (status, body) = get_token(old.clone()).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_client"))
        );
    }
    let (status, body) = get_token(third.clone()).await;
    assert_eq!(status, 200, "{body}");
    let last = body["access_token"].as_str().unwrap().to_owned();

    // delete: the client's tokens die with it, its secret stops working.
    let out = Command::new(crate::harness::binary("authz"))
        .current_dir(workspace())
        .args(["clients", "delete", "api-caller"])
        .env("AUTHZ__DATABASE__URL", &db_url)
        .env("AUTHZ__KEYS__ENCRYPTION_KEY", TEST_KEK)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "deleted api-caller"
    );
    let answer: Value = http
        .post(format!("{}/introspect", authz.url("http")))
        .basic_auth("resource-server", Some(&rs_secret))
        .form(&[("token", last.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        answer["active"], false,
        "a deleted client's token: {answer}"
    );
    let (status, body) = get_token(third).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );

    // Metrics: tokens by grant type, token errors by code, introspections by transport and
    // result.
    let metrics = reqwest::get(format!("{}/metrics", authz.url("admin")))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |series: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
            .unwrap_or_else(|| panic!("no {series} in\n{metrics}"))
    };
    for (series, expected) in [
        (
            r#"tokens_issued_total{grant_type="client_credentials"}"#,
            4.0,
        ),
        (r#"token_errors_total{error="invalid_client"}"#, 3.0),
        (
            r#"introspections_total{transport="http",result="active"}"#,
            2.0,
        ),
        (
            r#"introspections_total{transport="http",result="inactive"}"#,
            2.0,
        ),
        (
            r#"introspections_total{transport="http",result="refused"}"#,
            1.0,
        ),
        (
            r#"introspections_total{transport="grpc",result="active"}"#,
            1.0,
        ),
        (
            r#"introspections_total{transport="grpc",result="inactive"}"#,
            1.0,
        ),
    ] {
        assert_eq!(value(series), expected, "{series}");
    }
}
