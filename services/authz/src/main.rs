//! The `authz` binary: parses the command line and hands over to the library, which loads
//! the configuration and runs the command ([`authz::cli::Cli::run`]).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    authz::cli::Cli::parse().run()
}
