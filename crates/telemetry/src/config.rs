use config::{ConfigError, Validate};
use serde::{Deserialize, Serialize};
use url::Url;

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Pretty when stderr is a terminal, JSON otherwise.
    #[default]
    Auto,
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// The `telemetry` section of every service's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Log line format.
    pub log_format: LogFormat,
    /// `tracing` filter directives (`info,authz=debug`); `RUST_LOG` overrides it.
    pub log_filter: String,
    /// OTLP/gRPC collector endpoint (`http://otel-collector:4317`); traces are not
    /// exported when absent.
    pub otlp_endpoint: Option<Url>,
    /// Fraction of new traces sampled, 0.0 to 1.0; incoming sampled parents are honoured.
    pub trace_sample_ratio: f64,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            log_format: LogFormat::Auto,
            log_filter: "info".to_owned(),
            otlp_endpoint: None,
            trace_sample_ratio: 1.0,
        }
    }
}

impl TelemetryConfig {
    /// The settings for a one-shot command (`migrate`, `keys …`, `users …`), which prints
    /// its result on stdout: the same, but logging warnings and errors only.
    #[must_use]
    pub fn for_command(&self) -> Self {
        Self {
            log_filter: "warn".to_owned(),
            ..self.clone()
        }
    }
}

impl Validate for TelemetryConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        tracing_subscriber::EnvFilter::try_new(&self.log_filter)
            .map_err(|e| ConfigError::new("log_filter", e.to_string()))?;
        if let Some(url) = &self.otlp_endpoint
            && !matches!(url.scheme(), "http" | "https")
        {
            return Err(ConfigError::new(
                "otlp_endpoint",
                "must be an http:// or https:// URL",
            ));
        }
        if !(0.0..=1.0).contains(&self.trace_sample_ratio) {
            return Err(ConfigError::new(
                "trace_sample_ratio",
                "must be between 0.0 and 1.0",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_filters_and_endpoints() {
        let mut c = TelemetryConfig {
            log_filter: "info,[".into(),
            ..TelemetryConfig::default()
        };
        assert_eq!(c.validate().unwrap_err().key, "log_filter");
        c.log_filter = "info".into();
        c.otlp_endpoint = Some("ftp://collector".parse().unwrap());
        assert_eq!(c.validate().unwrap_err().key, "otlp_endpoint");
        c.otlp_endpoint = None;
        c.trace_sample_ratio = 1.5;
        assert_eq!(c.validate().unwrap_err().key, "trace_sample_ratio");
        c.trace_sample_ratio = 0.5;
        assert!(c.validate().is_ok());
    }
}
