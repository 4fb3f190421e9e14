//! The JWKS document (RFC 7517 §5) published at the `jwks_uri`.

use serde_json::{Map, Value};

use crate::IssuerError;

/// Serialises `{"keys":[…]}` from public JWKs, re-filtered to the public members of each
/// key type plus `kid`, `alg` and `use`: private members can never leak, whatever the input.
pub fn document<'a>(
    keys: impl IntoIterator<Item = &'a Map<String, Value>>,
) -> Result<Vec<u8>, IssuerError> {
    let mut out = Vec::new();
    for jwk in keys {
        let mut public = crate::key::public_members(jwk)?;
        for member in ["kid", "alg", "use"] {
            if let Some(v) = jwk.get(member) {
                public.insert(member.to_owned(), v.clone());
            }
        }
        out.push(Value::Object(public));
    }
    serde_json::to_vec(&serde_json::json!({ "keys": out }))
        .map_err(|e| IssuerError::Key(e.to_string()))
}
