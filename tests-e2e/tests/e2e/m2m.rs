//! The machine-to-machine flow through the real binary: a client created with the CLI gets
//! a token, introspects it over HTTP and gRPC, revokes it, and sees it inactive on both.

use std::process::Command;

use base64::Engine;
use proto::authz::v1::IntrospectRequest;
use proto::authz::v1::introspection_client::IntrospectionClient;
use serde_json::Value;

use crate::harness::{Service, TEST_KEK, workspace};

fn authz_cli(db_url: &str, args: &[&str]) -> Value {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(workspace())
        .args(["run", "--quiet", "-p", "authz", "--"])
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

    let authz = Service::start("authz", data.path(), &[]).await;
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
}
