//! The `rs` binary: parses the command line, loads the configuration and hands over to the
//! library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rs::RsConfig;

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

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the public API and admin listeners until SIGTERM or ctrl-c.
    Serve,
    /// Load and validate the configuration, then exit (2 on any problem).
    CheckConfig,
    /// Print the documented configuration (configs/rs.yaml: every key with its default).
    ConfigReference,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::ConfigReference = cli.command {
        print!("{}", rs::CONFIG_REFERENCE);
        return ExitCode::SUCCESS;
    }
    let config: RsConfig = match runtime::cli::load_config("rs", cli.config.as_deref()) {
        Ok(config) => config,
        Err(code) => return code,
    };
    match cli.command {
        Command::ConfigReference => {
            print!("{}", rs::CONFIG_REFERENCE);
            ExitCode::SUCCESS
        }
        Command::CheckConfig => {
            println!("rs: configuration is valid");
            ExitCode::SUCCESS
        }
        Command::Serve => {
            let (rt, telemetry) = (config.runtime, config.telemetry.clone());
            runtime::cli::run("rs", &rt, &telemetry, || rs::serve(config))
        }
    }
}
