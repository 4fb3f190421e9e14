use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Serialized, Yaml};
use figment::value::{Dict, Value};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{ConfigError, Validate};

/// Where the YAML layer comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// `--config FILE`: the file must exist and parse.
    File(PathBuf),
    /// No `--config`: `configs/<service>.yaml` relative to the working directory, used
    /// only when it exists.
    DefaultLocation,
    /// Compiled defaults and environment only.
    None,
}

/// Loads the configuration of `service` (`authz`, `idp`, `rs`): compiled defaults, then the
/// YAML file, then the process environment under the `<SERVICE>__` prefix, then resolves
/// `<key>_file` indirections, deserialises into `T` (unknown keys are errors when `T` uses
/// `deny_unknown_fields`) and validates.
pub fn load<T>(service: &str, source: &ConfigSource) -> Result<T, ConfigError>
where
    T: Default + Serialize + DeserializeOwned + Validate,
{
    load_with_env(service, source, std::env::vars())
}

/// [`load`] with an explicit environment, so tests need not touch the process environment.
pub fn load_with_env<T, I>(service: &str, source: &ConfigSource, env: I) -> Result<T, ConfigError>
where
    T: Default + Serialize + DeserializeOwned + Validate,
    I: IntoIterator<Item = (String, String)>,
{
    let mut figment = Figment::from(Serialized::defaults(T::default()));
    match source {
        ConfigSource::File(path) => {
            if !path.is_file() {
                return Err(ConfigError::new(
                    "--config",
                    format!("{}: no such file", path.display()),
                ));
            }
            figment = figment.merge(Yaml::file_exact(path));
        }
        ConfigSource::DefaultLocation => {
            let path = Path::new("configs").join(format!("{service}.yaml"));
            if path.is_file() {
                figment = figment.merge(Yaml::file_exact(path));
            }
        }
        ConfigSource::None => {}
    }
    let prefix = format!("{}__", service.to_ascii_uppercase());
    for (name, raw) in env {
        let Some(rest) = name.strip_prefix(&prefix) else {
            continue;
        };
        let key = rest
            .split("__")
            .map(str::to_ascii_lowercase)
            .collect::<Vec<_>>()
            .join(".");
        if key.is_empty() || key.split('.').any(str::is_empty) {
            return Err(ConfigError::new(name, "malformed variable name"));
        }
        let value: Value = raw.parse().unwrap_or_else(|_| Value::from(raw.clone()));
        figment = figment.merge(Serialized::default(&key, value));
    }

    let merged: Value = figment.extract().map_err(ConfigError::from_figment)?;
    let mut from_files = Vec::new();
    let resolved = resolve_file_keys(merged, "", &mut from_files)?;
    // Lossy: a file holds text, so `8099` or `true` read from a `<key>_file` must become the
    // number or boolean the key wants. Only keys whose type is a number or a boolean are
    // reinterpreted; a string key keeps the text as it is (a secret `0123` stays `0123`).
    let config: T = Figment::from(Serialized::defaults(resolved))
        .extract_lossy()
        .map_err(|e| {
            let mut err = ConfigError::from_figment(e);
            if let Some((_, file)) = from_files.iter().find(|(key, _)| *key == err.key) {
                err = ConfigError::new(
                    format!("{}_file", err.key),
                    format!("{} (read from {file})", err.message),
                );
            }
            err
        })?;
    config.validate()?;
    Ok(config)
}

/// Whether `key` inside the section at `path` names a file the service reads itself (a
/// certificate, a key, a CA bundle) rather than a `<key>_file` indirection: every key of a
/// `tls` section (`http.tls.cert_file`, `idp.tls.ca_file`), and `ca_file` anywhere
/// (`guard.jwks.ca_file`). There is no plain key these could stand for.
fn is_path_key(path: &str, key: &str) -> bool {
    path == "tls" || path.ends_with(".tls") || key == "ca_file"
}

/// Replaces every `<key>_file: PATH` entry by `<key>: <contents of PATH>` (one trailing
/// newline removed) and records `(dotted key, PATH)` in `from_files`, so a value that does
/// not fit its key can be reported under the `<key>_file` it came from. File path keys
/// ([`is_path_key`]) stay as they are.
fn resolve_file_keys(
    value: Value,
    path: &str,
    from_files: &mut Vec<(String, String)>,
) -> Result<Value, ConfigError> {
    let Value::Dict(tag, dict) = value else {
        return Ok(value);
    };
    let mut out = Dict::new();
    let mut contents_of = Vec::new();
    for (key, child) in dict {
        let child_path = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        match key.strip_suffix("_file") {
            Some(target) if !target.is_empty() && !is_path_key(path, &key) => {
                let Some(file) = child.as_str() else {
                    return Err(ConfigError::new(child_path, "expected a file path"));
                };
                let contents = std::fs::read_to_string(file).map_err(|e| {
                    ConfigError::new(child_path.clone(), format!("cannot read {file}: {e}"))
                })?;
                let contents = contents.strip_suffix('\n').unwrap_or(&contents);
                let contents = contents.strip_suffix('\r').unwrap_or(contents);
                let target_path = if path.is_empty() {
                    target.to_owned()
                } else {
                    format!("{path}.{target}")
                };
                from_files.push((target_path, file.to_owned()));
                contents_of.push((target.to_owned(), Value::from(contents.to_owned())));
            }
            _ => {
                out.insert(key, resolve_file_keys(child, &child_path, from_files)?);
            }
        }
    }
    // File contents win over plain values, whatever the iteration order.
    for (key, value) in contents_of {
        out.insert(key, value);
    }
    Ok(Value::Dict(tag, out))
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Http {
        port: u16,
        host: std::net::IpAddr,
    }

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Db {
        url: crate::Secret<String>,
    }

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Cfg {
        http: Http,
        database: Db,
        issuer: url::Url,
        #[serde(with = "humantime_serde")]
        grace: std::time::Duration,
    }

    impl Default for Cfg {
        fn default() -> Self {
            Self {
                http: Http {
                    port: 8080,
                    host: [127, 0, 0, 1].into(),
                },
                database: Db {
                    url: crate::Secret::new("sqlite://data/x.db".into()),
                },
                issuer: "http://localhost:8080"
                    .parse()
                    .unwrap_or_else(|_| unreachable!()),
                grace: std::time::Duration::from_secs(10),
            }
        }
    }

    impl Validate for Cfg {
        fn validate(&self) -> Result<(), ConfigError> {
            if self.issuer.scheme() != "http" && self.issuer.scheme() != "https" {
                return Err(ConfigError::new("issuer", "must be an http or https URL"));
            }
            Ok(())
        }
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn yaml(text: &str) -> (tempfile::TempDir, ConfigSource) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(&path, text).unwrap();
        (dir, ConfigSource::File(path))
    }

    fn err(source: &ConfigSource, vars: &[(&str, &str)]) -> String {
        load_with_env::<Cfg, _>("svc", source, env(vars))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn defaults_then_file_then_env() {
        let (_d, src) = yaml("http:\n  port: 9000\n  host: 0.0.0.0\n");
        let cfg: Cfg = load_with_env("svc", &src, env(&[("SVC__HTTP__PORT", "9100")])).unwrap();
        assert_eq!(cfg.http.port, 9100);
        assert_eq!(cfg.http.host.to_string(), "0.0.0.0");
        assert_eq!(cfg.grace.as_secs(), 10);
        assert_eq!(cfg.database.url.expose(), "sqlite://data/x.db");
    }

    #[test]
    fn env_of_other_services_is_ignored() {
        let cfg: Cfg = load_with_env(
            "svc",
            &ConfigSource::None,
            env(&[("OTHER__HTTP__PORT", "x")]),
        )
        .unwrap();
        assert_eq!(cfg.http.port, 8080);
    }

    #[test]
    fn non_numeric_port_names_the_key() {
        let e = err(&ConfigSource::None, &[("SVC__HTTP__PORT", "abc")]);
        assert!(e.starts_with("http.port: "), "{e}");
        assert!(e.contains("abc"), "{e}");
    }

    #[test]
    fn port_out_of_range_names_the_key() {
        let e = err(&ConfigSource::None, &[("SVC__HTTP__PORT", "70000")]);
        assert!(e.starts_with("http.port: "), "{e}");
        assert!(e.contains("70000"), "{e}");
    }

    #[test]
    fn unknown_key_is_refused() {
        let (_d, src) = yaml("http:\n  prot: 1\n");
        let e = err(&src, &[]);
        assert!(e.starts_with("http.prot: unknown key"), "{e}");
        assert!(e.contains("port"), "{e}");
    }

    #[test]
    fn unknown_section_is_refused() {
        let e = err(&ConfigSource::None, &[("SVC__NOPE", "1")]);
        assert!(e.starts_with("nope: unknown key"), "{e}");
    }

    #[test]
    fn unparsable_url_names_the_key() {
        let e = err(&ConfigSource::None, &[("SVC__ISSUER", "not a url")]);
        assert!(e.starts_with("issuer: "), "{e}");
    }

    #[test]
    fn validation_errors_name_the_key() {
        let e = err(&ConfigSource::None, &[("SVC__ISSUER", "ftp://x")]);
        assert_eq!(e, "issuer: must be an http or https URL");
    }

    #[test]
    fn bad_duration_names_the_key() {
        let e = err(&ConfigSource::None, &[("SVC__GRACE", "ten seconds")]);
        assert!(e.starts_with("grace: "), "{e}");
    }

    #[test]
    fn bad_ip_names_the_key() {
        let (_d, src) = yaml("http:\n  host: localhost.example\n");
        let e = err(&src, &[]);
        assert!(e.starts_with("http.host: "), "{e}");
    }

    /// Keys of a `tls` section and `ca_file` are paths the service reads itself (PEM
    /// certificates and keys), not `<key>_file` indirections; elsewhere `key_file` still is.
    #[test]
    fn tls_file_keys_are_paths_not_indirections() {
        let mut dict = Dict::new();
        let mut tls = Dict::new();
        tls.insert("cert_file".into(), Value::from("/etc/tls/cert.pem"));
        tls.insert("key_file".into(), Value::from("/etc/tls/key.pem"));
        let mut http = Dict::new();
        http.insert("tls".into(), Value::from(tls));
        dict.insert("http".into(), Value::from(http));
        let mut jwks = Dict::new();
        jwks.insert("ca_file".into(), Value::from("/etc/tls/ca.pem"));
        dict.insert("jwks".into(), Value::from(jwks));
        let mut csrf = Dict::new();
        csrf.insert("key_file".into(), Value::from("/nonexistent/csrf"));
        dict.insert("csrf".into(), Value::from(csrf));
        let mut from_files = Vec::new();
        let resolved =
            resolve_file_keys(Value::from(dict.clone()), "", &mut from_files).unwrap_err();
        assert!(
            resolved
                .to_string()
                .starts_with("csrf.key_file: cannot read"),
            "{resolved}"
        );
        dict.remove("csrf");
        let resolved = resolve_file_keys(Value::from(dict), "", &mut from_files).unwrap();
        let found = |path: &str| {
            resolved
                .find_ref(path)
                .and_then(|v| v.as_str().map(str::to_owned))
        };
        assert_eq!(
            found("http.tls.cert_file").as_deref(),
            Some("/etc/tls/cert.pem")
        );
        assert_eq!(found("jwks.ca_file").as_deref(), Some("/etc/tls/ca.pem"));
        assert!(found("http.tls.cert").is_none());
        assert!(from_files.is_empty());
    }

    #[test]
    fn missing_explicit_file_is_an_error() {
        let e = err(&ConfigSource::File("missing.yaml".into()), &[]);
        assert_eq!(e, "--config: missing.yaml: no such file");
    }

    #[test]
    fn malformed_yaml_is_reported_on_one_line() {
        let (_d, src) = yaml("http: [unclosed\n");
        let e = err(&src, &[]);
        assert!(!e.contains('\n'), "{e}");
    }

    #[test]
    fn secrets_can_come_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("db_url");
        std::fs::write(&secret, "postgres://u:p@h/db\n").unwrap();
        let cfg: Cfg = load_with_env(
            "svc",
            &ConfigSource::None,
            env(&[("SVC__DATABASE__URL_FILE", secret.to_str().unwrap())]),
        )
        .unwrap();
        assert_eq!(cfg.database.url.expose(), "postgres://u:p@h/db");
        assert_eq!(format!("{:?}", cfg.database.url), "[redacted]");
    }

    #[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct Typed {
        port: u16,
        enabled: bool,
        #[serde(with = "humantime_serde")]
        grace: std::time::Duration,
        secret: crate::Secret<String>,
        name: String,
    }

    impl Validate for Typed {
        fn validate(&self) -> Result<(), ConfigError> {
            Ok(())
        }
    }

    /// Loads [`Typed`] with each `(variable, contents)` written to a file and passed as
    /// `SVC__<VARIABLE>_FILE`.
    fn typed_from_files(files: &[(&str, &str)]) -> Result<Typed, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let vars = files
            .iter()
            .map(|(var, contents)| {
                let path = dir.path().join(var);
                std::fs::write(&path, contents).unwrap();
                (
                    format!("SVC__{var}_FILE"),
                    path.to_str().unwrap().to_owned(),
                )
            })
            .collect::<Vec<_>>();
        load_with_env("svc", &ConfigSource::None, vars)
    }

    #[test]
    fn file_values_take_the_type_of_their_key() {
        let cfg = typed_from_files(&[
            ("PORT", "8099\n"),
            ("ENABLED", "true\n"),
            ("GRACE", "30s\n"),
            ("SECRET", "0123\n"),
            ("NAME", "true"),
        ])
        .unwrap();
        assert_eq!(cfg.port, 8099);
        assert!(cfg.enabled);
        assert_eq!(cfg.grace, std::time::Duration::from_secs(30));
        assert_eq!(cfg.secret.expose(), "0123");
        assert_eq!(cfg.name, "true");
    }

    #[test]
    fn string_file_values_are_kept_exactly() {
        for text in [
            "0123", "1e3", "007", "false", "[a, b]", "{x: 1}", " padded ",
        ] {
            let cfg = typed_from_files(&[("SECRET", text), ("NAME", text)]).unwrap();
            assert_eq!(cfg.secret.expose(), text);
            assert_eq!(cfg.name, text);
        }
    }

    #[test]
    fn file_value_of_the_wrong_type_names_the_file_key() {
        let e = typed_from_files(&[("PORT", "eighty\n")])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("port_file: "), "{e}");
        assert!(e.contains("eighty"), "{e}");
        let e = typed_from_files(&[("ENABLED", "maybe")])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("enabled_file: "), "{e}");
        let e = typed_from_files(&[("PORT", "70000")])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("port_file: "), "{e}");
    }

    #[test]
    fn nested_file_value_takes_the_type_of_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let port = dir.path().join("port");
        std::fs::write(&port, "8099\n").unwrap();
        let cfg: Cfg = load_with_env(
            "svc",
            &ConfigSource::None,
            env(&[("SVC__HTTP__PORT_FILE", port.to_str().unwrap())]),
        )
        .unwrap();
        assert_eq!(cfg.http.port, 8099);
        std::fs::write(&port, "x8099\n").unwrap();
        let e = err(
            &ConfigSource::None,
            &[("SVC__HTTP__PORT_FILE", port.to_str().unwrap())],
        );
        assert!(e.starts_with("http.port_file: "), "{e}");
    }

    #[test]
    fn unreadable_secret_file_names_the_key() {
        let e = err(
            &ConfigSource::None,
            &[("SVC__DATABASE__URL_FILE", "/nonexistent/secret")],
        );
        assert!(
            e.starts_with("database.url_file: cannot read /nonexistent/secret"),
            "{e}"
        );
    }
}
