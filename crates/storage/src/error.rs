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
    /// No pooled connection became free within the acquire timeout; maps to 503.
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
}
