use std::sync::Arc;

use serde_json::{Map, Value};

use crate::jws::{Signer, Verifiers};
use crate::lifecycle::KeyRecord;
use crate::{Algorithm, IssuerError, Kek, PrivateKey};

struct Slot {
    alg: Algorithm,
    generation: i64,
    activates_at: i64,
    retired_at: Option<i64>,
    signer: Arc<Signer>,
}

/// An immutable snapshot of the signing keys, built when keys change and shared by every
/// request: signers with their private keys already parsed, verifiers for every published
/// key, and the JWKS document already serialised. Nothing here touches the database.
pub struct KeyRing {
    slots: Vec<Slot>,
    verifiers: Verifiers,
    jwks: Arc<[u8]>,
    kids: Vec<String>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("kids", &self.kids)
            .finish_non_exhaustive()
    }
}

impl KeyRing {
    /// A ring without keys (signs nothing, publishes `{"keys":[]}`).
    pub fn empty() -> Self {
        Self {
            slots: Vec::new(),
            verifiers: Verifiers::new(),
            jwks: Arc::from(&br#"{"keys":[]}"#[..]),
            kids: Vec::new(),
        }
    }

    /// Opens every stored key with `kek` and builds the snapshot as of `now`: keys past
    /// `remove_after` are left out. Fails, yielding no keys at all, if any private key does
    /// not decrypt (wrong KEK or tampered row) or does not match its public half.
    pub fn build(records: &[KeyRecord], kek: &Kek, now: i64) -> Result<Self, IssuerError> {
        let mut slots = Vec::new();
        let mut verifiers = Verifiers::new();
        let mut published: Vec<Map<String, Value>> = Vec::new();
        let mut kids = Vec::new();
        let mut sorted: Vec<&KeyRecord> = records.iter().collect();
        sorted.sort_by_key(|r| (r.alg, r.generation));
        for r in sorted {
            if r.remove_after.is_some_and(|t| t <= now) {
                continue;
            }
            let der = kek.open(&r.kid, r.alg, &r.private_key)?;
            let key = PrivateKey::from_pkcs8_der(r.alg, der)?;
            if key.kid() != r.kid {
                return Err(IssuerError::Key(format!(
                    "{}: private key does not match its kid",
                    r.kid
                )));
            }
            verifiers.insert(r.alg, key.public_jwk())?;
            published.push(key.public_jwk().clone());
            kids.push(r.kid.clone());
            slots.push(Slot {
                alg: r.alg,
                generation: r.generation,
                activates_at: r.activates_at,
                retired_at: r.retired_at,
                signer: Arc::new(Signer::new(&key)?),
            });
        }
        let jwks = crate::jwks::document(published.iter())?;
        Ok(Self {
            slots,
            verifiers,
            jwks: jwks.into(),
            kids,
        })
    }

    /// The key that signs `alg` at `now`: the newest activated, not retired key.
    pub fn signer(&self, alg: Algorithm, now: i64) -> Option<Arc<Signer>> {
        self.slots
            .iter()
            .filter(|s| {
                s.alg == alg && s.activates_at <= now && s.retired_at.is_none_or(|r| r > now)
            })
            .max_by_key(|s| (s.activates_at, s.generation))
            .map(|s| Arc::clone(&s.signer))
    }

    /// Verifiers for every published key (to check tokens this server issued).
    pub fn verifiers(&self) -> &Verifiers {
        &self.verifiers
    }

    /// The JWKS document, serialised once per snapshot.
    pub fn jwks(&self) -> Arc<[u8]> {
        Arc::clone(&self.jwks)
    }

    /// Key ids in the snapshot.
    pub fn kids(&self) -> &[String] {
        &self.kids
    }
}
