//! `authz check-config` and friends, run as the real binary.

use std::process::{Command, Output};

/// A fixed, valid key-encryption key for tests that are about something else.
pub(crate) const TEST_KEK: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

fn authz(args: &[&str], env: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    authz_in(dir.path(), args, env)
}

/// Runs the binary in `dir` (a directory without configs/, so only defaults, --config and
/// the environment apply), with `TEST_KEK` unless `env` sets a key-encryption key.
pub(crate) fn authz_in(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_authz"));
    cmd.current_dir(dir).args(args);
    cmd.env("AUTHZ__KEYS__ENCRYPTION_KEY", TEST_KEK);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.env_remove("RUST_LOG");
    cmd.output().unwrap()
}

/// Exit code 2 and exactly one stderr line, starting with `config error: <key>:`.
fn assert_config_error(out: &Output, key: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {stderr}");
    let prefix = format!("config error: {key}: ");
    assert!(
        lines[0].starts_with(&prefix),
        "expected {prefix}…, got: {}",
        lines[0]
    );
}

fn yaml(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("authz.yaml");
    std::fs::write(&path, text).unwrap();
    let path = path.to_str().unwrap().to_owned();
    (dir, path)
}

#[test]
fn valid_defaults_pass() {
    let out = authz(&["check-config"], &[]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "authz: configuration is valid"
    );
}

#[test]
fn documented_config_file_passes() {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../../configs/authz.yaml");
    let out = authz(&["check-config", "--config", file], &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn missing_config_file() {
    let out = authz(&["check-config", "--config", "missing.yaml"], &[]);
    assert_config_error(&out, "--config");
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.yaml"));
}

#[test]
fn non_numeric_port_from_env() {
    let out = authz(&["check-config"], &[("AUTHZ__HTTP__PORT", "abc")]);
    assert_config_error(&out, "http.port");
}

#[test]
fn port_out_of_range() {
    let out = authz(&["check-config"], &[("AUTHZ__ADMIN__PORT", "65536")]);
    assert_config_error(&out, "admin.port");
}

#[test]
fn unknown_key_in_file() {
    let (_d, file) = yaml("http:\n  port: 8080\n  hots: 0.0.0.0\n");
    let out = authz(&["check-config", "--config", &file], &[]);
    assert_config_error(&out, "http.hots");
}

#[test]
fn issuer_that_does_not_parse() {
    let out = authz(&["check-config"], &[("AUTHZ__ISSUER", "not a url")]);
    assert_config_error(&out, "issuer");
}

#[test]
fn plain_http_issuer_on_a_public_host() {
    let out = authz(
        &["check-config"],
        &[("AUTHZ__ISSUER", "http://id.example.com")],
    );
    assert_config_error(&out, "issuer");
}

#[test]
fn unsupported_database_scheme() {
    let out = authz(
        &["check-config"],
        &[("AUTHZ__DATABASE__URL", "mysql://db/authz")],
    );
    assert_config_error(&out, "database.url");
}

#[test]
fn unreadable_secret_file() {
    let out = authz(
        &["check-config"],
        &[("AUTHZ__DATABASE__URL_FILE", "/nonexistent/authz-db-url")],
    );
    assert_config_error(&out, "database.url_file");
}

#[test]
fn malformed_duration() {
    let (_d, file) = yaml("shutdown:\n  grace_period: soon\n");
    let out = authz(&["check-config", "--config", &file], &[]);
    assert_config_error(&out, "shutdown.grace_period");
}

#[test]
fn invalid_log_filter() {
    let out = authz(
        &["check-config"],
        &[("AUTHZ__TELEMETRY__LOG_FILTER", "info,[")],
    );
    assert_config_error(&out, "telemetry.log_filter");
}

#[test]
fn secret_from_file_is_used_and_not_printed() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("db_url");
    std::fs::write(&secret, "postgres://authz:s3cr3t-pw@db.internal/authz\n").unwrap();
    let out = authz(
        &["check-config"],
        &[("AUTHZ__DATABASE__URL_FILE", secret.to_str().unwrap())],
    );
    assert_eq!(out.status.code(), Some(0));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!all.contains("s3cr3t-pw"));
}

#[test]
fn port_from_a_file_is_a_number() {
    let dir = tempfile::tempdir().unwrap();
    let port = dir.path().join("port");
    std::fs::write(&port, "8099\n").unwrap();
    let out = authz(
        &["check-config"],
        &[("AUTHZ__HTTP__PORT_FILE", port.to_str().unwrap())],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&port, "eighty\n").unwrap();
    let out = authz(
        &["check-config"],
        &[("AUTHZ__HTTP__PORT_FILE", port.to_str().unwrap())],
    );
    assert_config_error(&out, "http.port_file");
}

#[test]
fn migrate_applies_then_reports_nothing_pending() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/authz.db", dir.path().display());
    let first = authz(&["migrate"], &[("AUTHZ__DATABASE__URL", &url)]);
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&first.stdout).trim(),
        format!("authz: {} migration(s) applied", migration_count())
    );
    let second = authz(&["migrate"], &[("AUTHZ__DATABASE__URL", &url)]);
    assert_eq!(
        String::from_utf8_lossy(&second.stdout).trim(),
        "authz: 0 migration(s) applied"
    );
}

#[test]
fn unknown_subcommand_is_a_usage_error() {
    let out = authz(&["frobnicate"], &[]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn missing_kek_names_the_key_file_setting() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_authz"))
        .current_dir(dir.path())
        .arg("check-config")
        .env_remove("AUTHZ__KEYS__ENCRYPTION_KEY")
        .output()
        .unwrap();
    assert_config_error(&out, "keys.encryption_key");
    assert!(String::from_utf8_lossy(&out.stderr).contains("keys.encryption_key_file"));
}

#[test]
fn malformed_kek_is_refused() {
    let out = authz(
        &["check-config"],
        &[("AUTHZ__KEYS__ENCRYPTION_KEY", "c2hvcnQ=")],
    );
    assert_config_error(&out, "keys.encryption_key");
}

#[test]
fn kek_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kek");
    let made = authz(&["keys", "new-kek"], &[]);
    assert_eq!(made.status.code(), Some(0));
    std::fs::write(&file, &made.stdout).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_authz"))
        .current_dir(dir.path())
        .arg("check-config")
        .env_remove("AUTHZ__KEYS__ENCRYPTION_KEY")
        .env("AUTHZ__KEYS__ENCRYPTION_KEY_FILE", &file)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn schedule_that_would_break_caches_is_refused() {
    let out = authz(
        &["check-config"],
        &[
            ("AUTHZ__KEYS__PUBLISH_AHEAD", "5m"),
            ("AUTHZ__KEYS__JWKS_MAX_AGE", "10m"),
        ],
    );
    assert_config_error(&out, "keys.publish_ahead");
}

/// Runs the binary in `dir` with no key-encryption key configured at all.
fn authz_without_kek(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_authz"))
        .current_dir(dir)
        .args(args)
        .env_remove("AUTHZ__KEYS__ENCRYPTION_KEY")
        .env_remove("AUTHZ__KEYS__ENCRYPTION_KEY_FILE")
        .envs(env.iter().copied())
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

#[test]
fn commands_other_than_serve_and_migrate_refuse_a_missing_database() {
    for args in [
        &["clients", "list"][..],
        &["clients", "show", "web"],
        &["clients", "create", "--id", "web", "--name", "Web"],
        &["clients", "delete", "web"],
        &["keys", "list"],
        &["keys", "rotate"],
    ] {
        // The default URL, relative to the working directory: the stray database a command
        // run from the wrong directory used to create.
        let dir = tempfile::tempdir().unwrap();
        let out = authz_in(dir.path(), args, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(
            stderr,
            "error: database sqlite://data/authz.db does not exist; run from the directory of \
             your deployment, pass --config, or set AUTHZ__DATABASE__URL (only serve and \
             migrate create it)\n",
            "{args:?}"
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "{args:?} created something"
        );

        // An explicit URL is named as given, and its directory is not created either.
        let url = format!("sqlite://{}/elsewhere/authz.db", dir.path().display());
        let out = authz_in(dir.path(), args, &[("AUTHZ__DATABASE__URL", &url)]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with(&format!("error: database {url} does not exist; ")));
        assert!(!dir.path().join("elsewhere").exists());
    }
}

#[test]
fn read_only_commands_need_no_kek() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/authz.db", dir.path().display());
    let env = [("AUTHZ__DATABASE__URL", url.as_str())];
    let ok = |out: Output| {
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    ok(authz_in(dir.path(), &["migrate"], &env));
    ok(authz_in(
        dir.path(),
        &[
            "clients", "create", "--id", "web", "--name", "Web", "--json",
        ],
        &env,
    ));
    ok(authz_in(
        dir.path(),
        &["keys", "rotate", "--alg", "ES256"],
        &env,
    ));

    for args in [
        &["clients", "list"][..],
        &["clients", "list", "--json"],
        &["clients", "show", "web", "--json"],
        &["keys", "list"],
        &["keys", "list", "--json"],
    ] {
        let with_kek = ok(authz_in(dir.path(), args, &env));
        let without = ok(authz_without_kek(dir.path(), args, &env));
        assert_eq!(without, with_kek, "{args:?}");
        assert!(!without.is_empty(), "{args:?}");
    }
    let keys = ok(authz_without_kek(
        dir.path(),
        &["keys", "list", "--json"],
        &env,
    ));
    let keys: serde_json::Value = serde_json::from_str(&keys).unwrap();
    let stored = keys.as_array().unwrap().len();
    assert!(stored > 0, "{keys}");
    assert!(ok(authz_without_kek(dir.path(), &["clients", "list"], &env)).contains("web"));

    // Creating or unsealing keys still needs it, with the same one-line error as before.
    for args in [
        &["keys", "rotate"][..],
        &["keys", "generate", "--alg", "ES256"],
        &["keys", "retire", "no-such-kid"],
        &["serve"],
    ] {
        let out = authz_without_kek(dir.path(), args, &env);
        assert_config_error(&out, "keys.encryption_key");
        assert!(String::from_utf8_lossy(&out.stderr).contains("keys.encryption_key_file"));
    }
    let keys = ok(authz_without_kek(
        dir.path(),
        &["keys", "list", "--json"],
        &env,
    ));
    let keys: serde_json::Value = serde_json::from_str(&keys).unwrap();
    assert_eq!(
        keys.as_array().unwrap().len(),
        stored,
        "nothing was created: {keys}"
    );
}

/// How many migrations authz ships (directories under migrations/).
pub(crate) fn migration_count() -> usize {
    std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().is_dir())
        .count()
}

/// Bad TLS files stop `serve` and `check-config` with exit code 2 and one line naming the
/// key and the reason (issue 16).
#[test]
fn tls_start_up_failures_exit_2_naming_the_key() {
    use runtime::test_pki::{TestPki, Validity};
    let pki = TestPki::new("cli").unwrap();
    let good = pki
        .issue("good", &["localhost"], Validity::Current)
        .unwrap();
    let other = pki
        .issue("other", &["localhost"], Validity::Current)
        .unwrap();
    let expired = pki
        .issue("expired", &["localhost"], Validity::Expired)
        .unwrap();
    let path = |p: &std::path::Path| p.to_str().unwrap().to_owned();
    let missing = path(&pki.dir().join("missing.pem"));
    let (good_cert, good_key) = (path(&good.cert_file), path(&good.key_file));

    let out = authz(
        &["serve"],
        &[
            ("AUTHZ__HTTP__TLS__CERT_FILE", &missing),
            ("AUTHZ__HTTP__TLS__KEY_FILE", &good_key),
        ],
    );
    assert_config_error(&out, "http.tls.cert_file");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot read"), "{stderr}");

    let out = authz(
        &["check-config"],
        &[
            ("AUTHZ__GRPC__TLS__CERT_FILE", &path(&expired.cert_file)),
            ("AUTHZ__GRPC__TLS__KEY_FILE", &path(&expired.key_file)),
        ],
    );
    assert_config_error(&out, "grpc.tls.cert_file");
    assert!(String::from_utf8_lossy(&out.stderr).contains("expired"));

    let out = authz(
        &["check-config"],
        &[
            ("AUTHZ__ADMIN__TLS__CERT_FILE", &good_cert),
            ("AUTHZ__ADMIN__TLS__KEY_FILE", &path(&other.key_file)),
        ],
    );
    assert_config_error(&out, "admin.tls.key_file");
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not belong"));

    let out = authz(
        &["check-config"],
        &[
            ("AUTHZ__GRPC__TLS__CERT_FILE", &good_cert),
            ("AUTHZ__GRPC__TLS__KEY_FILE", &good_key),
            ("AUTHZ__GRPC__TLS__CLIENT_CA_FILE", &missing),
        ],
    );
    assert_config_error(&out, "grpc.tls.client_ca_file");

    let out = authz(
        &["check-config"],
        &[("AUTHZ__IDP__GRPC_URL", "https://idp.internal:50052")],
    );
    assert_config_error(&out, "idp.tls.ca_file");

    let out = authz(
        &["check-config"],
        &[
            ("AUTHZ__HTTP__TLS__CERT_FILE", &good_cert),
            ("AUTHZ__HTTP__TLS__KEY_FILE", &good_key),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}
