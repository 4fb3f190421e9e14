//! `rs check-config`, run as the real binary.

use std::process::{Command, Output};

fn rs(args: &[&str], env: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_rs"))
        .current_dir(dir.path())
        .args(args)
        .envs(env.iter().copied())
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

#[test]
fn documented_config_file_passes() {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../../configs/rs.yaml");
    let out = rs(&["check-config", "--config", file], &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "rs: configuration is valid"
    );
}

#[test]
fn database_section_is_unknown_to_rs() {
    let out = rs(&["check-config"], &[("RS__DATABASE__URL", "sqlite://x.db")]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("config error: database: unknown key"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1);
}
