//! Reading what the file mail sink wrote: the messages of a directory and the links in them.

use std::path::Path;
use std::time::Duration;

/// The `.eml` files of `dir`, oldest first (names start with the time); none when missing.
pub fn messages(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

/// The messages of `dir` addressed to `to` (`To:` header).
pub fn messages_to(dir: &Path, to: &str) -> Vec<String> {
    let header = format!("To: {to}\r\n");
    messages(dir)
        .into_iter()
        .filter(|m| m.contains(&header))
        .collect()
}

/// Polls `dir` until `count` messages to `to` are there (the forms send in the
/// background), at most 10 s; returns them.
pub async fn wait_for(dir: &Path, to: &str, count: usize) -> Vec<String> {
    for _ in 0..200 {
        let got = messages_to(dir, to);
        if got.len() >= count {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no {count} message(s) to {to} in {}", dir.display());
}

/// The first link in `message` starting with `prefix`, quoted-printable soft breaks undone.
pub fn link(message: &str, prefix: &str) -> String {
    let body = message.replace("=\r\n", "").replace("=3D", "=");
    let start = body
        .find(prefix)
        .unwrap_or_else(|| panic!("no {prefix} in {message}"));
    body[start..]
        .split(|c: char| c.is_whitespace())
        .next()
        .unwrap()
        .to_owned()
}
