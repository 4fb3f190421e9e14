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
    /// Telemetry setup problem.
    #[error(transparent)]
    Telemetry(#[from] telemetry::TelemetryError),
}
