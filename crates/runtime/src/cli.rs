//! The command line every service shares: the common subcommands (`serve`,
//! `check-config`, `config-reference`, and `migrate` for services with a database),
//! defined once here and flattened into each service's own command enum, and the helpers
//! behind them: configuration loading with the one-line error and exit code 2, the Tokio
//! runtime, and exit codes.

use std::path::Path;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use config::{ConfigSource, Validate};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Exit code for configuration and usage errors (clap uses 2 for usage errors too).
pub const EXIT_CONFIG: u8 = 2;

/// The subcommands of every service, flattened into its command enum with
/// `#[command(flatten)]`; `S` are the service's `serve` options ([`NoArgs`] for none).
/// Behaviour, the same everywhere: `config-reference` prints the documented configuration
/// without reading any ([`config_reference`]); `check-config` loads it and prints
/// `<service>: configuration is valid` ([`check_config`]), or the one-line error with exit
/// code 2 ([`load_config`]); `serve` runs until SIGTERM or ctrl-c ([`run`]). `--help` lists
/// `serve`, `migrate`, `check-config` and `config-reference` first (flatten [`Common`]
/// first), then the service's own subcommands.
#[derive(Debug, Subcommand)]
pub enum Common<S: Args> {
    /// Serve the public listeners and the admin listener until SIGTERM or ctrl-c.
    #[command(display_order = 0)]
    Serve(S),
    /// Load and validate the configuration, then exit (2 on any problem).
    #[command(display_order = 2)]
    CheckConfig,
    /// Print the documented configuration (every key with its default), without reading any.
    ConfigReference,
}

/// The subcommand of every service with a database, flattened next to [`Common`]:
/// `migrate` applies the pending migrations and prints `<service>: <n> migration(s)
/// applied` ([`migrate`]).
#[derive(Debug, Subcommand)]
pub enum Database {
    /// Apply pending database migrations and exit.
    #[command(display_order = 1)]
    Migrate,
}

/// `serve` options of a service that has none.
#[derive(Debug, Clone, Copy, Args)]
pub struct NoArgs {}

/// `config-reference`: prints `reference` (the service's documented configuration file)
/// as it is.
pub fn config_reference(reference: &str) -> ExitCode {
    print!("{reference}");
    ExitCode::SUCCESS
}

/// `check-config`, once the configuration loaded: prints `<service>: configuration is
/// valid`.
pub fn check_config(service: &str) -> ExitCode {
    println!("{service}: configuration is valid");
    ExitCode::SUCCESS
}

/// `migrate`: runs `apply` (which returns the migrations it applied) like [`run`] runs a
/// command, then prints `<service>: <n> migration(s) applied`.
pub fn migrate<F, Fut, E>(
    service: &'static str,
    runtime: &crate::RuntimeConfig,
    telemetry_config: &telemetry::TelemetryConfig,
    apply: F,
) -> ExitCode
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Vec<String>, E>>,
    E: std::fmt::Display,
{
    run(service, runtime, telemetry_config, || async move {
        let applied = apply().await?;
        println!("{service}: {} migration(s) applied", applied.len());
        Ok::<_, E>(())
    })
}

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

/// A multi-threaded Tokio runtime with `worker_threads` workers (0: one per core) and at
/// most `max_blocking_threads` threads in its blocking pool.
pub fn tokio_runtime(
    worker_threads: usize,
    max_blocking_threads: usize,
) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder
        .enable_all()
        .max_blocking_threads(max_blocking_threads.max(1));
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
    let rt = match tokio_runtime(runtime.worker_threads, runtime.max_blocking_threads) {
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
