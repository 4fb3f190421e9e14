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
    let all =
        diesel::migration::MigrationSource::<diesel::sqlite::Sqlite>::migrations(&idp::MIGRATIONS)
            .unwrap()
            .len();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("idp: {all} migration(s) applied")
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

/// `upstreams.token_key` (issue 20, `store_tokens`): missing while a provider stores
/// tokens, unreadable, not base64 or not 32 bytes, the start stops with one line naming it.
#[test]
fn bad_upstream_token_key_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let short = dir.path().join("short.key");
    std::fs::write(&short, "c2hvcnQ=\n").unwrap();
    let garbage = dir.path().join("garbage.key");
    std::fs::write(&garbage, "not base64 at all !\n").unwrap();
    let missing = dir.path().join("missing.key");
    let provider = [
        ("IDP__UPSTREAMS__PROVIDERS__CORP__KIND", "oidc"),
        ("IDP__UPSTREAMS__PROVIDERS__CORP__DISPLAY_NAME", "Corp SSO"),
        (
            "IDP__UPSTREAMS__PROVIDERS__CORP__ISSUER",
            "https://sso.example.com",
        ),
        ("IDP__UPSTREAMS__PROVIDERS__CORP__CLIENT_ID", "idp"),
        ("IDP__UPSTREAMS__PROVIDERS__CORP__CLIENT_SECRET", "s3cret"),
        ("IDP__UPSTREAMS__PROVIDERS__CORP__STORE_TOKENS", "true"),
    ];
    let run = |key_file: Option<&std::path::Path>| {
        let mut env = provider.to_vec();
        let path;
        if let Some(file) = key_file {
            path = file.display().to_string();
            env.push(("IDP__UPSTREAMS__TOKEN_KEY_FILE", &path));
            let out = idp(&["serve"], &env);
            return (
                out.status.code(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            );
        }
        let out = idp(&["serve"], &env);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(
        run(None),
        (
            Some(2),
            "config error: upstreams.token_key: is required when a provider has store_tokens: true (give it as token_key_file)\n".to_owned()
        )
    );
    assert_eq!(
        run(Some(&short)),
        (
            Some(2),
            "config error: upstreams.token_key: must be 32 bytes (base64 of 32 random bytes), got 5\n".to_owned()
        )
    );
    assert_eq!(
        run(Some(&garbage)),
        (
            Some(2),
            "config error: upstreams.token_key: must be base64\n".to_owned()
        )
    );
    let (code, stderr) = run(Some(&missing));
    assert_eq!(code, Some(2));
    assert!(
        stderr.starts_with("config error: upstreams.token_key_file: ")
            && stderr.lines().count() == 1,
        "{stderr}"
    );
}
