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

/// Prints lines meant for the operator or a parent process on stdout (logs go to stderr),
/// each at once and flushed, and logs each at info level too: what a start did that the
/// operator should see in the console, such as the demo data it seeded.
pub fn announce_lines(lines: &[String]) {
    let mut out = std::io::stdout().lock();
    for line in lines {
        let _ = writeln!(out, "{line}");
        tracing::info!("{line}");
    }
    let _ = out.flush();
}
