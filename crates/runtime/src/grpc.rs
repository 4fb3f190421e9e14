use std::collections::HashSet;
use std::convert::Infallible;
use std::pin::Pin;

use prost::Message;
use tonic::body::Body;
use tonic::codegen::{Service, http};
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;
use tonic_health::ServingStatus;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::server::HealthReporter;
use tonic_reflection::pb::{v1, v1alpha};

use crate::grpc_limits::ShedLayer;
use crate::{GrpcServerLayer, LimitsConfig, RuntimeError, Shutdown};

/// Every gRPC service one process offers, with the file descriptor sets that describe them.
///
/// [`GrpcServer`] serves them with what every gRPC server of the platform has: the
/// observing [`GrpcServerLayer`] (W3C trace context, spans, request metrics),
/// `grpc.health.v1.Health` (each added service and the server as a whole SERVING, the
/// whole NOT_SERVING once shutdown starts) and server reflection (`grpc.reflection.v1` and
/// `v1alpha`), so `grpcurl`/`grpcui` work without the `.proto` files.
pub struct GrpcServices {
    routes: RoutesBuilder,
    names: Vec<&'static str>,
    descriptor_sets: Vec<&'static [u8]>,
}

impl GrpcServices {
    /// No service yet; `descriptor_set` is the encoded `FileDescriptorSet` of the services
    /// to be added (`proto::FILE_DESCRIPTOR_SET`).
    #[must_use]
    pub fn new(descriptor_set: &'static [u8]) -> Self {
        Self {
            routes: RoutesBuilder::default(),
            names: Vec::new(),
            descriptor_sets: vec![descriptor_set],
        }
    }

    /// Adds a generated tonic server (`FooServer::new(…)`), reported SERVING by health and
    /// listed by reflection. Health and reflection are added by [`GrpcServer`]: adding
    /// them here too would register their routes twice.
    #[must_use]
    pub fn add_service<S>(mut self, service: S) -> Self
    where
        S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.routes.add_service(service);
        self.names.push(S::NAME);
        self
    }

    /// The names of the services added, in order.
    #[must_use]
    pub fn names(&self) -> &[&'static str] {
        &self.names
    }
}

/// The paths (`/package.Service/Method`) of every method the encoded file descriptor sets
/// declare.
fn method_paths(sets: &[&[u8]]) -> Result<HashSet<String>, RuntimeError> {
    let mut paths = HashSet::new();
    for set in sets {
        let set = prost_types::FileDescriptorSet::decode(*set)
            .map_err(|e| RuntimeError::Descriptors(e.to_string()))?;
        for file in set.file {
            let package = file.package().to_owned();
            for service in file.service {
                let service_name = if package.is_empty() {
                    service.name().to_owned()
                } else {
                    format!("{package}.{}", service.name())
                };
                for method in service.method {
                    paths.insert(format!("/{service_name}/{}", method.name()));
                }
            }
        }
    }
    Ok(paths)
}

/// A gRPC server bound to its listener, stopping gracefully on the process [`Shutdown`]
/// (no new connections, in-flight calls finish, bounded by the supervisor's grace period).
pub struct GrpcServer {
    pub(crate) serve: Pin<Box<dyn Future<Output = Result<(), tonic::transport::Error>> + Send>>,
}

impl GrpcServer {
    /// Serves `services` (plus health and reflection, all observed by [`GrpcServerLayer`],
    /// see [`GrpcServices`]) on `listener` until `shutdown` triggers. Must run inside a Tokio
    /// runtime.
    ///
    /// Within `limits` (issue 14): every call has the deadline `limits.request_timeout`;
    /// more than `limits.grpc_max_concurrent_requests` calls in flight are answered
    /// `UNAVAILABLE` at once (`http_requests_shed_total{listener="grpc"}`); connections
    /// beyond `limits.grpc_max_connections` or `limits.max_connections_per_peer` are
    /// closed on accept (`http_connections_refused_total`); each connection carries at most
    /// `limits.grpc_max_streams_per_connection` concurrent streams (RFC 9113 §6.5.2); the
    /// server PINGs (RFC 9113 §6.7) after `limits.grpc_keepalive_interval` of silence and
    /// closes a connection whose peer then stays silent for `limits.grpc_keepalive_timeout`,
    /// a half-sent handshake or frame included (`http_request_timeouts_total{listener="grpc"}`).
    ///
    /// With `tls` (the `grpc.tls` section made into a rustls configuration) every connection
    /// is TLS; its handshake runs beside the accept loop within `limits.header_timeout`, and
    /// the verified client certificate reaches the services through
    /// `Request::peer_certs()` ([`crate::mtls_client_id`]).
    pub fn new(
        services: GrpcServices,
        listener: std::net::TcpListener,
        shutdown: &Shutdown,
        limits: &LimitsConfig,
    ) -> Result<Self, RuntimeError> {
        Self::with_tls(services, listener, shutdown, limits, None)
    }

    /// [`GrpcServer::new`] serving TLS when `tls` is given.
    pub(crate) fn with_tls(
        services: GrpcServices,
        listener: std::net::TcpListener,
        shutdown: &Shutdown,
        limits: &LimitsConfig,
        tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    ) -> Result<Self, RuntimeError> {
        let addr = listener.local_addr().map_err(|source| RuntimeError::Http {
            name: "grpc",
            source,
        })?;
        let listener =
            tokio::net::TcpListener::from_std(listener).map_err(|source| RuntimeError::Bind {
                section: "grpc",
                addr,
                source,
            })?;
        let GrpcServices {
            mut routes,
            names,
            mut descriptor_sets,
        } = services;
        let (reporter, health) = grpc_health(shutdown);
        let health_name = tonic_health::pb::health_server::SERVICE_NAME;
        descriptor_sets.push(tonic_health::pb::FILE_DESCRIPTOR_SET);
        let mut reflection = tonic_reflection::server::Builder::configure();
        let mut reflection_alpha = tonic_reflection::server::Builder::configure();
        for set in &descriptor_sets {
            reflection = reflection.register_encoded_file_descriptor_set(set);
            reflection_alpha = reflection_alpha.register_encoded_file_descriptor_set(set);
        }
        for name in names.iter().copied().chain([health_name]) {
            reflection = reflection.with_service_name(name);
            reflection_alpha = reflection_alpha.with_service_name(name);
        }
        reflection = reflection.with_service_name(v1::server_reflection_server::SERVICE_NAME);
        reflection_alpha =
            reflection_alpha.with_service_name(v1alpha::server_reflection_server::SERVICE_NAME);
        let reflection = reflection
            .build_v1()
            .map_err(|e| RuntimeError::Descriptors(e.to_string()))?;
        let reflection_alpha = reflection_alpha
            .build_v1alpha()
            .map_err(|e| RuntimeError::Descriptors(e.to_string()))?;
        descriptor_sets.push(v1::FILE_DESCRIPTOR_SET);
        descriptor_sets.push(v1alpha::FILE_DESCRIPTOR_SET);
        let layer = GrpcServerLayer::new(method_paths(&descriptor_sets)?);
        routes
            .add_service(health)
            .add_service(reflection)
            .add_service(reflection_alpha);
        tokio::spawn(async move {
            for name in names {
                reporter
                    .set_service_status(name, ServingStatus::Serving)
                    .await;
            }
        });

        let incoming = crate::grpc_limits::guarded_incoming(listener, limits);
        let router = tonic::transport::Server::builder()
            .timeout(limits.request_timeout)
            .max_concurrent_streams(limits.grpc_max_streams_per_connection)
            .http2_keepalive_interval(Some(limits.grpc_keepalive_interval))
            .http2_keepalive_timeout(Some(limits.grpc_keepalive_timeout))
            .layer(layer)
            .layer(ShedLayer::new(limits.grpc_max_concurrent_requests))
            .add_routes(routes.routes());
        let serve: Pin<Box<dyn Future<Output = Result<(), tonic::transport::Error>> + Send>> =
            match tls {
                None => Box::pin(router.serve_with_incoming_shutdown(incoming, shutdown.waiter())),
                Some(config) => {
                    let incoming = crate::grpc_limits::tls_incoming(
                        incoming,
                        config,
                        limits.header_timeout,
                        shutdown.waiter(),
                    );
                    Box::pin(router.serve_with_incoming_shutdown(incoming, shutdown.waiter()))
                }
            };
        Ok(Self { serve })
    }
}

/// The `grpc.health.v1.Health` service with the overall status (`""`) SERVING, switched to
/// NOT_SERVING as soon as `shutdown` triggers so clients stop picking this instance while it
/// drains. The reporter sets per-service statuses.
pub fn grpc_health(shutdown: &Shutdown) -> (HealthReporter, HealthServer<impl Health>) {
    let (reporter, service) = tonic_health::server::health_reporter();
    let on_stop = reporter.clone();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        stop.wait().await;
        on_stop
            .set_service_status("", ServingStatus::NotServing)
            .await;
    });
    (reporter, service)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tonic::codegen::http::uri::PathAndQuery;
    use tonic::transport::Endpoint;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::{ServerReflectionRequest, ServerReflectionResponse};

    use super::*;
    use crate::{ListenConfig, grpc_channel};
    use tonic::Code;

    #[test]
    fn every_declared_method_is_known() {
        let paths = method_paths(&[tonic_health::pb::FILE_DESCRIPTOR_SET]).unwrap();
        assert!(paths.contains("/grpc.health.v1.Health/Check"), "{paths:?}");
        assert!(paths.contains("/grpc.health.v1.Health/Watch"), "{paths:?}");
        assert!(method_paths(&[b"\xff\xff".as_slice()]).is_err());
    }

    fn value(page: &str, series: &str) -> f64 {
        page.lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or(0.0)
    }

    fn check(service: &str) -> HealthCheckRequest {
        HealthCheckRequest {
            service: service.to_owned(),
        }
    }

    /// Health and reflection served with no service of our own: every call counted on both
    /// ends with its code, from trailers (OK), trailers-only answers (NOT_FOUND,
    /// UNIMPLEMENTED) and calls given up (CANCELLED, DEADLINE_EXCEEDED); unknown methods
    /// labelled `unknown`; reflection lists health.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn calls_are_counted_on_both_ends_and_reflection_lists_health() {
        let metrics = telemetry::prometheus().unwrap();
        let shutdown = Shutdown::new();
        let (listener, addr) = crate::bind("grpc", &ListenConfig::loopback(0)).unwrap();
        let server = GrpcServer::new(
            GrpcServices::new(&[]),
            listener,
            &shutdown,
            &LimitsConfig::default(),
        )
        .unwrap();
        let serving = tokio::spawn(server.serve);
        let channel = grpc_channel(
            Endpoint::from_shared(format!("http://{addr}"))
                .unwrap()
                .connect_lazy(),
        );

        let mut health = HealthClient::new(channel.clone());
        health.check(check("")).await.unwrap();
        let missing = health.check(check("no.such.Service")).await.unwrap_err();
        assert_eq!(missing.code(), Code::NotFound);

        let mut raw = tonic::client::Grpc::new(channel.clone());
        raw.ready().await.unwrap();
        let unknown = raw
            .unary::<_, tonic_health::pb::HealthCheckResponse, _>(
                tonic::Request::new(check("")),
                PathAndQuery::from_static("/no.such.Service/Call"),
                tonic_prost::ProstCodec::default(),
            )
            .await
            .unwrap_err();
        assert_eq!(unknown.code(), Code::Unimplemented);

        // A watch dropped after its first answer: cancelled; dropped after its deadline:
        // deadline exceeded.
        let mut watch = health.watch(check("")).await.unwrap().into_inner();
        assert!(watch.message().await.unwrap().is_some());
        drop(watch);
        let mut request = tonic::Request::new(check(""));
        request.set_timeout(Duration::from_millis(50));
        let mut watch = health.watch(request).await.unwrap().into_inner();
        assert!(watch.message().await.unwrap().is_some());
        tokio::time::sleep(Duration::from_millis(80)).await;
        drop(watch);

        let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dead_addr = dead.local_addr().unwrap();
        drop(dead);
        let unreachable = HealthClient::new(grpc_channel(
            Endpoint::from_shared(format!("http://{dead_addr}"))
                .unwrap()
                .connect_lazy(),
        ))
        .check(check(""))
        .await
        .unwrap_err();
        assert_eq!(unreachable.code(), Code::Unavailable);

        let mut reflection = ServerReflectionClient::new(channel);
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut answers = reflection
            .server_reflection_info(tonic::codegen::tokio_stream::iter([request]))
            .await
            .unwrap()
            .into_inner();
        let answer: ServerReflectionResponse = answers.message().await.unwrap().unwrap();
        assert!(answers.message().await.unwrap().is_none());
        let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
            panic!("not a service list: {answer:?}");
        };
        let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "grpc.health.v1.Health",
                "grpc.reflection.v1.ServerReflection"
            ]
        );

        let page = metrics.render();
        let series = |side: &str, service: &str, method: &str, code: &str| {
            format!(
                r#"grpc_{side}_requests_total{{service="{service}",method="{method}",code="{code}"}}"#
            )
        };
        let health_service = "grpc.health.v1.Health";
        for (wanted, at_least) in [
            (series("server", health_service, "Check", "OK"), 1.0),
            (series("server", health_service, "Check", "NOT_FOUND"), 1.0),
            (series("server", "unknown", "unknown", "UNIMPLEMENTED"), 1.0),
            (series("client", health_service, "Check", "OK"), 1.0),
            (series("client", health_service, "Check", "NOT_FOUND"), 1.0),
            (
                series("client", health_service, "Check", "UNAVAILABLE"),
                1.0,
            ),
            (
                series("client", "no.such.Service", "Call", "UNIMPLEMENTED"),
                1.0,
            ),
            (series("client", health_service, "Watch", "CANCELLED"), 1.0),
            (
                series("client", health_service, "Watch", "DEADLINE_EXCEEDED"),
                1.0,
            ),
            (
                series(
                    "client",
                    "grpc.reflection.v1.ServerReflection",
                    "ServerReflectionInfo",
                    "OK",
                ),
                1.0,
            ),
            (
                format!(
                    r#"grpc_server_request_duration_seconds_count{{service="{health_service}",method="Check"}}"#
                ),
                2.0,
            ),
        ] {
            assert!(value(&page, &wanted) >= at_least, "{wanted} in\n{page}");
        }

        shutdown.trigger();
        serving.await.unwrap().unwrap();
    }
}
