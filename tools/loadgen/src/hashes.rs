//! `loadgen argon2`: how many argon2id hashes (RFC 9106) one thread computes per second with
//! given parameters: the ceiling of password logins on the core it runs on, which `make
//! bench` prints beside the login row (pinned to the servers' core).

use std::time::{Duration, Instant};

use argon2::{Algorithm, Argon2, Params, Version};
use clap::Parser;

/// `loadgen argon2` options; the defaults are idp's (`passwords.*`, OWASP's argon2id
/// minimum: 19 MiB, 2 passes, 1 lane).
#[derive(Debug, Parser)]
#[command(
    name = "loadgen argon2",
    about = "argon2id hashes per second of one thread"
)]
pub struct HashArgs {
    /// Measured time.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Memory cost in KiB (idp's `passwords.memory_kib`).
    #[arg(long, default_value_t = 19_456)]
    memory_kib: u32,
    /// Passes (idp's `passwords.iterations`).
    #[arg(long, default_value_t = 2)]
    iterations: u32,
    /// Lanes (idp's `passwords.parallelism`).
    #[arg(long, default_value_t = 1)]
    parallelism: u32,
    /// Most hashes; the run ends when they are done or `--seconds` is over.
    #[arg(long, default_value_t = 1_000_000)]
    max_hashes: u64,
}

/// Runs `loadgen argon2` with the arguments after `argon2`: hashes a password with a fresh
/// salt each time, one after the other on this thread, and prints one JSON line
/// `{"hashes", "seconds", "hashes_per_s", "memory_kib", "iterations", "parallelism"}`.
/// Exits 2 on parameters argon2 refuses.
pub fn main(argv: Vec<String>) -> std::process::ExitCode {
    let args = HashArgs::parse_from(argv);
    let params = match Params::new(args.memory_kib, args.iterations, args.parallelism, Some(32)) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("loadgen: argon2 parameters: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let limit = Duration::from_secs_f64(args.seconds.clamp(0.0, 3600.0));
    let mut out = [0u8; 32];
    let mut salt = [0u8; 16];
    let started = Instant::now();
    let mut hashes = 0u64;
    while started.elapsed() < limit && hashes < args.max_hashes {
        salt[..8].copy_from_slice(&hashes.to_le_bytes());
        if let Err(e) = argon2.hash_password_into(b"demo-password", &salt, &mut out) {
            eprintln!("loadgen: argon2: {e}");
            return std::process::ExitCode::FAILURE;
        }
        hashes += 1;
    }
    let secs = started.elapsed().as_secs_f64().max(f64::EPSILON);
    let result = serde_json::json!({
        "hashes": hashes,
        "seconds": secs,
        "hashes_per_s": (hashes as f64 / secs * 10.0).round() / 10.0,
        "memory_kib": args.memory_kib,
        "iterations": args.iterations,
        "parallelism": args.parallelism,
    });
    println!("{result}");
    std::process::ExitCode::SUCCESS
}
