use std::time::Instant;

use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use opentelemetry::propagation::Extractor;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The request id header: taken from the request when it is a plausible id
/// ([`request_id`]), otherwise made here, and sent back on every response.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Middleware (use with `actix_web::middleware::from_fn`) that observes every request:
///
/// - a tracing span `http.request` named `METHOD /route/{pattern}`, continuing the caller's
///   W3C trace context (`traceparent`/`tracestate` headers), exported over OTLP when
///   configured, with the field `request_id`, so every log line written while the request
///   is served (an edge logging a failure's cause, say) names the request;
/// - the response header `x-request-id` with that id (a proxy's or client's own id is kept),
///   so a client can quote it and an operator find the log lines;
/// - `http_requests_total` (counter) and `http_request_duration_seconds` (histogram) per
///   method, route pattern and status.
///
/// The route label is the matched pattern (`/clients/{id}`), never the raw path, and
/// `unmatched` for 404s, so label cardinality stays bounded whatever clients send.
pub async fn observe_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let method = method_label(req.method());
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let id = request_id(req.headers().get(REQUEST_ID_HEADER));
    let span = tracing::info_span!(
        "http.request",
        otel.name = %format_args!("{method} {route}"),
        otel.kind = "server",
        request_id = %id,
        http.request.method = method,
        http.route = %route,
        http.response.status_code = tracing::field::Empty,
    );
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&Headers(req.headers()))
    });
    let _ = span.set_parent(parent);
    let mut result = next.call(req).instrument(span.clone()).await;
    let status = match &mut result {
        Ok(res) => {
            if let Ok(value) = HeaderValue::from_str(&id) {
                res.headers_mut()
                    .insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
            }
            res.status()
        }
        Err(e) => e.as_response_error().status_code(),
    };
    span.record("http.response.status_code", status.as_u16());
    let elapsed = started.elapsed().as_secs_f64();
    REQUEST_METRICS.with_borrow_mut(|handles| {
        let key = (method, route, status.as_u16());
        if let Some((count, duration)) = handles.get(&key) {
            count.increment(1);
            duration.record(elapsed);
            return;
        }
        let (method, route, status) = key.clone();
        let labels = [
            ("method", method.to_owned()),
            ("route", route),
            ("status", status.to_string()),
        ];
        let count = metrics::counter!("http_requests_total", &labels);
        let duration = metrics::histogram!("http_request_duration_seconds", &labels);
        count.increment(1);
        duration.record(elapsed);
        handles.insert(key, (count, duration));
    });
    result
}

/// The handles of one method, route pattern and status's request metrics.
type RequestMetrics =
    std::collections::HashMap<(&'static str, String, u16), (metrics::Counter, metrics::Histogram)>;

thread_local! {
    /// Each worker thread's handles of the request metrics, by method, route pattern and
    /// status (a bounded set: patterns, not paths). Naming a labelled metric through the
    /// facade looks it up in the recorder's shared registry on every call, hashing and
    /// comparing its labels (1.2% of the core in a profile of the opaque token row); a
    /// handle records at once. The recorder is process-wide and installed before any
    /// server starts (`telemetry::prometheus`), so a handle never goes stale.
    static REQUEST_METRICS: std::cell::RefCell<RequestMetrics> = Default::default();
}

/// The id of a request: the caller's `x-request-id` when it is 1 to 64 characters of
/// `A-Z a-z 0-9 - _ . : /` (anything else could forge log lines or grow them), otherwise
/// 32 hex digits: a per-thread random prefix and a counter.
fn request_id(header: Option<&HeaderValue>) -> String {
    let given = header.and_then(|v| v.to_str().ok()).filter(|v| {
        (1..=64).contains(&v.len())
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:/".contains(&b))
    });
    if let Some(given) = given {
        return given.to_owned();
    }
    NEXT_ID.with(|(prefix, counter)| {
        let n = counter.get();
        counter.set(n.wrapping_add(1));
        format!("{prefix:016x}{n:016x}")
    })
}

thread_local! {
    /// Made ids: 64 random bits drawn once per worker thread, then a counter, so the hot
    /// paths (token, introspection, JWKS) pay no system call and no allocation beyond the
    /// id itself. An id names a request, it guards nothing: without OS randomness (never
    /// seen in practice) the prefix is merely zero and ids stay unique within the thread.
    static NEXT_ID: (u64, std::cell::Cell<u64>) = {
        let mut bytes = [0u8; 8];
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes);
        (u64::from_be_bytes(bytes), std::cell::Cell::new(0))
    };
}

struct Headers<'a>(&'a actix_web::http::header::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .keys()
            .map(actix_web::http::header::HeaderName::as_str)
            .collect()
    }
}

fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::{Arc, Mutex};

    use actix_web::{App, HttpResponse, test, web};

    use super::*;

    /// The log lines a test's subscriber wrote.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[actix_web::test]
    async fn every_response_and_log_line_carries_the_request_id() {
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let app = test::init_service(
            App::new()
                .wrap(actix_web::middleware::from_fn(observe_requests))
                .route(
                    "/fail",
                    web::get().to(|| async {
                        tracing::error!("the cause");
                        HttpResponse::InternalServerError().finish()
                    }),
                ),
        )
        .await;

        let res =
            test::call_service(&app, test::TestRequest::get().uri("/fail").to_request()).await;
        let made = res
            .headers()
            .get(REQUEST_ID_HEADER)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(made.len(), 32, "{made}");
        assert!(made.bytes().all(|b| b.is_ascii_hexdigit()), "{made}");
        let logged = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        assert!(
            logged.contains(&format!("request_id={made}")) && logged.contains("the cause"),
            "{logged}"
        );

        let kept = test::TestRequest::get()
            .uri("/fail")
            .insert_header((REQUEST_ID_HEADER, "lb-7f3a.2:x/1"))
            .to_request();
        let res = test::call_service(&app, kept).await;
        assert_eq!(
            res.headers().get(REQUEST_ID_HEADER).unwrap(),
            "lb-7f3a.2:x/1"
        );

        for forged in ["a b", "x\"} level=ERROR", &"a".repeat(65), ""] {
            let req = test::TestRequest::get()
                .uri("/missing")
                .insert_header((REQUEST_ID_HEADER, forged))
                .to_request();
            let res = test::call_service(&app, req).await;
            let id = res
                .headers()
                .get(REQUEST_ID_HEADER)
                .unwrap()
                .to_str()
                .unwrap();
            assert_eq!(id.len(), 32, "{forged:?} replaced: {id}");
            assert_ne!(id, forged);
        }
    }
}
