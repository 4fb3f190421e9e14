//! The `idp` binary: parses the command line, loads the configuration and hands over to
//! the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use idp::IdpConfig;
use idp::demo_seed::Demo;
use runtime::cli::{Common, Database};

/// Identity provider: users, login and consent pages, browser sessions.
#[derive(Debug, Parser)]
#[command(name = "idp", version, about)]
struct Cli {
    /// Configuration file (default: configs/idp.yaml when present).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// `--url` and the admin client: `users` commands drive a remote idp through its admin
    /// API.
    #[command(flatten)]
    remote: idp::cli::Remote,
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process; boxing the large variants would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    #[command(flatten)]
    Common(Common<ServeArgs>),
    #[command(flatten)]
    Database(Database),
    /// Manage users.
    Users {
        #[command(subcommand)]
        command: idp::cli::UsersCommand,
    },
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

/// mimalloc, not glibc malloc: the request paths allocate and free small objects across
/// threads, where glibc's arenas cost measurably more CPU (`make bench`, issue 15).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Common(Common::ConfigReference) = cli.command {
        return runtime::cli::config_reference(idp::CONFIG_REFERENCE);
    }
    // admin API (issue 18): with --url no local configuration or database is read.
    if cli.remote.url.is_some() {
        let Command::Users { command } = cli.command else {
            eprintln!("error: --url applies to the users commands only");
            return ExitCode::from(runtime::cli::EXIT_CONFIG);
        };
        if let Some(line) = cli.remote.missing() {
            eprintln!("error: {line}");
            return ExitCode::from(runtime::cli::EXIT_CONFIG);
        }
        let config = IdpConfig::default();
        let remote = cli.remote;
        return runtime::cli::run(
            "idp",
            &config.runtime,
            &config.telemetry.for_command(),
            || async move { idp::cli::remote_users(&remote, command).await },
        );
    }
    let config: IdpConfig = match runtime::cli::load_config("idp", cli.config.as_deref()) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let rt = config.runtime;
    let telemetry = match cli.command {
        Command::Common(Common::Serve(_)) => config.telemetry.clone(),
        _ => config.telemetry.for_command(),
    };
    match cli.command {
        Command::Common(Common::ConfigReference) => {
            runtime::cli::config_reference(idp::CONFIG_REFERENCE)
        }
        Command::Common(Common::CheckConfig) => runtime::cli::check_config("idp"),
        Command::Common(Common::Serve(args)) => {
            let demo = Demo::from_flags(args.demo, args.reset_demo);
            if let Err(e) = idp::demo_seed::permitted(demo, &config.public_url) {
                eprintln!("error: {e}");
                return ExitCode::from(runtime::cli::EXIT_CONFIG);
            }
            runtime::cli::run("idp", &rt, &telemetry, || idp::serve(config, demo))
        }
        Command::Database(Database::Migrate) => {
            runtime::cli::migrate("idp", &rt, &telemetry, || async move {
                idp::migrate(&config).await
            })
        }
        Command::Users { command } => {
            if let Err(code) = idp::cli::require_database(&config) {
                return code;
            }
            runtime::cli::run("idp", &rt, &telemetry, || async move {
                idp::cli::users(&config, command).await
            })
        }
    }
}
