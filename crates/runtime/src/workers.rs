use config::{ConfigError, Validate};
use serde::{Deserialize, Serialize};

/// The `runtime` section: how many threads serve requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Tokio worker threads and actix-web HTTP workers; 0 means one per CPU core.
    pub worker_threads: usize,
    /// Threads of each blocking pool: the main Tokio runtime's and each HTTP worker's
    /// (every listener's). They run SQLite queries (one per pooled connection at a time),
    /// key generation and name resolution. Tokio's default is 512 per pool, and under load
    /// a pool grows far beyond the work it has: on one core, queries that finish are not
    /// yet counted idle when the next arrives. Measured on authz with one worker on SQLite
    /// (32 connections introspecting a JWT for 16 s): 45 threads and 41.6 MiB RSS with
    /// Tokio's default, 26 threads and 39.4 MiB with 16, at the same rate. A lower value
    /// saves a little more, but a blocked name lookup (a client's `jwks_uri` whose DNS
    /// hangs) holds a thread, and the worker's queries wait behind such threads.
    pub max_blocking_threads: usize,
}

/// [`RuntimeConfig::max_blocking_threads`] by default: room for every connection of the
/// default database pool (16) to run a query at once.
pub const DEFAULT_MAX_BLOCKING_THREADS: usize = 16;

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            worker_threads: 0,
            max_blocking_threads: DEFAULT_MAX_BLOCKING_THREADS,
        }
    }
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
        if !(1..=1024).contains(&self.max_blocking_threads) {
            return Err(ConfigError::new(
                "max_blocking_threads",
                "must be between 1 and 1024",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;

    #[test]
    fn max_blocking_threads_defaults_to_16_and_is_bounded() {
        let config = RuntimeConfig::default();
        assert_eq!(config.max_blocking_threads, 16);
        assert!(config.validate().is_ok());
        for bad in [0, 1025] {
            let config = RuntimeConfig {
                max_blocking_threads: bad,
                ..RuntimeConfig::default()
            };
            assert_eq!(config.validate().unwrap_err().key, "max_blocking_threads");
        }
    }

    /// The main runtime's blocking pool keeps to its cap: six sleeping tasks share two
    /// threads.
    #[test]
    fn the_main_runtime_keeps_its_blocking_pool_to_the_cap() {
        let runtime = crate::cli::tokio_runtime(1, 2).unwrap();
        let threads = Arc::new(Mutex::new(HashSet::new()));
        runtime.block_on(async {
            let tasks: Vec<_> = (0..6)
                .map(|_| {
                    let threads = Arc::clone(&threads);
                    tokio::task::spawn_blocking(move || {
                        threads.lock().unwrap().insert(std::thread::current().id());
                        std::thread::sleep(Duration::from_millis(50));
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
        });
        assert_eq!(threads.lock().unwrap().len(), 2);
    }
}
