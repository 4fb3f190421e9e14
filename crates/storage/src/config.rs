use std::path::PathBuf;
use std::time::Duration;

use config::{ConfigError, Secret, Validate};
use serde::{Deserialize, Serialize};

/// The `database` section of a service's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://relative/or/absolute/path.db` (`sqlite:///abs/path.db`) or
    /// `postgres://user:password@host:port/database`. Secret: may be given as `url_file`.
    pub url: Secret<String>,
    /// Upper bound of pooled connections.
    pub max_connections: usize,
    /// How long a new connection may take to open.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// How long a request waits for a free pooled connection before failing with 503.
    #[serde(with = "humantime_serde")]
    pub acquire_timeout: Duration,
    /// How long SQLite waits on a locked database before failing a statement.
    #[serde(with = "humantime_serde")]
    pub sqlite_busy_timeout: Duration,
    /// SQLite only: how often a background thread copies the write-ahead log into the
    /// database file and rewinds it, instead of the commit that takes it past 1000 pages
    /// (SQLite's default). Writers wait only for the short rewind, about once an interval
    /// under steady writes; the log holds about one interval's writes. At most 1 minute.
    #[serde(with = "humantime_serde")]
    pub sqlite_checkpoint_interval: Duration,
    /// PostgreSQL only: how long a statement waits for a row or table lock before it fails
    /// (SQLSTATE 55P03, answered 503 with `Retry-After`) instead of holding the request;
    /// set as `lock_timeout` on every pooled connection. `0s` disables it.
    #[serde(with = "humantime_serde")]
    pub lock_timeout: Duration,
    /// PostgreSQL only: the longest a single statement may run before the server cancels
    /// it (SQLSTATE 57014, answered 503); set as `statement_timeout` on every pooled
    /// connection. `0s` disables it.
    #[serde(with = "humantime_serde")]
    pub statement_timeout: Duration,
    /// How often a tiny write (one row of the `storage_health` table) checks that the
    /// database takes writes; `/readyz` answers 503 while it fails, or while queries failed
    /// for a full or failing disk or a lost server within this interval.
    #[serde(with = "humantime_serde")]
    pub write_check_interval: Duration,
    /// Apply pending migrations when `serve` starts (otherwise run `migrate` first).
    pub migrate_on_start: bool,
}

impl DatabaseConfig {
    /// Defaults around `url`.
    pub fn with_url(url: impl Into<String>) -> Self {
        Self {
            url: Secret::new(url.into()),
            max_connections: 16,
            connect_timeout: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(5),
            sqlite_busy_timeout: Duration::from_secs(5),
            sqlite_checkpoint_interval: Duration::from_secs(1),
            lock_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(30),
            write_check_interval: Duration::from_secs(5),
            migrate_on_start: true,
        }
    }
}

impl Validate for DatabaseConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        DatabaseUrl::parse(self.url.expose()).map_err(|m| ConfigError::new("url", m))?;
        if !(1..=1000).contains(&self.max_connections) {
            return Err(ConfigError::new(
                "max_connections",
                "must be between 1 and 1000",
            ));
        }
        for (key, value) in [
            ("connect_timeout", self.connect_timeout),
            ("acquire_timeout", self.acquire_timeout),
            ("write_check_interval", self.write_check_interval),
            (
                "sqlite_checkpoint_interval",
                self.sqlite_checkpoint_interval,
            ),
        ] {
            if value.is_zero() {
                return Err(ConfigError::new(key, "must be greater than zero"));
            }
        }
        if self.sqlite_checkpoint_interval > Duration::from_secs(60) {
            return Err(ConfigError::new(
                "sqlite_checkpoint_interval",
                "must be at most 1m (the write-ahead log holds one interval's writes)",
            ));
        }
        for (key, value) in [
            ("lock_timeout", self.lock_timeout),
            ("statement_timeout", self.statement_timeout),
        ] {
            if !value.is_zero() && value < Duration::from_millis(1) {
                return Err(ConfigError::new(key, "must be 0s (off) or at least 1ms"));
            }
            if value > MAX_PG_TIMEOUT {
                return Err(ConfigError::new(
                    key,
                    "must be at most 24d (PostgreSQL's limit is 2147483647ms)",
                ));
            }
        }
        Ok(())
    }
}

/// The largest `lock_timeout`/`statement_timeout` accepted: PostgreSQL takes at most
/// `i32::MAX` milliseconds (about 24.8 days).
const MAX_PG_TIMEOUT: Duration = Duration::from_secs(24 * 24 * 3600);

/// A parsed database URL.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// A SQLite database file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection string (kept whole: it may carry a password).
    Postgres(String),
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            Self::Postgres(_) => f.write_str("Postgres([redacted])"),
        }
    }
}

impl DatabaseUrl {
    /// Parses `sqlite://PATH` or `postgres://…`/`postgresql://…`. The error message never
    /// repeats the URL, which may contain a password.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if let Some(path) = raw.strip_prefix("sqlite://") {
            if path.is_empty() || path.starts_with(':') {
                return Err(
                    "sqlite:// needs a file path (in-memory databases are not supported)".into(),
                );
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            let url = url::Url::parse(raw).map_err(|e| format!("invalid PostgreSQL URL: {e}"))?;
            if url.host_str().is_none_or(str::is_empty) {
                return Err("PostgreSQL URL needs a host".into());
            }
            if url.path().trim_start_matches('/').is_empty() {
                return Err("PostgreSQL URL needs a database name".into());
            }
            return Ok(Self::Postgres(raw.to_owned()));
        }
        Err("unsupported scheme: use sqlite://PATH or postgres://USER:PASSWORD@HOST/DB".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_schemes_and_hides_passwords() {
        assert_eq!(
            DatabaseUrl::parse("sqlite://data/a.db").unwrap(),
            DatabaseUrl::Sqlite("data/a.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:///tmp/a.db").unwrap(),
            DatabaseUrl::Sqlite("/tmp/a.db".into())
        );
        let pg = DatabaseUrl::parse("postgres://u:hunter2@localhost/db").unwrap();
        assert!(!format!("{pg:?}").contains("hunter2"));
        for bad in [
            "mysql://x/y",
            "sqlite://",
            "sqlite://:memory:",
            "postgres://u:hunter2@/db",
            "postgres://u:hunter2@localhost",
        ] {
            let e = DatabaseUrl::parse(bad).unwrap_err();
            assert!(!e.contains("hunter2"), "{e}");
        }
    }

    #[test]
    fn validates_pool_bounds() {
        let mut c = DatabaseConfig::with_url("sqlite://x.db");
        assert!(c.validate().is_ok());
        c.max_connections = 0;
        assert_eq!(c.validate().unwrap_err().key, "max_connections");
        c.max_connections = 4;
        c.acquire_timeout = Duration::ZERO;
        assert_eq!(c.validate().unwrap_err().key, "acquire_timeout");
        c.acquire_timeout = Duration::from_secs(1);
        c.url = Secret::new("oracle://x".into());
        assert_eq!(c.validate().unwrap_err().key, "url");
    }

    #[test]
    fn validates_postgres_timeouts_and_the_write_check() {
        let mut c = DatabaseConfig::with_url("postgres://u:p@localhost/db");
        assert_eq!(c.lock_timeout, Duration::from_secs(5));
        assert_eq!(c.statement_timeout, Duration::from_secs(30));
        c.lock_timeout = Duration::ZERO;
        c.statement_timeout = Duration::ZERO;
        assert!(c.validate().is_ok(), "0s disables");
        c.lock_timeout = Duration::from_micros(10);
        assert_eq!(c.validate().unwrap_err().key, "lock_timeout");
        c.lock_timeout = Duration::from_millis(200);
        c.statement_timeout = Duration::from_secs(30 * 24 * 3600);
        assert_eq!(c.validate().unwrap_err().key, "statement_timeout");
        c.statement_timeout = Duration::from_secs(1);
        assert!(c.validate().is_ok());
        c.write_check_interval = Duration::ZERO;
        assert_eq!(c.validate().unwrap_err().key, "write_check_interval");
    }

    #[test]
    fn the_checkpoint_interval_is_between_zero_and_a_minute() {
        let mut c = DatabaseConfig::with_url("sqlite://data/x.db");
        assert_eq!(c.sqlite_checkpoint_interval, Duration::from_secs(1));
        c.sqlite_checkpoint_interval = Duration::from_secs(60);
        assert!(c.validate().is_ok());
        for bad in [Duration::ZERO, Duration::from_secs(61)] {
            c.sqlite_checkpoint_interval = bad;
            assert_eq!(c.validate().unwrap_err().key, "sqlite_checkpoint_interval");
        }
    }
}
