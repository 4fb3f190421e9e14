//! Signing keys of authz: stored sealed in the database, planned by the issuer lifecycle,
//! served from an in-memory [`issuer::KeyRing`] that is swapped atomically when keys change.

mod repo;
mod service;

pub use service::{KeyStore, stored};
