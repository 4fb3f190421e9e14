//! What every gRPC call of idp records, served or made: a tracing span continuing (or
//! carrying) the W3C trace context in the metadata, and Prometheus metrics per method and
//! status code: `grpc_server_requests_total` / `grpc_server_request_duration_seconds` for
//! calls idp serves, `grpc_client_requests_total` / `grpc_client_request_duration_seconds`
//! for calls it makes.

use std::time::Instant;

use opentelemetry::propagation::{Extractor, Injector};
use tonic::metadata::{AsciiMetadataValue, MetadataKey, MetadataMap};
use tonic::{Code, Status};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The canonical name of a status code (`OK`, `NOT_FOUND`, …), as gRPC documents them.
pub(crate) fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

struct Extract<'a>(&'a MetadataMap);

impl Extractor for Extract<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .keys()
            .filter_map(|k| match k {
                tonic::metadata::KeyRef::Ascii(k) => Some(k.as_str()),
                tonic::metadata::KeyRef::Binary(_) => None,
            })
            .collect()
    }
}

struct Inject<'a>(&'a mut MetadataMap);

impl Injector for Inject<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            MetadataKey::from_bytes(key.as_bytes()),
            AsciiMetadataValue::try_from(value),
        ) {
            self.0.insert(key, value);
        }
    }
}

/// Writes the current span's trace context into outgoing metadata (`traceparent`).
pub(crate) fn inject_trace_context(metadata: &mut MetadataMap) {
    let cx = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&cx, &mut Inject(metadata))
    });
}

/// Runs the handler of a served call inside a span that continues the caller's trace, and
/// counts it by method and resulting code.
pub(crate) async fn serve<T>(
    service: &'static str,
    method: &'static str,
    metadata: &MetadataMap,
    handler: impl Future<Output = Result<T, Status>>,
) -> Result<T, Status> {
    let span = tracing::info_span!(
        "grpc.server",
        otel.name = %format_args!("{service}/{method}"),
        otel.kind = "server",
        rpc.system = "grpc",
        rpc.service = service,
        rpc.method = method,
        rpc.grpc.status_code = tracing::field::Empty,
    );
    let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(&Extract(metadata)));
    let _ = span.set_parent(parent);
    let started = Instant::now();
    let result = handler.instrument(span.clone()).await;
    let code = result.as_ref().map_or_else(Status::code, |_| Code::Ok);
    span.record("rpc.grpc.status_code", code as i32);
    let labels = [
        ("service", service),
        ("method", method),
        ("code", code_name(code)),
    ];
    metrics::counter!("grpc_server_requests_total", &labels).increment(1);
    metrics::histogram!("grpc_server_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    result
}

/// Counts a call idp made, by method and resulting code.
pub(crate) fn record_client_call(
    service: &'static str,
    method: &'static str,
    code: Code,
    started: Instant,
) {
    let labels = [
        ("service", service),
        ("method", method),
        ("code", code_name(code)),
    ];
    metrics::counter!("grpc_client_requests_total", &labels).increment(1);
    metrics::histogram!("grpc_client_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
}
