//! The rs configuration (`configs/rs.yaml`, `RS__…` environment variables).

use config::{ConfigError, Validate};
use runtime::{ListenConfig, RuntimeConfig, ShutdownConfig};
use serde::{Deserialize, Serialize};
use telemetry::TelemetryConfig;

/// Everything rs reads at start. Unknown keys are refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RsConfig {
    /// Public API listener.
    pub http: ListenConfig,
    /// Admin listener (`/metrics`, `/healthz`, `/readyz`).
    pub admin: ListenConfig,
    /// Logs, traces, metrics.
    pub telemetry: TelemetryConfig,
    /// Draining on stop.
    pub shutdown: ShutdownConfig,
    /// Worker threads.
    pub runtime: RuntimeConfig,
}

impl Default for RsConfig {
    fn default() -> Self {
        Self {
            http: ListenConfig::loopback(8082),
            admin: ListenConfig::loopback(9082),
            telemetry: TelemetryConfig::default(),
            shutdown: ShutdownConfig::default(),
            runtime: RuntimeConfig::default(),
        }
    }
}

impl Validate for RsConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        config::validate_sections(&[
            ("http", &self.http),
            ("admin", &self.admin),
            ("telemetry", &self.telemetry),
            ("shutdown", &self.shutdown),
            ("runtime", &self.runtime),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_file_matches_the_compiled_defaults() {
        let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../../configs/rs.yaml");
        let loaded: RsConfig =
            config::load_with_env("rs", &config::ConfigSource::File(file.into()), Vec::new())
                .unwrap();
        assert_eq!(loaded, RsConfig::default());
    }
}
