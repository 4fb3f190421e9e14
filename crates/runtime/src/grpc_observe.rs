//! The one gRPC edge of every service and client: what each call records, served or made.
//!
//! - A span per call named `package.Service/Method`, with the OpenTelemetry semantic
//!   conventions for RPC (`rpc.system=grpc`, `rpc.service`, `rpc.method`,
//!   `rpc.grpc.status_code`, `otel.kind` `server` or `client`). A served call continues the
//!   caller's W3C trace context (`traceparent`/`tracestate` metadata, the propagator
//!   `telemetry::init` installs); a call made carries the current trace context, so one trace
//!   spans every hop.
//! - `grpc_server_requests_total{service,method,code}` and
//!   `grpc_server_request_duration_seconds{service,method}` for served calls,
//!   `grpc_client_requests_total{service,method,code}` and
//!   `grpc_client_request_duration_seconds{service,method}` for calls made. `code` is the
//!   canonical name of the gRPC status (`OK`, `UNAUTHENTICATED`, …) read from the
//!   `grpc-status` of the response: its headers for a trailers-only answer (how errors are
//!   sent), else its trailers. The duration runs until that status is known.
//!
//! A request message that does not decode is answered `INVALID_ARGUMENT`, not tonic's
//! `INTERNAL`, and counted in `grpc_undecodable_requests_total`.
//!
//! A call that ends without a status counts as `CANCELLED` (the peer or the caller gave
//! up), or `DEADLINE_EXCEEDED` on the client when its `grpc-timeout` had passed by then.

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http_body::Frame;
use opentelemetry::propagation::{Extractor, Injector};
use tonic::Code;
use tonic::body::Body;
use tonic::codegen::http::{self, HeaderMap, HeaderName, HeaderValue};
use tonic::codegen::{Bytes, Service};
use tonic::transport::Channel;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The canonical name of a status code (`OK`, `NOT_FOUND`, …), as gRPC's `statuscodes.md`
/// spells it: the `code` label of the gRPC request metrics.
#[must_use]
pub fn code_name(code: Code) -> &'static str {
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

/// Which end of a call this process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Server,
    Client,
}

/// One observed call: its span, labels and clock, recorded exactly once (on the status, or
/// when dropped without one).
struct Call {
    side: Side,
    service: String,
    method: String,
    span: tracing::Span,
    started: Instant,
    deadline: Option<Duration>,
    finished: bool,
}

impl Call {
    fn new(side: Side, service: String, method: String, span: tracing::Span) -> Self {
        Self {
            side,
            service,
            method,
            span,
            started: Instant::now(),
            deadline: None,
            finished: false,
        }
    }

    fn finish(&mut self, code: Code) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        self.span.record("rpc.grpc.status_code", code as i32);
        // OpenTelemetry RPC conventions: a client span is an error on any status but OK; a
        // server span only where the server is at fault.
        let error = match self.side {
            Side::Client => code != Code::Ok,
            Side::Server => matches!(
                code,
                Code::Unknown
                    | Code::DeadlineExceeded
                    | Code::Unimplemented
                    | Code::Internal
                    | Code::Unavailable
                    | Code::DataLoss
            ),
        };
        if error {
            self.span.record("otel.status_code", "ERROR");
        }
        let (requests, duration) = match self.side {
            Side::Server => (
                "grpc_server_requests_total",
                "grpc_server_request_duration_seconds",
            ),
            Side::Client => (
                "grpc_client_requests_total",
                "grpc_client_request_duration_seconds",
            ),
        };
        let labels = [
            ("service", self.service.clone()),
            ("method", self.method.clone()),
            ("code", code_name(code).to_owned()),
        ];
        metrics::counter!(requests, &labels).increment(1);
        metrics::histogram!(duration, &labels[..2]).record(self.started.elapsed().as_secs_f64());
    }

    /// Records the status of `response`: at once for a trailers-only answer, else when its
    /// body yields the trailers (or ends without them).
    fn watch(mut self, response: http::Response<Body>) -> http::Response<Body> {
        if let Some(code) = status_of(&response) {
            self.finish(code);
            return response;
        }
        if http_body::Body::is_end_stream(response.body()) {
            self.finish(Code::Unknown);
            return response;
        }
        response.map(|inner| Body::new(ObservedBody { inner, call: self }))
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        let code = match self.deadline {
            Some(deadline) if self.started.elapsed() >= deadline => Code::DeadlineExceeded,
            _ => Code::Cancelled,
        };
        self.finish(code);
    }
}

/// The status a response announces in its headers: `grpc-status` of a trailers-only answer,
/// or the code gRPC maps a non-200 HTTP status to (`doc/http-grpc-status-mapping.md`).
fn status_of(response: &http::Response<Body>) -> Option<Code> {
    if let Some(code) = response.headers().get("grpc-status") {
        return Some(Code::from_bytes(code.as_bytes()));
    }
    match response.status().as_u16() {
        200 => None,
        400 => Some(Code::Internal),
        401 => Some(Code::Unauthenticated),
        403 => Some(Code::PermissionDenied),
        404 => Some(Code::Unimplemented),
        429 | 502..=504 => Some(Code::Unavailable),
        _ => Some(Code::Unknown),
    }
}

/// A response body that records the call's status from its trailers.
struct ObservedBody {
    inner: Body,
    call: Call,
}

impl http_body::Body for ObservedBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref() {
                    let code = trailers
                        .get("grpc-status")
                        .map_or(Code::Unknown, |c| Code::from_bytes(c.as_bytes()));
                    self.call.finish(code);
                }
            }
            Poll::Ready(Some(Err(status))) => {
                let code = status.code();
                self.call.finish(code);
            }
            Poll::Ready(None) => self.call.finish(Code::Unknown),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// `package.Service` and `Method` of a gRPC request path (`/package.Service/Method`).
fn split_path(path: &str) -> Option<(&str, &str)> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    (!service.is_empty() && !method.is_empty() && !method.contains('/'))
        .then_some((service, method))
}

fn span(side: Side, service: &str, method: &str) -> tracing::Span {
    let kind = match side {
        Side::Server => "server",
        Side::Client => "client",
    };
    macro_rules! rpc_span {
        ($name:literal) => {
            tracing::info_span!(
                $name,
                otel.name = %format_args!("{service}/{method}"),
                otel.kind = kind,
                otel.status_code = tracing::field::Empty,
                rpc.system = "grpc",
                rpc.service = service,
                rpc.method = method,
                rpc.grpc.status_code = tracing::field::Empty,
            )
        };
    }
    match side {
        Side::Server => rpc_span!("grpc.server"),
        Side::Client => rpc_span!("grpc.client"),
    }
}

struct Extract<'a>(&'a HeaderMap);

impl Extractor for Extract<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

struct Inject<'a>(&'a mut HeaderMap);

impl Injector for Inject<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::try_from(value),
        ) {
            self.0.insert(key, value);
        }
    }
}

/// The `grpc-timeout` of a request (gRPC over HTTP/2: up to 8 digits and a unit).
fn grpc_timeout(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.checked_mul(3600)?),
        "M" => Duration::from_secs(amount.checked_mul(60)?),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// The server half: a tower layer for tonic servers (`Server::layer`) that observes every
/// call as the module documentation says. [`crate::GrpcServer`] applies it to every service
/// a process offers.
///
/// The labels name only methods the server offers (from its file descriptor sets); any
/// other path counts as service and method `unknown`, so what clients send cannot grow the
/// label set.
#[derive(Debug, Clone)]
pub struct GrpcServerLayer {
    methods: Arc<HashSet<String>>,
}

impl GrpcServerLayer {
    /// A layer naming the methods whose paths (`/package.Service/Method`) are in `methods`.
    #[must_use]
    pub fn new(methods: HashSet<String>) -> Self {
        Self {
            methods: Arc::new(methods),
        }
    }
}

impl<S> tower_layer::Layer<S> for GrpcServerLayer {
    type Service = GrpcServerObserve<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcServerObserve {
            inner,
            methods: Arc::clone(&self.methods),
        }
    }
}

/// A tonic server service wrapped by [`GrpcServerLayer`].
#[derive(Debug, Clone)]
pub struct GrpcServerObserve<S> {
    inner: S,
    methods: Arc<HashSet<String>>,
}

impl<S, B> Service<http::Request<B>> for GrpcServerObserve<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path();
        let (service, method) = split_path(path)
            .filter(|_| self.methods.contains(path))
            .unwrap_or(("unknown", "unknown"));
        let span = span(Side::Server, service, method);
        let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.extract(&Extract(request.headers()))
        });
        let _ = span.set_parent(parent);
        let mut call = Call::new(
            Side::Server,
            service.to_owned(),
            method.to_owned(),
            span.clone(),
        );
        let future = span.in_scope(|| self.inner.call(request));
        Box::pin(
            async move {
                match future.await {
                    Ok(mut response) => {
                        undecodable_is_invalid_argument(&mut response);
                        Ok(call.watch(response))
                    }
                    Err(e) => {
                        call.finish(Code::Unknown);
                        Err(e)
                    }
                }
            }
            .instrument(span),
        )
    }
}

/// What tonic's prost codec says (as `INTERNAL`) when a request message does not decode.
const DECODE_FAILURE: &str = "failed to decode Protobuf message";

/// A request whose message is not valid protobuf is the caller's error: tonic answers it
/// with `INTERNAL` before the handler (and so authentication) runs; this turns exactly that
/// answer (a trailers-only `INTERNAL` whose message is the codec's decode failure) into
/// `INVALID_ARGUMENT` (gRPC `statuscodes.md`: "the client specified an invalid argument"),
/// without the decoder's details. Every other `INTERNAL` is left as it is.
fn undecodable_is_invalid_argument(response: &mut http::Response<Body>) {
    let Some(status) = tonic::Status::from_header_map(response.headers()) else {
        return;
    };
    if status.code() == Code::Internal && status.message().starts_with(DECODE_FAILURE) {
        let replacement =
            tonic::Status::invalid_argument("the request message is not valid protobuf");
        if replacement.add_header(response.headers_mut()).is_ok() {
            metrics::counter!("grpc_undecodable_requests_total").increment(1);
        }
    }
}

/// The client half: a tower layer for a tonic channel that observes every call as the
/// module documentation says. Build clients with [`grpc_channel`].
#[derive(Debug, Clone, Copy, Default)]
pub struct GrpcClientLayer;

impl<S> tower_layer::Layer<S> for GrpcClientLayer {
    type Service = GrpcClientObserve<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcClientObserve { inner }
    }
}

/// A channel wrapped by [`GrpcClientLayer`]. Failures of the channel itself (cannot connect,
/// connection lost) come out as the [`tonic::Status`] tonic would make of them.
#[derive(Debug, Clone)]
pub struct GrpcClientObserve<S> {
    inner: S,
}

/// A tonic channel whose every call is traced and counted: what generated clients of the
/// services are built on (`SessionsClient<GrpcChannel>`).
pub type GrpcChannel = GrpcClientObserve<Channel>;

/// Wraps `channel` in [`GrpcClientLayer`].
#[must_use]
pub fn grpc_channel(channel: Channel) -> GrpcChannel {
    GrpcClientObserve { inner: channel }
}

impl<S> Service<http::Request<Body>> for GrpcClientObserve<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
    S::Error: Into<tonic::codegen::StdError>,
{
    type Response = http::Response<Body>;
    type Error = tonic::Status;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner
            .poll_ready(cx)
            .map_err(|e| tonic::Status::from_error(e.into()))
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        let (service, method) = split_path(request.uri().path())
            .map_or(("unknown".to_owned(), "unknown".to_owned()), |(s, m)| {
                (s.to_owned(), m.to_owned())
            });
        let span = span(Side::Client, &service, &method);
        let context = span.context();
        opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.inject_context(&context, &mut Inject(request.headers_mut()));
        });
        let mut call = Call::new(Side::Client, service, method, span.clone());
        call.deadline = grpc_timeout(request.headers());
        let future = span.in_scope(|| self.inner.call(request));
        Box::pin(
            async move {
                match future.await {
                    Ok(response) => Ok(call.watch(response)),
                    Err(e) => {
                        let status = tonic::Status::from_error(e.into());
                        call.finish(status.code());
                        Err(status)
                    }
                }
            }
            .instrument(span),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_service_and_method() {
        assert_eq!(
            split_path("/authz.v1.LoginFlow/AcceptLogin"),
            Some(("authz.v1.LoginFlow", "AcceptLogin"))
        );
        for bad in ["", "/", "/svc", "/svc/", "//m", "/a/b/c", "svc/m"] {
            assert_eq!(split_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn grpc_timeouts_parse_every_unit() {
        let parse = |v: &str| {
            let mut headers = HeaderMap::new();
            headers.insert("grpc-timeout", HeaderValue::from_str(v).unwrap());
            grpc_timeout(&headers)
        };
        assert_eq!(parse("5S"), Some(Duration::from_secs(5)));
        assert_eq!(parse("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse("2M"), Some(Duration::from_secs(120)));
        assert_eq!(parse("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse("7u"), Some(Duration::from_micros(7)));
        assert_eq!(parse("9n"), Some(Duration::from_nanos(9)));
        for bad in ["", "S", "5", "5s", "123456789S", "-1S"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn statuses_come_from_headers_or_the_http_status() {
        let response = |status: u16, grpc: Option<&str>| {
            let mut builder = http::Response::builder().status(status);
            if let Some(code) = grpc {
                builder = builder.header("grpc-status", code);
            }
            builder.body(Body::empty()).unwrap()
        };
        assert_eq!(status_of(&response(200, None)), None);
        assert_eq!(
            status_of(&response(200, Some("16"))),
            Some(Code::Unauthenticated)
        );
        assert_eq!(status_of(&response(200, Some("0"))), Some(Code::Ok));
        assert_eq!(status_of(&response(404, None)), Some(Code::Unimplemented));
        assert_eq!(status_of(&response(503, None)), Some(Code::Unavailable));
        assert_eq!(code_name(Code::Unauthenticated), "UNAUTHENTICATED");
        assert_eq!(code_name(Code::Ok), "OK");
    }
}
