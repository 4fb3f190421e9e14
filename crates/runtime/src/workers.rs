use config::{ConfigError, Validate};
use serde::{Deserialize, Serialize};

/// The `runtime` section: how many threads serve requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Tokio worker threads and actix-web HTTP workers; 0 means one per CPU core.
    pub worker_threads: usize,
}

impl RuntimeConfig {
    /// The number of HTTP workers to start.
    pub fn http_workers(&self) -> usize {
        if self.worker_threads > 0 {
            self.worker_threads
        } else {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        }
    }
}

impl Validate for RuntimeConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.worker_threads > 1024 {
            return Err(ConfigError::new("worker_threads", "must be at most 1024"));
        }
        Ok(())
    }
}
