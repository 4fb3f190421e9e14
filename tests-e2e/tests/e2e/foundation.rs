//! The three services start, report health and readiness, expose per-route metrics, answer
//! gRPC health checks, and stop cleanly on SIGTERM.

use std::time::Duration;

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::harness::{Service, free_port};

async fn grpc_status(service: &Service) -> ServingStatus {
    let channel = tonic::transport::Endpoint::from_shared(service.url("grpc"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = HealthClient::new(channel);
    let reply = client
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    ServingStatus::try_from(reply.status).unwrap()
}

async fn get_text(client: &reqwest::Client, url: &str) -> String {
    let res = client.get(url).send().await.unwrap();
    assert!(res.status().is_success(), "{url}: {}", res.status());
    res.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_three_start_serve_and_stop_on_sigterm() {
    let data = tempfile::tempdir().unwrap();
    // rs is ready once it holds authz's signing keys, found through authz's discovery
    // document: authz's issuer must name the address it really serves.
    let port = free_port().to_string();
    let issuer = format!("http://127.0.0.1:{port}");
    let authz_env = [
        ("AUTHZ__HTTP__PORT".to_owned(), port),
        ("AUTHZ__ISSUER".to_owned(), issuer.clone()),
    ];
    let authz = Service::start("authz", data.path(), &authz_env).await;
    let idp = Service::start("idp", data.path(), &[]).await;
    let rs = Service::start(
        "rs",
        data.path(),
        &[("RS__GUARD__ISSUER".to_owned(), issuer)],
    )
    .await;
    let client = reqwest::Client::new();

    for service in [&authz, &idp, &rs] {
        for path in ["/healthz", "/readyz"] {
            let res = client
                .get(format!("{}{path}", service.url("admin")))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200, "{path}");
        }
        // A request on the public listener shows up in the metrics with its route label.
        let res = client
            .get(format!("{}/e2e-probe", service.url("http")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404);
        let metrics = get_text(&client, &format!("{}/metrics", service.url("admin"))).await;
        assert!(
            metrics
                .contains(r#"http_requests_total{method="GET",route="unmatched",status="404"} 1"#),
            "{metrics}"
        );
        assert!(
            metrics.contains("http_request_duration_seconds_bucket{"),
            "{metrics}"
        );
    }

    // authz publishes its signing keys; the matched route appears as its pattern.
    let jwks: serde_json::Value = serde_json::from_str(
        &get_text(
            &client,
            &format!("{}/.well-known/jwks.json", authz.url("http")),
        )
        .await,
    )
    .unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 4);
    // Two requests: rs's guard loaded the keys once before it became ready, and this one.
    let metrics = get_text(&client, &format!("{}/metrics", authz.url("admin"))).await;
    assert!(
        metrics.contains(
            r#"http_requests_total{method="GET",route="/.well-known/jwks.json",status="200"} 2"#
        ),
        "{metrics}"
    );

    // Database pool state is exported by the services that own a database.
    for service in [&authz, &idp] {
        let metrics = get_text(&client, &format!("{}/metrics", service.url("admin"))).await;
        assert!(metrics.contains("db_pool_max_connections 16"), "{metrics}");
        assert!(
            metrics.contains(r#"db_pool_connections{state="open"}"#),
            "{metrics}"
        );
    }

    assert_eq!(grpc_status(&authz).await, ServingStatus::Serving);
    assert_eq!(grpc_status(&idp).await, ServingStatus::Serving);

    for service in [authz, idp, rs] {
        assert_eq!(service.terminate(Duration::from_secs(5)).await, Some(0));
    }
}
