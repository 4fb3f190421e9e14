//! The `pki` binary: `pki init` and `pki issue` (see the library's documentation).

use clap::Parser;

fn main() -> std::process::ExitCode {
    pki::cli::Cli::parse().run()
}
