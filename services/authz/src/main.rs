//! The `authz` binary: parses the command line, loads the configuration and hands over to
//! the library.

use std::path::PathBuf;
use std::process::ExitCode;

use authz::AuthzConfig;
use authz::demo_seed::Demo;
use clap::{Args, Parser, Subcommand};

/// OAuth 2.1 authorization server and OpenID Connect provider.
#[derive(Debug, Parser)]
#[command(name = "authz", version, about)]
struct Cli {
    /// Configuration file (default: configs/authz.yaml when present).
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
    /// Manage registered clients.
    Clients {
        #[command(subcommand)]
        command: authz::cli_clients::ClientsCommand,
    },
    /// Manage signing keys.
    Keys {
        #[command(subcommand)]
        command: authz::cli::KeysCommand,
    },
    /// Print the documented configuration (configs/authz.yaml: every key with its default).
    ConfigReference,
}

/// `authz serve` options.
#[derive(Debug, Args)]
struct ServeArgs {
    /// Register the demo clients (demo-client, demo-spa, demo-rs) when missing, before
    /// serving. Their credentials are public: only for an issuer on localhost or a
    /// loopback IP.
    #[arg(long)]
    demo: bool,
    /// Delete the demo clients with everything issued to them and register them afresh
    /// (implies --demo).
    #[arg(long)]
    reset_demo: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::ConfigReference = cli.command {
        print!("{}", authz::CONFIG_REFERENCE);
        return ExitCode::SUCCESS;
    }
    let command = cli.command;
    // Needs no configuration: it makes the key-encryption key the configuration requires.
    if let Command::Keys {
        command: authz::cli::KeysCommand::NewKek,
    } = command
    {
        return match issuer::Kek::generate_base64() {
            Ok(kek) => {
                println!("{kek}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let config: AuthzConfig = match runtime::cli::load_config("authz", cli.config.as_deref()) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let rt = config.runtime;
    let telemetry = match command {
        Command::Serve(_) => config.telemetry.clone(),
        _ => config.telemetry.for_command(),
    };
    match command {
        Command::ConfigReference => {
            print!("{}", authz::CONFIG_REFERENCE);
            ExitCode::SUCCESS
        }
        Command::CheckConfig => {
            println!("authz: configuration is valid");
            ExitCode::SUCCESS
        }
        Command::Serve(args) => {
            let demo = Demo::from_flags(args.demo, args.reset_demo);
            if let Err(e) = authz::demo_seed::permitted(demo, &config.issuer) {
                eprintln!("error: {e}");
                return ExitCode::from(runtime::cli::EXIT_CONFIG);
            }
            runtime::cli::run("authz", &rt, &telemetry, || authz::serve(config, demo))
        }
        Command::Migrate => runtime::cli::run("authz", &rt, &telemetry, || async move {
            let applied = authz::migrate(&config).await?;
            println!("authz: {} migration(s) applied", applied.len());
            Ok::<_, authz::AuthzError>(())
        }),
        Command::Clients { command } => {
            runtime::cli::run("authz", &rt, &telemetry, || async move {
                authz::cli_clients::clients(&config, command).await
            })
        }
        Command::Keys { command } => runtime::cli::run("authz", &rt, &telemetry, || async move {
            authz::cli::keys(&config, command).await
        }),
    }
}
