//! OpenTelemetry export from a real authz process: spans reach an OTLP collector and
//! continue the caller's W3C trace context; a collector that is down changes nothing.

use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tokio::sync::mpsc;

use crate::harness::Service;

/// A minimal OTLP/gRPC trace collector: forwards every span's (trace id, name).
struct Collector(mpsc::UnboundedSender<(Vec<u8>, String)>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        for resource in request.into_inner().resource_spans {
            for scope in resource.scope_spans {
                for span in scope.spans {
                    let _ = self.0.send((span.trace_id, span.name));
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_the_collector_with_the_callers_trace_id() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector_addr = listener.local_addr().unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Collector(tx)))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );

    let data = tempfile::tempdir().unwrap();
    let authz = Service::start(
        "authz",
        data.path(),
        &[
            (
                "AUTHZ__TELEMETRY__OTLP_ENDPOINT".into(),
                format!("http://{collector_addr}"),
            ),
            ("OTEL_BSP_SCHEDULE_DELAY".into(), "100".into()),
        ],
    )
    .await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let res = reqwest::Client::new()
        .get(format!("{}/.well-known/jwks.json", authz.url("http")))
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let wanted: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&trace_id[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let found = tokio::time::timeout(Duration::from_secs(15), async {
        while let Some((id, name)) = rx.recv().await {
            if id == wanted && name == "GET /.well-known/jwks.json" {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(
        found,
        Ok(true),
        "no span of the request reached the collector"
    );
    assert_eq!(authz.terminate(Duration::from_secs(5)).await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_is_down_neither_blocks_start_nor_stop() {
    // A port with nothing listening.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let authz = Service::start(
        "authz",
        data.path(),
        &[(
            "AUTHZ__TELEMETRY__OTLP_ENDPOINT".into(),
            format!("http://{dead}"),
        )],
    )
    .await;
    let res = reqwest::get(format!(
        "{}/.well-known/openid-configuration",
        authz.url("http")
    ))
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(authz.terminate(Duration::from_secs(5)).await, Some(0));
}
