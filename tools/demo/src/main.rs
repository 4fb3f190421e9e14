//! The `demo` binary: `demo walk` and `demo app` (see the library's documentation).

use clap::Parser;

fn main() -> std::process::ExitCode {
    demo::cli::Cli::parse().run()
}
