//! The `rs` binary: parses the command line, loads the configuration and hands over to the
//! library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rs::RsConfig;
use runtime::cli::{Common, NoArgs};

/// Reference resource server protected by the guard crate.
#[derive(Debug, Parser)]
#[command(name = "rs", version, about)]
struct Cli {
    /// Configuration file (default: configs/rs.yaml when present).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

/// The common subcommands only: rs has no database, so no `migrate`.
#[derive(Debug, Subcommand)]
enum Command {
    #[command(flatten)]
    Common(Common<NoArgs>),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Common(Common::ConfigReference) = cli.command {
        return runtime::cli::config_reference(rs::CONFIG_REFERENCE);
    }
    let config: RsConfig = match runtime::cli::load_config("rs", cli.config.as_deref()) {
        Ok(config) => config,
        Err(code) => return code,
    };
    match cli.command {
        Command::Common(Common::ConfigReference) => {
            runtime::cli::config_reference(rs::CONFIG_REFERENCE)
        }
        Command::Common(Common::CheckConfig) => runtime::cli::check_config("rs"),
        Command::Common(Common::Serve(NoArgs {})) => {
            let (rt, telemetry) = (config.runtime, config.telemetry.clone());
            runtime::cli::run("rs", &rt, &telemetry, || rs::serve(config))
        }
    }
}
