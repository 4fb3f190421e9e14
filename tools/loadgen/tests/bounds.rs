//! The load generator's bounds, run as the real binary against a minimal loopback server:
//! it stops after `--max-requests` measured requests even when `--duration` is far away,
//! and it refuses targets that are not on this machine.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// An HTTP/1.1 keep-alive server answering `200 ok` to every request, counting them.
fn server() -> (String, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let served = Arc::new(AtomicU64::new(0));
    let count = Arc::clone(&served);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let count = Arc::clone(&count);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                loop {
                    line.clear();
                    match reader.read_line(&mut line) {
                        Ok(0) | Err(_) => return,
                        Ok(_) if line == "\r\n" => {
                            count.fetch_add(1, Ordering::SeqCst);
                            let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                            if stream.write_all(reply).is_err() {
                                return;
                            }
                        }
                        Ok(_) => {}
                    }
                }
            });
        }
    });
    (url, served)
}

#[test]
fn stops_at_max_requests_long_before_the_duration() {
    let (url, served) = server();
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            &url,
            "--connections",
            "4",
            "--warmup",
            "0s",
            "--duration",
            "60s",
            "--max-requests",
            "200",
            "--expect",
            "ok",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the request budget did not end the run"
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["requests"], 200, "{report}");
    assert_eq!(report["ok"], 200, "{report}");
    assert!(report["seconds"].as_f64().unwrap() < 30.0, "{report}");
    assert_eq!(served.load(Ordering::SeqCst), 200);
}

#[test]
fn refuses_targets_off_this_machine() {
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["http://192.0.2.1:8080/", "--duration", "1s"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}
