//! The `authz` command line: the subcommands every service has ([`runtime::cli::Common`],
//! [`runtime::cli::Database`]), the client registry (`authz clients …`, [`clients`]),
//! the remembered consents (`authz consents …`, [`consents`]) and the signing keys
//! (`authz keys …`, [`keys`]). `main.rs` parses [`Cli`] and hands it to
//! [`Cli::run`].

pub mod clients;
pub mod consents;
pub mod keys;
// dcr: initial access tokens (RFC 7591 §3)
pub mod registration_tokens;
// admin2: --url
pub mod remote;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use runtime::cli::{Common, Database};

use crate::AuthzConfig;
use crate::demo_seed::Demo;

/// OAuth 2.1 authorization server and OpenID Connect provider.
#[derive(Debug, Parser)]
#[command(name = "authz", version, about)]
pub struct Cli {
    /// Configuration file (default: configs/authz.yaml when present).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// admin2: a remote authz for `clients`, `keys`, `registration-tokens` and `consents`
    /// (`--url`).
    #[command(flatten)]
    remote: remote::RemoteArgs,
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
    /// Manage registered clients.
    Clients {
        #[command(subcommand)]
        command: clients::ClientsCommand,
    },
    /// List and revoke the consents users asked to be remembered.
    Consents {
        #[command(subcommand)]
        command: consents::ConsentsCommand,
    },
    /// Manage signing keys.
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
    // dcr
    /// Mint, list and revoke initial access tokens for Dynamic Client Registration.
    RegistrationTokens {
        #[command(subcommand)]
        command: registration_tokens::RegistrationTokensCommand,
    },
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
    /// The demo web app's URL (`demo app`), below which the demo clients' redirect URIs
    /// are registered (default http://localhost:3000). `make demo` sets it when the app
    /// runs on another port.
    #[arg(long, env = "AUTHZ_DEMO_APP_URL", value_name = "URL")]
    demo_app_url: Option<String>,
}

impl Cli {
    /// Runs the command and returns the process exit code: 0 on success, 1 when the command
    /// failed (its error printed on one line), 2 for configuration errors, including a
    /// missing key-encryption key where the command needs one (serve, check-config, the keys
    /// commands that create, import or retire keys) and a missing SQLite database for
    /// `clients …` and `keys …` (only `serve` and `migrate` create it). Commands that need
    /// no configuration (`config-reference`, `keys new-kek`) run without loading it.
    pub fn run(self) -> ExitCode {
        let command = match self.command {
            Command::Common(Common::ConfigReference) => {
                return runtime::cli::config_reference(crate::CONFIG_REFERENCE);
            }
            // Needs no configuration: it makes the key-encryption key the configuration
            // requires.
            Command::Keys {
                command: keys::KeysCommand::NewKek,
            } => return keys::new_kek(),
            command => command,
        };
        if self.remote.given() {
            return run_remote(self.remote, command);
        }
        let config: AuthzConfig = match runtime::cli::load_config("authz", self.config.as_deref()) {
            Ok(config) => config,
            Err(code) => return code,
        };
        if needs_kek(&command)
            && let Err(e) = config.keys.kek()
        {
            eprintln!("config error: {}", e.within("keys"));
            return ExitCode::from(runtime::cli::EXIT_CONFIG);
        }
        if matches!(
            command,
            Command::Clients { .. }
                | Command::Consents { .. }
                | Command::Keys { .. }
                | Command::RegistrationTokens { .. }
        ) && let Err(code) = require_database(&config.database)
        {
            return code;
        }
        let rt = config.runtime;
        let telemetry = match command {
            Command::Common(Common::Serve(_)) => config.telemetry.clone(),
            _ => config.telemetry.for_command(),
        };
        match command {
            Command::Common(Common::ConfigReference) => {
                runtime::cli::config_reference(crate::CONFIG_REFERENCE)
            }
            Command::Common(Common::CheckConfig) => runtime::cli::check_config("authz"),
            Command::Common(Common::Serve(args)) => {
                let demo = Demo::from_flags(args.demo, args.reset_demo);
                if let Err(e) = crate::demo_seed::permitted(demo, &config.issuer) {
                    eprintln!("error: {e}");
                    return ExitCode::from(runtime::cli::EXIT_CONFIG);
                }
                runtime::cli::run("authz", &rt, &telemetry, || {
                    crate::serve(config, demo, args.demo_app_url)
                })
            }
            Command::Database(Database::Migrate) => {
                runtime::cli::migrate("authz", &rt, &telemetry, || async move {
                    crate::migrate(&config).await
                })
            }
            Command::Clients { command } => {
                runtime::cli::run("authz", &rt, &telemetry, || async move {
                    clients::clients(&config, command).await
                })
            }
            Command::Consents { command } => {
                runtime::cli::run("authz", &rt, &telemetry, || async move {
                    consents::consents(&config, command).await
                })
            }
            Command::Keys { command } => {
                runtime::cli::run("authz", &rt, &telemetry, || async move {
                    keys::keys(&config, command).await
                })
            }
            // dcr
            Command::RegistrationTokens { command } => {
                runtime::cli::run("authz", &rt, &telemetry, || async move {
                    registration_tokens::registration_tokens(&config, command).await
                })
            }
        }
    }
}

/// admin2: runs `command` against the remote authz of `--url` through its admin API: no
/// local configuration or database. A missing credential flag, or `--url` on a command it
/// does not apply to, is a configuration error (one line naming the flag, exit code 2).
fn run_remote(args: remote::RemoteArgs, command: Command) -> ExitCode {
    let target = match args.target() {
        Ok(t) => t,
        Err(remote::MissingFlag(flag)) => {
            eprintln!("config error: {flag}: required (and readable) with --url");
            return ExitCode::from(runtime::cli::EXIT_CONFIG);
        }
    };
    let rt = runtime::RuntimeConfig::default();
    let telemetry = telemetry::TelemetryConfig::default().for_command();
    match command {
        Command::Clients { command } => runtime::cli::run("authz", &rt, &telemetry, || {
            clients::remote(target, command)
        }),
        Command::Keys { command } => {
            runtime::cli::run("authz", &rt, &telemetry, || keys::remote(target, command))
        }
        Command::RegistrationTokens { command } => {
            runtime::cli::run("authz", &rt, &telemetry, || {
                registration_tokens::remote(target, command)
            })
        }
        Command::Consents { command } => runtime::cli::run("authz", &rt, &telemetry, || {
            consents::remote(target, command)
        }),
        _ => {
            eprintln!(
                "config error: --url: applies to clients, keys, registration-tokens and consents only"
            );
            ExitCode::from(runtime::cli::EXIT_CONFIG)
        }
    }
}

/// Whether `command` needs the key-encryption key (`keys.encryption_key[_file]`): `serve`
/// and `check-config` (which vouches for a configuration `serve` accepts), and the `keys`
/// commands that create, import or retire signing keys (they open the sealed key store).
/// Reading the registry or listing keys (`clients …`, `keys list`) and `migrate` never
/// touch private key material and need none.
fn needs_kek(command: &Command) -> bool {
    match command {
        Command::Common(Common::Serve(_) | Common::CheckConfig) => true,
        Command::Common(Common::ConfigReference) | Command::Database(_) => false,
        Command::Clients { .. } | Command::Consents { .. } => false,
        // dcr
        Command::RegistrationTokens { .. } => false,
        Command::Keys { command } => !matches!(
            command,
            keys::KeysCommand::List { .. } | keys::KeysCommand::NewKek
        ),
    }
}

/// Refuses a SQLite database file that does not exist before a command that must not
/// create one (only `serve` and `migrate` do): one line on stderr naming the URL tried and
/// how to point at the right database, exit code 2, nothing created.
fn require_database(database: &storage::DatabaseConfig) -> Result<(), ExitCode> {
    storage::Database::require_existing(database).map_err(|e| {
        eprintln!("error: {}", missing_database_hint(&e, "AUTHZ"));
        ExitCode::from(runtime::cli::EXIT_CONFIG)
    })
}

/// `e` followed, for a missing database, by how to select the right one: `prefix` is the
/// service's environment prefix (`AUTHZ`, `IDP`).
fn missing_database_hint(e: &storage::StorageError, prefix: &str) -> String {
    match e {
        storage::StorageError::Missing { .. } => format!(
            "{e}; run from the directory of your deployment, pass --config, or set \
             {prefix}__DATABASE__URL (only serve and migrate create it)"
        ),
        other => other.to_string(),
    }
}

/// The audit event of an admin write of the command line (actor `operator`) about `kind`
/// `id`, for the service to append in the write's own transaction (admin2: the change and
/// its record commit or roll back together); log it after the commit.
pub(crate) fn operator(
    action: audit::Action,
    kind: audit::TargetKind,
    id: &str,
) -> audit::AuditEvent {
    audit::AuditEvent::new(audit::Actor::Operator, action).target(kind, id)
}
