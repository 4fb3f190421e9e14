//! The `authz` binary: parses the command line and hands over to the library, which loads
//! the configuration and runs the command ([`authz::cli::Cli::run`]).

use std::process::ExitCode;

use clap::Parser;

/// mimalloc, not glibc malloc: the request paths allocate and free small objects across
/// threads, where glibc's arenas cost measurably more CPU (`make bench`, issue 15).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    authz::cli::Cli::parse().run()
}
