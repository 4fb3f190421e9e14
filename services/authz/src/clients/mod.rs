//! The client registry: who may ask for tokens, how they authenticate, what they may get.
//!
//! Secrets are generated with 256 bits of entropy and stored only as SHA-256 digests,
//! compared in constant time. SHA-256 rather than a password hash is deliberate: the
//! secrets are random, not human-chosen, so brute force is hopeless either way, and a slow
//! hash would cap the token endpoint at a few hundred requests per second. Several secrets
//! may be valid at once while a rotation's grace period runs.

mod model;
mod registry;
mod repo;

pub use model::{Client, NewClient, Secret};
pub use registry::{ClientAuthError, Clients, Credentials, SeedOutcome};

/// A generated client id (128 random bits, base64url).
pub(crate) fn generated_id() -> Result<String, crate::AuthzError> {
    model::random_id().map_err(|_| crate::AuthzError::Task("no randomness available".into()))
}
