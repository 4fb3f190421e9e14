//! The client registry: who may ask for tokens, how they authenticate, what they may get.
//!
//! Secrets are generated with 256 bits of entropy and stored only as SHA-256 digests,
//! compared in constant time. SHA-256 rather than a password hash is deliberate: the
//! secrets are random, not human-chosen, so brute force is hopeless either way, and a slow
//! hash would cap the token endpoint at a few hundred requests per second. Several secrets
//! may be valid at once while a rotation's grace period runs.

// clientauth
pub mod keys;
mod model;
mod repo;
mod service;

// clientauth
pub use keys::{ClientKeys, KeyError, KeySet, VerifiedJws};
pub(crate) use model::generated_id;
pub use model::{Client, NewClient, Secret, TokenExchangePolicy, logout_uri_problem, origin_of};
// clientauth
pub use model::{TlsClientAuthSubject, assertion_algorithms};
pub use service::{AuthContext, ClientAuthError, Clients, Credentials, SeedOutcome};
