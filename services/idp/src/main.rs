//! The `idp` binary: parses the command line, loads the configuration and hands over to
//! the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use idp::IdpConfig;
use idp::demo_seed::Demo;

/// Identity provider: users, login and consent pages, browser sessions.
#[derive(Debug, Parser)]
#[command(name = "idp", version, about)]
struct Cli {
    /// Configuration file (default: configs/idp.yaml when present).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process; boxing the large variants would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the public HTTP, gRPC and admin listeners until SIGTERM or ctrl-c.
    Serve(ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate,
    /// Load and validate the configuration, then exit (2 on any problem).
    CheckConfig,
    /// Manage users.
    Users {
        #[command(subcommand)]
        command: idp::cli::UsersCommand,
    },
    /// Print the documented configuration (configs/idp.yaml: every key with its default).
    ConfigReference,
}

/// `idp serve` options.
#[derive(Debug, Args)]
struct ServeArgs {
    /// Create the demo user (demo / demo-password) when missing, before serving. Its
    /// password is public: only for a public_url on localhost or a loopback IP.
    #[arg(long)]
    demo: bool,
    /// Delete the demo user with its sessions and create it afresh (implies --demo).
    #[arg(long)]
    reset_demo: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::ConfigReference = cli.command {
        print!("{}", idp::CONFIG_REFERENCE);
        return ExitCode::SUCCESS;
    }
    let config: IdpConfig = match runtime::cli::load_config("idp", cli.config.as_deref()) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let rt = config.runtime;
    let telemetry = match cli.command {
        Command::Serve(_) => config.telemetry.clone(),
        _ => config.telemetry.for_command(),
    };
    match cli.command {
        Command::ConfigReference => {
            print!("{}", idp::CONFIG_REFERENCE);
            ExitCode::SUCCESS
        }
        Command::CheckConfig => {
            println!("idp: configuration is valid");
            ExitCode::SUCCESS
        }
        Command::Serve(args) => {
            let demo = Demo::from_flags(args.demo, args.reset_demo);
            if let Err(e) = idp::demo_seed::permitted(demo, &config.public_url) {
                eprintln!("error: {e}");
                return ExitCode::from(runtime::cli::EXIT_CONFIG);
            }
            runtime::cli::run("idp", &rt, &telemetry, || idp::serve(config, demo))
        }
        Command::Migrate => runtime::cli::run("idp", &rt, &telemetry, || async move {
            let applied = idp::migrate(&config).await?;
            println!("idp: {} migration(s) applied", applied.len());
            Ok::<_, idp::IdpError>(())
        }),
        Command::Users { command } => runtime::cli::run("idp", &rt, &telemetry, || async move {
            idp::cli::users(&config, command).await
        }),
    }
}
