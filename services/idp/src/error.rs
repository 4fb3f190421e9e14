//! The idp error type.

/// Everything that can stop idp from starting or serving.
#[derive(Debug, thiserror::Error)]
pub enum IdpError {
    /// Database problem.
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    /// Listener or server problem.
    #[error(transparent)]
    Runtime(#[from] runtime::RuntimeError),
    /// A request or command argument is invalid.
    #[error("{0}")]
    Invalid(String),
    /// Something asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The operation conflicts with stored state.
    #[error("{0}")]
    Conflict(String),
    /// The request is refused (a missing or wrong CSRF token, a foreign session).
    #[error("{0}")]
    Forbidden(String),
    /// The login or consent request has expired or was already completed.
    #[error("{0}")]
    Gone(String),
    /// authz cannot be reached or did not answer in time.
    #[error("authz unavailable: {0}")]
    Unavailable(String),
    /// authz refused a call it should have accepted (credentials, contract).
    #[error("authz refused the call: {0}")]
    Upstream(String),
    /// Too much work queued (the password hashing queue is full): try again shortly.
    #[error("busy: {0}")]
    Busy(String),
    /// A background task failed.
    #[error("task failed: {0}")]
    Task(String),
    /// Invalid configuration found at run time.
    #[error("config error: {0}")]
    Config(#[from] config::ConfigError),
    /// The page needs a signed-in user.
    #[error("{0}")]
    Unauthenticated(String),
    /// Sign-in through an upstream identity provider failed; the message is safe to show.
    #[error("upstream sign-in failed: {0}")]
    Federation(String),
    /// Telemetry setup problem.
    #[error(transparent)]
    Telemetry(#[from] telemetry::TelemetryError),
}
