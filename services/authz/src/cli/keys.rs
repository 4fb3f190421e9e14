//! `authz keys …`: operating the signing keys from the command line.

use std::path::PathBuf;
use std::sync::Arc;

use audit::{Action, TargetKind};
use clap::Subcommand;
use issuer::{Algorithm, KeyRecord, PrivateKey, SystemClock};
use storage::{Database, OpenMode};

use crate::keys::KeyStore;
use crate::{AuthzConfig, AuthzError, MIGRATIONS};

/// `authz keys` subcommands. Keys added here reach running replicas within
/// `keys.check_interval`; without `--now` they sign only after `keys.publish_ahead`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List stored keys (read-only; never private material, needs no KEK).
    List {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Generate a new key for an algorithm.
    Generate {
        /// RS256, PS256, ES256 or EdDSA.
        #[arg(long, value_parser = parse_alg)]
        alg: Algorithm,
        /// Start signing at once instead of after keys.publish_ahead.
        #[arg(long)]
        now: bool,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Start a rotation: a new key for each configured algorithm (or --alg).
    Rotate {
        /// Only this algorithm.
        #[arg(long, value_parser = parse_alg)]
        alg: Option<Algorithm>,
        /// Start signing at once instead of after keys.publish_ahead.
        #[arg(long)]
        now: bool,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Stop a key signing: stored as retired at once; running servers stop signing with it
    /// within keys.check_interval (they reload the key table that often). It stays
    /// published for keys.retired_retention.
    Retire {
        /// The key id. RFC 7638 thumbprints are base64url, so a kid may start with `-`:
        /// it is taken as the kid, not as an option.
        #[arg(allow_hyphen_values = true)]
        kid: String,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Import a private key: PKCS#8 PEM or a private JWK.
    Import {
        /// The file holding the key.
        file: PathBuf,
        /// Algorithm (default: from the JWK's alg, else by key type: EC→ES256,
        /// Ed25519→EdDSA, RSA→RS256).
        #[arg(long, value_parser = parse_alg)]
        alg: Option<Algorithm>,
        /// Start signing at once instead of after keys.publish_ahead.
        #[arg(long)]
        now: bool,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Print a fresh key-encryption key (32 random bytes, base64) for keys.encryption_key_file.
    NewKek,
}

/// `authz keys new-kek`: prints a fresh key-encryption key (exit code 0), or the error on
/// one line (exit code 1). Needs no configuration: it makes the key the configuration
/// requires.
pub fn new_kek() -> std::process::ExitCode {
    match issuer::Kek::generate_base64() {
        Ok(kek) => {
            println!("{kek}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn parse_alg(s: &str) -> Result<Algorithm, String> {
    s.parse()
}

/// Runs one `authz keys` command against the configured database. `list` is read-only:
/// it opens no private key and applies no lifecycle step.
pub async fn keys(config: &AuthzConfig, command: KeysCommand) -> Result<(), AuthzError> {
    // Only serve and migrate create a database; this refuses a missing one.
    let db = Database::open(&config.database, &MIGRATIONS, OpenMode::MustExist).await?;
    db.migrate().await?;
    let open = || async {
        KeyStore::open(
            db.clone(),
            &config.keys,
            config.keys.kek()?,
            Arc::new(SystemClock),
        )
        .await
    };
    match command {
        KeysCommand::NewKek => println!("{}", issuer::Kek::generate_base64()?),
        KeysCommand::List { json } => print(&crate::keys::stored(&db).await?, json),
        KeysCommand::Generate {
            alg,
            now: activate,
            json,
        } => {
            let (record, event) = open()
                .await?
                .generate_audited(
                    alg,
                    activate,
                    Some(super::operator(Action::KeyRotated, TargetKind::Key, "")),
                )
                .await?;
            event.iter().for_each(audit::AuditEvent::log);
            print(&[record], json);
        }
        KeysCommand::Rotate {
            alg,
            now: activate,
            json,
        } => {
            let algs = alg.map_or_else(|| config.keys.algorithms.clone(), |a| vec![a]);
            let store = open().await?;
            let mut created = Vec::new();
            for alg in algs {
                let (record, event) = store
                    .generate_audited(
                        alg,
                        activate,
                        Some(super::operator(Action::KeyRotated, TargetKind::Key, "")),
                    )
                    .await?;
                event.iter().for_each(audit::AuditEvent::log);
                created.push(record);
            }
            print(&created, json);
        }
        KeysCommand::Retire { kid, json } => {
            let event = super::operator(Action::KeyRetired, TargetKind::Key, &kid);
            let record = open().await?.retire_audited(&kid, Some(&event)).await?;
            event.log();
            print(&[record], json);
            // Running servers reload the key table every keys.check_interval: the bound
            // after which none of them signs with this key any more.
            let note = format!(
                "running authz servers stop signing with {kid} within keys.check_interval ({})",
                humantime::format_duration(config.keys.check_interval)
            );
            if json {
                eprintln!("{note}");
            } else {
                println!("{note}");
            }
        }
        KeysCommand::Import {
            file,
            alg,
            now: activate,
            json,
        } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| AuthzError::NotFound(format!("{}: {e}", file.display())))?;
            let key = if text.trim_start().starts_with('{') {
                PrivateKey::from_jwk(&text, alg)?
            } else {
                PrivateKey::from_pem(&text, alg)?
            };
            let (record, event) = open()
                .await?
                .add_audited(
                    key,
                    activate,
                    Some(super::operator(Action::KeyRotated, TargetKind::Key, "")),
                )
                .await?;
            event.iter().for_each(audit::AuditEvent::log);
            print(&[record], json);
        }
    }
    Ok(())
}

/// What `keys list` shows of a key: from a stored record or the admin API's `KeyView`.
#[derive(Debug, serde::Deserialize)]
struct KeyLine {
    kid: String,
    alg: String,
    state: String,
    generation: i64,
    created_at: i64,
    activates_at: i64,
    retired_at: Option<i64>,
    remove_after: Option<i64>,
}

impl From<&KeyRecord> for KeyLine {
    fn from(r: &KeyRecord) -> Self {
        Self {
            kid: r.kid.clone(),
            alg: r.alg.as_str().to_owned(),
            state: r.state.as_str().to_owned(),
            generation: r.generation,
            created_at: r.created_at,
            activates_at: r.activates_at,
            retired_at: r.retired_at,
            remove_after: r.remove_after,
        }
    }
}

fn print(records: &[KeyRecord], json: bool) {
    print_lines(&records.iter().map(KeyLine::from).collect::<Vec<_>>(), json);
}

fn print_lines(records: &[KeyLine], json: bool) {
    if json {
        let rows: Vec<serde_json::Value> = records
            .iter()
            .map(|r| {
                serde_json::json!({
                    "kid": r.kid,
                    "alg": r.alg,
                    "state": r.state,
                    "generation": r.generation,
                    "created_at": r.created_at,
                    "activates_at": r.activates_at,
                    "retired_at": r.retired_at,
                    "remove_after": r.remove_after,
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(rows));
        return;
    }
    println!(
        "{:<44} {:<6} {:<8} {:>4}  {:<20} {:<20} {:<20} {:<20}",
        "KID", "ALG", "STATE", "GEN", "CREATED", "ACTIVATES", "RETIRES", "REMOVED AFTER"
    );
    for r in records {
        println!(
            "{:<44} {:<6} {:<8} {:>4}  {:<20} {:<20} {:<20} {:<20}",
            r.kid,
            r.alg,
            r.state,
            r.generation,
            time(Some(r.created_at)),
            time(Some(r.activates_at)),
            time(r.retired_at),
            time(r.remove_after),
        );
    }
}

// admin2: `--url`: the same commands through a remote authz's admin API.

fn key_lines(v: serde_json::Value) -> Result<Vec<KeyLine>, AuthzError> {
    let v = if v.is_array() {
        v
    } else {
        serde_json::Value::Array(vec![v])
    };
    serde_json::from_value(v)
        .map_err(|e| AuthzError::Invalid(format!("unexpected key from the admin API: {e}")))
}

/// Runs one `authz keys` command against the remote authz `target` (`--url`): `list`,
/// `generate`, `rotate` (without `--alg`: a new key for each algorithm that has a key not
/// retired) and `retire`, with the local output. `import` is refused: a private key does
/// not travel over the network.
pub async fn remote(target: super::remote::Target, command: KeysCommand) -> Result<(), AuthzError> {
    use reqwest::Method;
    let scope = match &command {
        KeysCommand::List { .. } => "admin:keys:read",
        _ => "admin:keys:read admin:keys:write",
    };
    if matches!(command, KeysCommand::Import { .. }) {
        return Err(AuthzError::Invalid(
            "keys import is not available with --url: import on the server's host".into(),
        ));
    }
    let api = target.connect(scope).await?;
    let generate = |alg: Algorithm, now: bool| {
        let api = &api;
        async move {
            let body = serde_json::json!({ "alg": alg.as_str(), "activate_now": now });
            api.call(Method::POST, "/admin/v1/keys", Some(&body)).await
        }
    };
    match command {
        KeysCommand::NewKek => println!("{}", issuer::Kek::generate_base64()?),
        KeysCommand::List { json } => print_lines(
            &key_lines(api.call(Method::GET, "/admin/v1/keys", None).await?)?,
            json,
        ),
        KeysCommand::Generate { alg, now, json } => {
            print_lines(&key_lines(generate(alg, now).await?)?, json)
        }
        KeysCommand::Rotate { alg, now, json } => {
            let algs: Vec<Algorithm> = match alg {
                Some(alg) => vec![alg],
                None => {
                    let mut algs: Vec<Algorithm> = Vec::new();
                    for k in key_lines(api.call(Method::GET, "/admin/v1/keys", None).await?)? {
                        if k.state != "retired"
                            && let Ok(a) = k.alg.parse::<Algorithm>()
                            && !algs.contains(&a)
                        {
                            algs.push(a);
                        }
                    }
                    algs
                }
            };
            let mut created = Vec::new();
            for alg in algs {
                created.extend(key_lines(generate(alg, now).await?)?);
            }
            print_lines(&created, json);
        }
        KeysCommand::Retire { kid, json } => {
            let path = format!("/admin/v1/keys/{}/retire", super::remote::segment(&kid));
            let body = serde_json::json!({});
            print_lines(
                &key_lines(api.call(Method::POST, &path, Some(&body)).await?)?,
                json,
            );
        }
        KeysCommand::Import { .. } => {}
    }
    Ok(())
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (civil-from-days, proleptic Gregorian).
fn time(t: Option<i64>) -> String {
    let Some(t) = t else { return "-".into() };
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_utc_times() {
        assert_eq!(super::time(Some(0)), "1970-01-01T00:00:00Z");
        assert_eq!(super::time(Some(1_795_564_800)), "2026-11-25T00:00:00Z");
        assert_eq!(super::time(Some(951_782_400)), "2000-02-29T00:00:00Z");
        assert_eq!(super::time(None), "-");
    }
}
