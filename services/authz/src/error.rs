//! The authz error types: [`AuthzError`] for start-up and commands, [`Failure`] for what
//! breaks below a request.

/// Everything that can stop authz from starting or serving.
#[derive(Debug, thiserror::Error)]
pub enum AuthzError {
    /// Database problem.
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    /// Listener or server problem.
    #[error(transparent)]
    Runtime(#[from] runtime::RuntimeError),
    /// Invalid configuration found at run time.
    #[error("config error: {0}")]
    Config(#[from] config::ConfigError),
    /// Key handling problem (including a key-encryption key that opens no key).
    #[error("signing keys: {0}")]
    Keys(#[from] issuer::IssuerError),
    /// Something asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The operation conflicts with the stored state.
    #[error("{0}")]
    Conflict(String),
    /// A request or command argument is invalid.
    #[error("{0}")]
    Invalid(String),
    /// A background task failed.
    #[error("task failed: {0}")]
    Task(String),
    /// Telemetry setup problem.
    #[error(transparent)]
    Telemetry(#[from] telemetry::TelemetryError),
}

/// Why a request could not be served that is not the caller's doing: the database or idp
/// failed, or something broke inside authz. Services return it inside their own error
/// enums; only the edges (`http/`, `grpc/`) turn it into a response, through
/// [`Failure::is_transient`], and log its cause there, once.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    /// The database failed (shared, because the opaque-token writer answers a whole batch
    /// with one error).
    #[error(transparent)]
    Storage(std::sync::Arc<storage::StorageError>),
    /// idp's `Sessions` API failed (see `impl From<IdpError> for Failure` in the idp
    /// client module).
    #[error(transparent)]
    Idp(crate::idp::IdpError),
    /// A bug or a broken environment: no randomness, no signing key, a stored value that
    /// does not parse.
    #[error("{0}")]
    Internal(String),
}

impl Failure {
    /// An internal failure described by `cause` (logged at the edge, never sent).
    pub(crate) fn internal(cause: impl std::fmt::Display) -> Self {
        Self::Internal(cause.to_string())
    }

    /// Whether trying again shortly may work: the database is busy, locked, full or cannot
    /// be reached ([`storage::StorageError::is_transient`], the storage crate's one
    /// classification), or idp did not answer in time. The edges answer those with 503 and `Retry-After` (HTTP, RFC 9110 §15.6.4),
    /// `temporarily_unavailable` (RFC 6749 §4.1.2.1) or `UNAVAILABLE` (gRPC), everything
    /// else as an internal error. This is the only place the rule is written.
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            Self::Storage(e) => e.is_transient(),
            Self::Idp(e) => matches!(e, crate::idp::IdpError::Unavailable(_)),
            Self::Internal(_) => false,
        }
    }
}

impl From<storage::StorageError> for Failure {
    fn from(e: storage::StorageError) -> Self {
        Self::Storage(std::sync::Arc::new(e))
    }
}

impl From<std::sync::Arc<storage::StorageError>> for Failure {
    fn from(e: std::sync::Arc<storage::StorageError>) -> Self {
        Self::Storage(e)
    }
}

#[cfg(test)]
mod tests {
    use super::Failure;
    use crate::idp::IdpError;
    use storage::StorageError;

    #[test]
    fn only_a_busy_database_or_an_unreachable_idp_is_transient() {
        assert!(Failure::from(StorageError::Unavailable("pool timed out".into())).is_transient());
        let query = |message: &str| {
            Failure::from(StorageError::Query(
                storage::diesel::result::Error::DatabaseError(
                    storage::diesel::result::DatabaseErrorKind::Unknown,
                    Box::new(message.to_owned()),
                ),
            ))
        };
        assert!(query("database is locked").is_transient());
        assert!(query("database or disk is full").is_transient());
        assert!(query("canceling statement due to lock timeout").is_transient());
        assert!(!query("no such table: grants").is_transient());
        assert!(Failure::from(IdpError::Unavailable("deadline".into())).is_transient());
        assert!(!Failure::from(StorageError::Migration("broken".into())).is_transient());
        assert!(!Failure::from(IdpError::Failed("refused".into())).is_transient());
        assert!(!Failure::from(IdpError::UserGone).is_transient());
        assert!(!Failure::internal("no randomness").is_transient());
    }
}
