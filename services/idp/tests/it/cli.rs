//! `idp check-config` and `idp migrate`, run as the real binary.

use std::process::{Command, Output};

fn idp(args: &[&str], env: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_idp"))
        .current_dir(dir.path())
        .args(args)
        .envs(env.iter().copied())
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

#[test]
fn documented_config_file_passes() {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../../configs/idp.yaml");
    let out = idp(&["check-config", "--config", file], &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "idp: configuration is valid"
    );
}

#[test]
fn bad_public_url_is_one_line_exit_2() {
    let out = idp(&["check-config"], &[("IDP__PUBLIC_URL", "ldap://x")]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "config error: public_url: must be an http or https URL\n"
    );
}

#[test]
fn migrate_creates_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/idp.db", dir.path().display());
    let out = idp(&["migrate"], &[("IDP__DATABASE__URL", &url)]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "idp: 4 migration(s) applied"
    );
    assert!(dir.path().join("idp.db").exists());
}

#[test]
fn users_commands_refuse_a_missing_database_and_create_nothing() {
    for args in [
        &["users", "list"][..],
        &["users", "show", "demo"],
        &["users", "delete", "demo"],
        &["users", "create", "--username", "demo"],
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_idp"))
            .current_dir(dir.path())
            .args(args)
            .env_remove("IDP__DATABASE__URL")
            .env_remove("RUST_LOG")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "error: database sqlite://data/idp.db does not exist; run from the directory of \
             your deployment, pass --config, or set IDP__DATABASE__URL (only serve and \
             migrate create it)\n",
            "{args:?}"
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "{args:?} created something"
        );
    }
}
