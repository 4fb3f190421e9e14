//! Signing keys of authz: stored sealed in the database, planned by the issuer lifecycle,
//! served from an in-memory [`issuer::KeyRing`] that is swapped atomically when keys change.

mod repo;
mod service;

pub use service::KeyStore;

/// Every stored key as it is in the database (no decryption, no lifecycle step).
pub async fn stored(db: &storage::Database) -> Result<Vec<issuer::KeyRecord>, crate::AuthzError> {
    Ok(repo::all(db).await?)
}
