//! Process telemetry: structured logs, OpenTelemetry traces and the Prometheus recorder.
//!
//! - Logs go to stderr, pretty when stderr is a terminal and JSON otherwise (or as
//!   configured); the filter comes from `RUST_LOG` when set, else from
//!   `telemetry.log_filter`.
//! - Traces are exported over OTLP/gRPC when `telemetry.otlp_endpoint` is set. The channel
//!   connects lazily, so a collector that is down never delays or fails the start; spans are
//!   batched and dropped, not queued without bound, while it is unreachable. The W3C trace
//!   context propagator is installed so incoming `traceparent` headers continue a trace.
//! - A client's malformed requests are not errors of the service: what actix-http logs
//!   about them at ERROR is counted in `http_malformed_requests_total` instead of written
//!   ([`log_layer`]).
//! - Metrics go through the `metrics` facade into one process-wide Prometheus recorder
//!   (the facade itself is process-global), rendered by the services' admin `/metrics`.

mod config;
mod metrics_recorder;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

pub use config::{LogFormat, TelemetryConfig};
pub use metrics_recorder::{PrometheusHandle, prometheus};

/// Errors while setting up telemetry.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The OTLP exporter could not be built from the configured endpoint.
    #[error("telemetry.otlp_endpoint: {0}")]
    Exporter(String),
    /// A global tracing subscriber was already installed in this process.
    #[error("a tracing subscriber is already installed")]
    AlreadyInitialised,
    /// The Prometheus recorder could not be installed.
    #[error("metrics recorder: {0}")]
    Metrics(String),
}

/// Keeps the trace pipeline alive; call [`Telemetry::shutdown`] before exit to flush spans.
#[derive(Debug)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Flushes and stops the trace exporter (bounded by the exporter's timeout).
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(e) = provider.shutdown()
        {
            tracing::warn!(error = %e, "trace exporter shutdown failed");
        }
    }
}

/// Installs the global tracing subscriber for `service` (the OpenTelemetry
/// `service.name`). Must run inside a Tokio runtime when an OTLP endpoint is configured.
pub fn init(service: &'static str, config: &TelemetryConfig) -> Result<Telemetry, TelemetryError> {
    // Install the metrics recorder first, so nothing recorded during start-up is lost.
    prometheus()?;
    let filter = match std::env::var("RUST_LOG") {
        Ok(from_env) if !from_env.trim().is_empty() => EnvFilter::try_new(from_env),
        _ => EnvFilter::try_new(&config.log_filter),
    }
    .unwrap_or_else(|_| EnvFilter::new("info"));

    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let json = match config.log_format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !terminal,
    };
    let fmt_layer = log_layer(json, terminal, std::io::stderr);

    let provider = match &config.otlp_endpoint {
        Some(endpoint) => Some(tracer_provider(
            service,
            endpoint.as_str(),
            config.trace_sample_ratio,
        )?),
        None => None,
    };
    let otel_layer = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer(service))
            .boxed()
    });
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );

    tracing_subscriber::registry()
        .with(filter)
        .with(fmt_layer)
        .with(otel_layer)
        .try_init()
        .map_err(|_| TelemetryError::AlreadyInitialised)?;
    Ok(Telemetry { provider })
}

/// Where actix-http's HTTP/1 connection handling logs; it logs what a client got wrong on
/// the wire (a malformed request line or header, bad chunked encoding, a connection cut
/// mid-body) at ERROR, after it has answered 400 or closed the connection.
const ACTIX_CONNECTION_TARGET: &str = "actix_http::h1";

/// Whether `meta` is one of those client-caused connection errors.
fn is_client_connection_error(meta: &tracing::Metadata<'_>) -> bool {
    *meta.level() == tracing::Level::ERROR && meta.target().starts_with(ACTIX_CONNECTION_TARGET)
}

/// Counts the client-caused connection errors actix-http reports, in
/// `http_malformed_requests_total`, so a flood of them shows on a dashboard instead of in
/// the error log.
struct MalformedRequests;

impl<S: tracing::Subscriber> Layer<S> for MalformedRequests {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if is_client_connection_error(event.metadata()) {
            metrics::counter!("http_malformed_requests_total").increment(1);
        }
    }
}

/// The log output every service installs: JSON (with the current span) or text (`ansi`
/// colours) lines into `writer`, plus the `http_malformed_requests_total` counter.
///
/// A client cannot flood the error log: what actix-http logs at ERROR about a client's
/// malformed request or broken connection (target `actix_http::h1`) is counted and not
/// written; the 400 answer and the counter are what is observable of it.
pub fn log_layer<S, W>(json: bool, ansi: bool, writer: W) -> Box<dyn Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let quiet = tracing_subscriber::filter::filter_fn(|meta| !is_client_connection_error(meta));
    let fmt = if json {
        tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(writer)
            .with_filter(quiet)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_ansi(ansi)
            .with_writer(writer)
            .with_filter(quiet)
            .boxed()
    };
    fmt.and_then(MalformedRequests).boxed()
}

fn tracer_provider(
    service: &'static str,
    endpoint: &str,
    ratio: f64,
) -> Result<SdkTracerProvider, TelemetryError> {
    use opentelemetry_otlp::WithExportConfig;
    use opentelemetry_sdk::trace::{
        Sampler, span_processor_with_async_runtime::BatchSpanProcessor,
    };

    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .with_timeout(std::time::Duration::from_secs(3))
        .build()
        .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
    let processor =
        BatchSpanProcessor::builder(exporter, opentelemetry_sdk::runtime::Tokio).build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            ratio,
        ))))
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(service)
                .build(),
        )
        .build();
    opentelemetry::global::set_tracer_provider(provider.clone());
    Ok(provider)
}
