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
        ] {
            if value.is_zero() {
                return Err(ConfigError::new(key, "must be greater than zero"));
            }
        }
        Ok(())
    }
}

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
}
