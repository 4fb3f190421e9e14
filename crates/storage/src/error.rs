use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The configured URL is not usable (never contains the URL itself).
    #[error("database.url: {0}")]
    Url(String),
    /// The SQLite database file does not exist and the open mode forbids creating it
    /// ([`crate::OpenMode::MustExist`]). `url` is `sqlite://PATH` (SQLite URLs hold no
    /// password).
    #[error("database {url} does not exist")]
    Missing {
        /// The URL that was tried.
        url: String,
    },
    /// A connection could not be established.
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    /// No pooled connection became free within the acquire timeout, or the pool could not
    /// open one (server down, connection refused); transient (maps to 503).
    #[error("no database connection available: {0}")]
    Unavailable(String),
    /// A query failed.
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    /// Applying or inspecting migrations failed.
    #[error("migrations: {0}")]
    Migration(String),
}

impl StorageError {
    /// Whether this is diesel's "no row found" (callers map it to their not-found error).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Query(diesel::result::Error::NotFound))
    }

    /// Whether a unique or primary-key constraint was violated.
    pub fn is_unique_violation(&self) -> bool {
        matches!(
            self,
            Self::Query(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _
            ))
        )
    }

    /// Whether the same request may succeed if tried again shortly, because the database
    /// is busy, full or unreachable rather than the request or the data being wrong. This
    /// is the one classification the services' edges use to answer 503 with `Retry-After`
    /// (RFC 9110 §15.6.4), `temporarily_unavailable` (RFC 6749 §4.1.2.1, §5.2) or gRPC
    /// `UNAVAILABLE`; everything else stays an internal error. Transient are:
    ///
    /// - no pooled connection within the acquire timeout, or none could be opened
    ///   ([`StorageError::Unavailable`]);
    /// - SQLite: `SQLITE_BUSY` ("database is locked", also after the busy timeout),
    ///   `SQLITE_LOCKED` ("database table is locked"), `SQLITE_FULL` ("database or disk is
    ///   full"), `SQLITE_IOERR` ("disk I/O error");
    /// - PostgreSQL: the connection lost, closed or refused (no SQLSTATE), 40001
    ///   serialization_failure, 40P01 deadlock_detected, 55P03 lock_not_available
    ///   (`lock_timeout`, `NOWAIT`), 57014 query_canceled by `statement_timeout`, 57P01
    ///   admin_shutdown, 57P03 cannot_connect_now.
    ///
    /// diesel reports SQLite's result codes and most PostgreSQL SQLSTATEs only as message
    /// text (diesel-async keeps the SQLSTATE private), so those are recognised by the
    /// servers' exact English messages (the pool asks PostgreSQL for `lc_messages = 'C'`).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unavailable(_) => true,
            Self::Query(e) => transience(e).is_some(),
            Self::Url(_) | Self::Missing { .. } | Self::Connect(_) | Self::Migration(_) => false,
        }
    }
}

/// What kind of transient failure a diesel error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transience {
    /// The request lost a race for a lock or a snapshot (busy or locked SQLite, PostgreSQL
    /// serialization failure, deadlock, lock or statement timeout): others may be served.
    Contention,
    /// The database cannot take writes at all right now: the disk is full or failing, or
    /// the server went away. Readiness reports it ([`crate::Database::check_ready`]).
    Outage,
}

/// The classification behind [`StorageError::is_transient`].
pub(crate) fn transience(e: &DieselError) -> Option<Transience> {
    match e {
        DieselError::DatabaseError(kind, info) => {
            let message = info.message();
            match kind {
                DatabaseErrorKind::SerializationFailure => Some(Transience::Contention),
                DatabaseErrorKind::ClosedConnection => Some(Transience::Outage),
                DatabaseErrorKind::UnableToSendCommand => CONNECTION_LOST
                    .iter()
                    .any(|m| message.starts_with(m))
                    .then_some(Transience::Outage),
                _ => message_transience(message),
            }
        }
        DieselError::RollbackErrorOnCommit { commit_error, .. } => transience(commit_error),
        // The transaction's state on the connection is unknown: the connection broke while
        // a transaction was open (the only way the workspace's code reaches it).
        DieselError::BrokenTransactionManager => Some(Transience::Outage),
        _ => None,
    }
}

/// tokio-postgres' messages for a connection that broke or never came up (no SQLSTATE:
/// diesel-async reports them as `UnableToSendCommand`), and the closed channel of its
/// connection task.
const CONNECTION_LOST: [&str; 5] = [
    "connection closed",
    "error communicating with the server",
    "error connecting to server",
    "timeout waiting for server",
    "channel closed",
];

fn message_transience(message: &str) -> Option<Transience> {
    // SQLite (sqlite3_errstr of the primary result code; SQLITE_LOCKED_SHAREDCACHE adds
    // ": <table>").
    if message == "database is locked" || message.starts_with("database table is locked") {
        return Some(Transience::Contention);
    }
    if message == "database or disk is full" || message.starts_with("disk I/O error") {
        return Some(Transience::Outage);
    }
    // PostgreSQL: 55P03 lock_not_available (lock_timeout and NOWAIT), 57014 by
    // statement_timeout, 40P01 deadlock_detected.
    if message == "canceling statement due to lock timeout"
        || message.starts_with("could not obtain lock on ")
        || message == "canceling statement due to statement timeout"
        || message == "deadlock detected"
    {
        return Some(Transience::Contention);
    }
    // 57P01 admin_shutdown, 57P03 cannot_connect_now ("the database system is starting
    // up", "… is shutting down", "… is in recovery mode", "… is not yet accepting
    // connections", "… is not accepting connections").
    if message == "terminating connection due to administrator command"
        || message.starts_with("the database system is ")
    {
        return Some(Transience::Outage);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(kind: DatabaseErrorKind, message: &str) -> StorageError {
        StorageError::Query(DieselError::DatabaseError(
            kind,
            Box::new(message.to_owned()),
        ))
    }

    fn unknown(message: &str) -> StorageError {
        db(DatabaseErrorKind::Unknown, message)
    }

    #[test]
    fn sqlite_busy_locked_full_and_io_errors_are_transient() {
        for (message, class) in [
            ("database is locked", Transience::Contention),
            ("database table is locked", Transience::Contention),
            ("database table is locked: grants", Transience::Contention),
            ("database or disk is full", Transience::Outage),
            ("disk I/O error", Transience::Outage),
        ] {
            let e = unknown(message);
            assert!(e.is_transient(), "{message}");
            let StorageError::Query(q) = &e else {
                unreachable!()
            };
            assert_eq!(transience(q), Some(class), "{message}");
        }
    }

    #[test]
    fn postgres_timeouts_conflicts_and_shutdowns_are_transient() {
        for message in [
            "canceling statement due to lock timeout",
            "could not obtain lock on row in relation \"grants\"",
            "canceling statement due to statement timeout",
            "deadlock detected",
            "terminating connection due to administrator command",
            "the database system is starting up",
            "the database system is shutting down",
        ] {
            assert!(unknown(message).is_transient(), "{message}");
        }
        assert!(
            db(
                DatabaseErrorKind::SerializationFailure,
                "could not serialize access"
            )
            .is_transient()
        );
        assert!(db(DatabaseErrorKind::ClosedConnection, "server closed").is_transient());
    }

    #[test]
    fn a_lost_postgres_connection_is_transient_but_other_send_failures_are_not() {
        for message in [
            "connection closed",
            "error communicating with the server: Connection reset by peer (os error 104)",
            "error connecting to server: Connection refused (os error 111)",
            "timeout waiting for server",
            "channel closed",
        ] {
            assert!(
                db(DatabaseErrorKind::UnableToSendCommand, message).is_transient(),
                "{message}"
            );
        }
        // A panicked blocking task (SQLite's wrapper) is a bug, not an outage.
        assert!(!db(DatabaseErrorKind::UnableToSendCommand, "task 7 panicked").is_transient());
    }

    #[test]
    fn a_failed_commit_or_broken_transaction_follows_its_cause() {
        let commit = |message: &str| {
            StorageError::Query(DieselError::RollbackErrorOnCommit {
                rollback_error: Box::new(DieselError::BrokenTransactionManager),
                commit_error: Box::new(DieselError::DatabaseError(
                    DatabaseErrorKind::Unknown,
                    Box::new(message.to_owned()),
                )),
            })
        };
        assert!(commit("database or disk is full").is_transient());
        assert!(!commit("no such table: grants").is_transient());
        assert!(StorageError::Query(DieselError::BrokenTransactionManager).is_transient());
    }

    #[test]
    fn pool_timeouts_are_transient_and_real_errors_are_not() {
        assert!(
            StorageError::Unavailable("timed out waiting for a connection".into()).is_transient()
        );
        for e in [
            unknown("no such table: grants"),
            unknown("syntax error at or near \"SELEC\""),
            unknown("canceling statement due to user request"),
            unknown("database is locked by a cat"),
            db(
                DatabaseErrorKind::UniqueViolation,
                "UNIQUE constraint failed",
            ),
            db(
                DatabaseErrorKind::ForeignKeyViolation,
                "FOREIGN KEY constraint failed",
            ),
            StorageError::Query(DieselError::NotFound),
            StorageError::Migration("broken".into()),
            StorageError::Connect("password authentication failed".into()),
            StorageError::Url("bad".into()),
        ] {
            assert!(!e.is_transient(), "{e}");
        }
    }
}
