//! `/admin/v1/keys`: the signing keys (public halves and lifecycle only; private keys never
//! leave the database, sealed with the key-encryption key).

pub(crate) mod list;
pub(crate) mod retire;
pub(crate) mod rotate;

use issuer::KeyRecord;
use serde::Serialize;
use utoipa::ToSchema;

/// The collection.
pub(crate) const PATH: &str = "/admin/v1/keys";
/// Retiring one key.
pub(crate) const RETIRE_PATH: &str = "/admin/v1/keys/{kid}/retire";

/// A signing key as the admin API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct KeyView {
    /// RFC 7638 thumbprint.
    kid: String,
    /// JWS algorithm.
    alg: String,
    /// Sequence number per algorithm.
    generation: i64,
    /// `next`, `current`, `retired`.
    state: String,
    /// The public JWK.
    #[schema(value_type = Object)]
    public_jwk: serde_json::Value,
    /// Creation time, Unix seconds.
    created_at: i64,
    /// When it starts (or started) signing.
    activates_at: i64,
    /// When it stopped signing.
    retired_at: Option<i64>,
    /// When it leaves the JWKS.
    remove_after: Option<i64>,
}

impl From<&KeyRecord> for KeyView {
    fn from(r: &KeyRecord) -> Self {
        Self {
            kid: r.kid.clone(),
            alg: r.alg.as_str().to_owned(),
            generation: r.generation,
            state: format!("{:?}", r.state).to_lowercase(),
            public_jwk: serde_json::from_str(&r.public_jwk).unwrap_or(serde_json::Value::Null),
            created_at: r.created_at,
            activates_at: r.activates_at,
            retired_at: r.retired_at,
            remove_after: r.remove_after,
        }
    }
}
