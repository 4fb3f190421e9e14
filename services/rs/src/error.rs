//! The rs error type.

/// Everything that can stop rs from starting or serving.
#[derive(Debug, thiserror::Error)]
pub enum RsError {
    /// Listener or server problem.
    #[error(transparent)]
    Runtime(#[from] runtime::RuntimeError),
}
