//! The `demo` command line.

use clap::{Parser, Subcommand};

/// The demo of the platform: a client of authz, idp and rs over HTTP.
#[derive(Debug, Parser)]
#[command(name = "demo", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The `demo` subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Walk the main flows against a running `make demo` system and report each step; every
    /// step runs (those whose input an earlier failure took away are reported as skipped),
    /// then a summary. Exit code 0 all passed, 1 some failed, 2 usage or configuration error.
    Walk(crate::walk::WalkArgs),
    /// Serve the demo web application (the relying party behind the demo clients' redirect
    /// URIs) on http://localhost:3000 until SIGTERM or ctrl-c.
    App(crate::app::AppArgs),
    /// A TV-style device (RFC 8628): print a URL and a code to enter there, poll until the
    /// user approved, print the tokens' claims. Exit code 0 with tokens, 1 when denied,
    /// expired or failed, 2 on a usage error.
    Device(crate::device::DeviceArgs),
}

impl Cli {
    /// Runs the parsed command; its exit code.
    pub fn run(self) -> std::process::ExitCode {
        match self.command {
            Command::Walk(args) => crate::walk::run(args),
            Command::App(args) => crate::app::run(args),
            Command::Device(args) => crate::device::run(args),
        }
    }
}
