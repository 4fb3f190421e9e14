//! Helpers for the services' `main`: configuration loading with the one-line error and
//! exit code 2, the Tokio runtime, and exit codes.

use std::path::Path;
use std::process::ExitCode;

use config::{ConfigSource, Validate};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Exit code for configuration and usage errors (clap uses 2 for usage errors too).
pub const EXIT_CONFIG: u8 = 2;

/// Loads `service`'s configuration from `--config FILE` (or `configs/<service>.yaml`) and
/// the environment. On failure prints exactly one line, `config error: <key>: <problem>`,
/// to stderr and returns exit code 2 for `main` to return.
pub fn load_config<T>(service: &str, file: Option<&Path>) -> Result<T, ExitCode>
where
    T: Default + Serialize + DeserializeOwned + Validate,
{
    let source = match file {
        Some(path) => ConfigSource::File(path.to_owned()),
        None => ConfigSource::DefaultLocation,
    };
    config::load(service, &source).map_err(|e| {
        eprintln!("config error: {e}");
        ExitCode::from(EXIT_CONFIG)
    })
}

/// A multi-threaded Tokio runtime with `worker_threads` workers (0: one per core).
pub fn tokio_runtime(worker_threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if worker_threads > 0 {
        builder.worker_threads(worker_threads);
    }
    builder.build()
}

/// Maps a command's outcome to the process exit code, printing the error on one line.
pub fn exit_code<E: std::fmt::Display>(result: Result<(), E>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "exiting");
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `command` on a fresh Tokio runtime with telemetry set up for `service`, flushes
/// telemetry afterwards, and maps the outcome to an exit code (0, or 1 with the error printed
/// on one line).
pub fn run<F, Fut, E>(
    service: &'static str,
    runtime: &crate::RuntimeConfig,
    telemetry_config: &telemetry::TelemetryConfig,
    command: F,
) -> ExitCode
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let rt = match tokio_runtime(runtime.worker_threads) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let telemetry = match telemetry::init(service, telemetry_config) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        let outcome = command().await;
        let code = exit_code(outcome);
        telemetry.shutdown();
        code
    })
}
