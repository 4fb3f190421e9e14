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
    /// Telemetry setup problem.
    #[error(transparent)]
    Telemetry(#[from] telemetry::TelemetryError),
}
