use std::io::Write;
use std::net::SocketAddr;

/// Prints the one line that tells operators and test harnesses where the service listens:
///
/// ```text
/// authz listening http=127.0.0.1:8080 grpc=127.0.0.1:50051 admin=127.0.0.1:9080
/// ```
///
/// It goes to stdout (logs go to stderr) and is flushed at once, so a parent process can
/// read the bound ports without probing.
pub fn announce(service: &str, listeners: &[(&str, SocketAddr)]) {
    let mut line = format!("{service} listening");
    for (name, addr) in listeners {
        line.push_str(&format!(" {name}={addr}"));
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
    tracing::info!(service, listeners = ?listeners, "listening");
}
