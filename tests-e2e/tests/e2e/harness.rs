//! Starts the real service binaries with `cargo run -p <service> -- serve`, the way a
//! developer does, on port 0 everywhere.
//!
//! - The binaries are built once per test process (`cargo build -p authz -p idp -p rs`);
//!   every `cargo run` after that only checks freshness and execs the binary, so the child
//!   process is the service itself (cargo replaces itself on Unix).
//! - The bound addresses come from the service's `<name> listening …` line on stdout: no
//!   port probing.
//! - Readiness is `/readyz` answering 200.
//! - Each service runs in its own process group, killed when the handle drops; its logs go
//!   to a file that is printed if the test fails.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long a service may take from `cargo run` to its listening line (a stale build may
/// need compiling first).
const START_TIMEOUT: Duration = Duration::from_secs(300);
/// How long after listening `/readyz` may take to answer 200.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The key-encryption key the harness gives authz (tests may override it).
pub const TEST_KEK: &str = "ZTJlLXRlc3Qta2V5LWVuY3J5cHRpb24ta2V5LTMyYiE=";

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests-e2e lives in the workspace")
        .to_path_buf()
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

/// A loopback port that was free a moment ago, for a listener whose address must be known
/// before the service starts (authz's issuer URL names its own public address).
///
/// It comes from below the kernel's ephemeral range, not from `bind(…:0)`: that range is
/// where every outgoing connection and port-0 listener of the tests running in parallel
/// gets its port, so a port handed out from it could be taken before the service binds it
/// (CI saw "Address already in use" once). Each test process (nextest runs one per test)
/// starts at its own offset, by process id, and takes the next port that binds.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 10_000;
    const SLOTS: u32 = 512;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u32>().ok())
        .filter(|&low| low > LOW + SLOTS)
        .unwrap_or(32_768);
    let span = ephemeral - LOW;
    let start = (std::process::id() % SLOTS) * (span / SLOTS);
    for _ in 0..span {
        let port = LOW + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % span;
        let port = u16::try_from(port).expect("below the ephemeral range");
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port below {ephemeral}");
}

/// Builds the binaries once per test process, with exactly the package set of
/// `deployments/demo.sh` (which the demo and docs tests run): cargo unifies features over
/// the packages of one invocation, so any other set (`cargo run -p idp`, say) builds
/// shared dependencies with other features and rebuilds every service on each switch.
/// Tests then run the binaries directly ([`binary`]).
pub fn build_once() {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let status = std::process::Command::new(cargo())
            .current_dir(workspace())
            .args([
                "build", "--quiet", "-p", "authz", "-p", "idp", "-p", "rs", "-p", "demo", "-p",
                "pki",
            ])
            .status()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("cargo build failed: {status}"))
        }
    });
    if let Err(e) = built {
        panic!("{e}");
    }
}

/// The debug binary `name` (`authz`, `idp`, `rs`, `demo`, `pki`), built by [`build_once`].
pub fn binary(name: &str) -> PathBuf {
    build_once();
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace().join("target"), PathBuf::from)
        .join("debug")
        .join(name)
}

/// An HTTP client that trusts only the CA bundle `ca` (rustls, no built-in roots).
pub fn https_client_builder(ca: &Path) -> reqwest::ClientBuilder {
    let pem = std::fs::read(ca).unwrap_or_else(|e| panic!("{}: {e}", ca.display()));
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false);
    for cert in reqwest::Certificate::from_pem_bundle(&pem).expect("PEM CA bundle") {
        builder = builder.add_root_certificate(cert);
    }
    builder
}

/// [`https_client_builder`], built.
pub fn https_client(ca: &Path) -> reqwest::Client {
    https_client_builder(ca).build().expect("HTTPS client")
}

/// A running service process.
pub struct Service {
    name: &'static str,
    child: Child,
    addrs: HashMap<String, SocketAddr>,
    log: PathBuf,
    /// TLS on every listener: the CA bundle its certificates chain to ([`Service::start_tls`]).
    tls_ca: Option<PathBuf>,
    /// What it printed on stdout after its listening line (read until it exits).
    stdout: Option<tokio::task::JoinHandle<Vec<String>>>,
}

impl Service {
    /// Starts `name` with `cargo run -p name -- serve`, every listener on port 0 and
    /// `env` on top, then waits for the listening line and `/readyz`.
    pub async fn start(name: &'static str, data: &Path, env: &[(String, String)]) -> Self {
        Self::start_with(name, &["serve".to_owned()], data, env).await
    }

    /// [`Service::start`] with the command line `args` instead of `serve` (for example
    /// `serve --demo --config FILE`).
    pub async fn start_with(
        name: &'static str,
        args: &[String],
        data: &Path,
        env: &[(String, String)],
    ) -> Self {
        Self::launch(name, args, data, env, None).await
    }

    /// [`Service::start`] for a service whose listeners all serve TLS (set in `env`) with
    /// certificates that chain to the CA bundle `ca`: [`Service::url`] is then `https://…`,
    /// and readiness is asked over TLS.
    pub async fn start_tls(
        name: &'static str,
        data: &Path,
        env: &[(String, String)],
        ca: &Path,
    ) -> Self {
        Self::launch(
            name,
            &["serve".to_owned()],
            data,
            env,
            Some(ca.to_path_buf()),
        )
        .await
    }

    async fn launch(
        name: &'static str,
        args: &[String],
        data: &Path,
        env: &[(String, String)],
        tls_ca: Option<PathBuf>,
    ) -> Self {
        build_once();
        let prefix = name.to_ascii_uppercase();
        let log = data.join(format!("{name}.log"));
        let log_file = std::fs::File::create(&log).expect("create log file");
        let mut cmd = Command::new(binary(name));
        cmd.current_dir(workspace())
            .args(args)
            .env(format!("{prefix}__HTTP__PORT"), "0")
            .env(format!("{prefix}__ADMIN__PORT"), "0")
            .env(format!("{prefix}__TELEMETRY__LOG_FORMAT"), "json")
            .env(format!("{prefix}__SHUTDOWN__GRACE_PERIOD"), "3s")
            .env(format!("{prefix}__RUNTIME__WORKER_THREADS"), "2")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .process_group(0)
            .kill_on_drop(true);
        if name == "authz" {
            cmd.env("AUTHZ__KEYS__ENCRYPTION_KEY", TEST_KEK);
        }
        if name != "rs" {
            cmd.env(format!("{prefix}__GRPC__PORT"), "0").env(
                format!("{prefix}__DATABASE__URL"),
                format!("sqlite://{}/{name}.db", data.display()),
            );
        }
        cmd.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let mut child = cmd.spawn().expect("spawn the service binary");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let marker = format!("{name} listening ");
        let line = tokio::time::timeout(START_TIMEOUT, async {
            while let Some(line) = lines.next_line().await.expect("read stdout") {
                if let Some(rest) = line.strip_prefix(&marker) {
                    return Some(rest.to_owned());
                }
            }
            None
        })
        .await
        .unwrap_or_else(|_| panic!("{name} did not announce its listeners in time"))
        .unwrap_or_else(|| {
            panic!(
                "{name} exited before listening; log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        });
        // Keep draining stdout so the service can never block on a full pipe.
        let stdout = tokio::spawn(async move {
            let mut rest = Vec::new();
            while let Ok(Some(line)) = lines.next_line().await {
                rest.push(line);
            }
            rest
        });
        let addrs = line
            .split_whitespace()
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.parse().expect("socket address")))
            .collect();
        let service = Self {
            name,
            child,
            addrs,
            log,
            tls_ca,
            stdout: Some(stdout),
        };
        service.wait_ready().await;
        service
    }

    /// The address of listener `which` (`http`, `grpc`, `admin`).
    pub fn addr(&self, which: &str) -> SocketAddr {
        *self
            .addrs
            .get(which)
            .unwrap_or_else(|| panic!("{} has no {which} listener", self.name))
    }

    /// `http://<addr>` of listener `which` (`https://` for [`Service::start_tls`]).
    pub fn url(&self, which: &str) -> String {
        let scheme = if self.tls_ca.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr(which))
    }

    async fn wait_ready(&self) {
        let client = match &self.tls_ca {
            None => reqwest::Client::new(),
            Some(ca) => https_client(ca),
        };
        let url = format!("{}/readyz", self.url("admin"));
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(res) = client.get(&url).send().await
                && res.status() == 200
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} not ready in time; log:\n{}",
                self.name,
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Everything the service logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// [`Service::terminate`], then everything the service printed on stdout after its
    /// listening line.
    pub async fn terminate_with_output(self, within: Duration) -> (Option<i32>, Vec<String>) {
        let name = self.name;
        let (code, stdout) = self.stop(within).await;
        let lines = tokio::time::timeout(within, stdout)
            .await
            .unwrap_or_else(|_| panic!("{name}'s stdout did not close within {within:?}"))
            .expect("stdout reader");
        (code, lines)
    }

    /// Sends SIGTERM and waits (at most `within`) for the exit status code.
    pub async fn terminate(self, within: Duration) -> Option<i32> {
        self.stop(within).await.0
    }

    async fn stop(
        mut self,
        within: Duration,
    ) -> (Option<i32>, tokio::task::JoinHandle<Vec<String>>) {
        let pid = self.child.id().expect("child still running");
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success());
        let status = tokio::time::timeout(within, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("{} did not exit within {within:?}", self.name))
            .expect("wait for child");
        let stdout = self
            .stdout
            .take()
            .expect("stdout is read until the service stops");
        (status.code(), stdout)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .status();
        }
        if std::thread::panicking() {
            eprintln!("----- {} log -----\n{}", self.name, self.logs());
        }
    }
}
