//! The authz error type.

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
