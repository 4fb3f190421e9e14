//! The `pki` command line: `pki init` and `pki issue` (see the crate documentation).

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::{
    DEFAULT_CA_DAYS, DEFAULT_CHAIN_LENGTH, DEFAULT_LEAF_DAYS, InitOptions, IssueOptions, PkiError,
    Validity,
};

/// A small PKI for dev, demo and tests: a CA chain and the services' TLS certificates.
/// Production mounts certificates from its own PKI.
#[derive(Debug, Parser)]
#[command(name = "pki", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// `pki` subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Make a CA chain in DIR: root → intermediates → issuing CA; DIR/ca.pem is the trust bundle.
    Init {
        /// The PKI directory (created when missing).
        #[arg(long)]
        dir: PathBuf,
        /// Number of CA levels, root included (1 = the root signs leaves itself).
        #[arg(long, default_value_t = DEFAULT_CHAIN_LENGTH)]
        chain_length: u8,
        /// Validity of the CA certificates, in days.
        #[arg(long, default_value_t = DEFAULT_CA_DAYS)]
        days: u32,
        /// Organization name in the CA subjects.
        #[arg(long, default_value = "Platform dev PKI")]
        organization: String,
        /// Replace an existing CA (certificates it issued stop verifying).
        #[arg(long)]
        force: bool,
    },
    /// Issue a leaf certificate signed by DIR's issuing CA into DIR/NAME/ (PEM and PKCS#12).
    Issue {
        /// The PKI directory made by `pki init`.
        #[arg(long)]
        dir: PathBuf,
        /// The leaf's name: its subdirectory and PKCS#12 file name.
        #[arg(long)]
        name: String,
        /// A DNS subject alternative name (repeatable); the first is also the common name.
        #[arg(long)]
        dns: Vec<String>,
        /// An IP address subject alternative name (repeatable).
        #[arg(long)]
        ip: Vec<IpAddr>,
        /// A URI subject alternative name (repeatable), e.g. spiffe://platform/authz.
        #[arg(long)]
        uri: Vec<String>,
        /// Server usage (TLS Web Server Authentication); with neither flag, both usages.
        #[arg(long)]
        server: bool,
        /// Client usage (TLS Web Client Authentication, mTLS); with neither flag, both usages.
        #[arg(long)]
        client: bool,
        /// Validity in days.
        #[arg(long, default_value_t = DEFAULT_LEAF_DAYS)]
        days: u32,
        /// Read the PKCS#12 password from this file (default: generate one into NAME.p12.password).
        #[arg(long)]
        p12_password_file: Option<PathBuf>,
        /// Replace an existing leaf of that name.
        #[arg(long)]
        force: bool,
    },
}

impl Cli {
    /// Runs the command: prints what it wrote, or one line `pki: <reason>` on stderr and
    /// exits 2 for bad input, 1 for failures.
    pub fn run(self) -> ExitCode {
        match self.execute() {
            Ok(lines) => {
                for line in lines {
                    println!("{line}");
                }
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("pki: {error}");
                ExitCode::from(error.exit_code())
            }
        }
    }

    fn execute(self) -> Result<Vec<String>, PkiError> {
        match self.command {
            Command::Init {
                dir,
                chain_length,
                days,
                organization,
                force,
            } => {
                let files = crate::init(&InitOptions {
                    dir,
                    chain_length,
                    days,
                    organization,
                    force,
                })?;
                let mut lines = vec![format!(
                    "trust bundle (root CA): {}",
                    files.ca_pem.display()
                )];
                for (cert, key) in files.certs.iter().zip(&files.keys) {
                    lines.push(format!("CA: {} (key {})", cert.display(), key.display()));
                }
                lines.push(format!("intermediates: {}", files.chain_pem.display()));
                Ok(lines)
            }
            Command::Issue {
                dir,
                name,
                dns,
                ip,
                uri,
                server,
                client,
                days,
                p12_password_file,
                force,
            } => {
                let both = !server && !client;
                let files = crate::issue(&IssueOptions {
                    dir,
                    name,
                    dns,
                    ips: ip,
                    uris: uri,
                    server: server || both,
                    client: client || both,
                    validity: Validity::days_from_now(days)?,
                    p12_password_file,
                    force,
                })?;
                Ok(vec![
                    format!("certificate: {}", files.cert.display()),
                    format!(
                        "certificate + chain (tls.cert_file): {}",
                        files.fullchain.display()
                    ),
                    format!("private key (tls.key_file): {}", files.key.display()),
                    format!("PKCS#12 (tls.pkcs12_file): {}", files.p12.display()),
                    format!(
                        "PKCS#12 password (tls.pkcs12_password_file): {}",
                        files.p12_password.display()
                    ),
                ])
            }
        }
    }
}
