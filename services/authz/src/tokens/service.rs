//! The token service: the shared state of issuance, introspection and revocation, and the
//! signing and opaque-secret primitives the authorization code flow builds on. Issuance is
//! in `issue.rs`, introspection in `introspect.rs`, revocation in `revoke.rs`.

use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use issuer::{Algorithm, Clock};
use serde::Serialize;
use storage::{Database, StorageError};
use tracing::instrument;

use super::introspect::VerifiedCache;
use super::repo;
use crate::clients::{Client, Clients};
use crate::error::Failure;
use crate::keys::KeyStore;
use crate::signing::SigningPool;

/// Token issuance, introspection and revocation.
pub struct Tokens {
    pub(super) db: Database,
    pub(super) keys: Arc<KeyStore>,
    /// For introspection: a token is active only while its client is (see
    /// [`Clients::honours`]).
    pub(super) clients: Arc<Clients>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) issuer: String,
    pub(super) default_alg: Algorithm,
    pub(super) signing: SigningPool,
    pub(super) verified: Mutex<VerifiedCache>,
    pub(super) writer: super::writer::OpaqueWriter,
    /// JWT denylist checks, batched on PostgreSQL.
    pub(super) revoked: super::lookups::Coalesced<super::lookups::Revoked>,
    /// Opaque token look-ups, batched on PostgreSQL.
    pub(super) opaque: super::lookups::Coalesced<super::lookups::Opaque>,
}

impl Tokens {
    /// The token service.
    pub fn new(
        db: Database,
        keys: Arc<KeyStore>,
        clients: Arc<Clients>,
        clock: Arc<dyn Clock>,
        signing: SigningPool,
        issuer: String,
        default_alg: Algorithm,
    ) -> Self {
        let writer = super::writer::OpaqueWriter::spawn(db.clone());
        let revoked = super::lookups::Coalesced::spawn(db.clone());
        let opaque = super::lookups::Coalesced::spawn(db.clone());
        Self {
            db,
            keys,
            clients,
            clock,
            issuer,
            default_alg,
            signing,
            verified: Mutex::new(VerifiedCache::default()),
            writer,
            revoked,
            opaque,
        }
    }

    /// A new opaque secret (access token, refresh token, code, challenge, cookie):
    /// [`ORDER_PREFIX_LEN`] hex digits of the issue time in milliseconds, then 256 random
    /// bits (base64url). The prefix is public and only orders storage keys (see
    /// [`lookup_key`]); the random part is what makes the value secret.
    pub(crate) fn opaque_token(&self) -> Result<String, Failure> {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let prefix = format!(
            "{:0width$x}",
            millis & 0xffff_ffff_ffff,
            width = ORDER_PREFIX_LEN
        );
        Ok(prefix + &self.random(32)?)
    }

    /// `bytes` random bytes, base64url (ids and `jti`s).
    pub(crate) fn random(&self, bytes: usize) -> Result<String, Failure> {
        let mut buf = vec![0u8; bytes];
        domain::random::fill(&mut buf).map_err(|_| Failure::internal("no randomness"))?;
        Ok(URL_SAFE_NO_PAD.encode(buf))
    }

    /// Fills `buf` with random bytes (the device grant's user codes).
    pub(crate) fn fill_random(&self, buf: &mut [u8]) -> Result<(), Failure> {
        domain::random::fill(buf).map_err(|_| Failure::internal("no randomness"))
    }

    /// The issuer identifier, as configured.
    pub(crate) fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The current time (Unix seconds) of the clock every token is stamped with.
    pub(crate) fn now(&self) -> i64 {
        self.clock.now()
    }

    /// The algorithm that signs `client`'s tokens.
    pub(crate) fn alg_for(&self, client: &Client) -> Algorithm {
        client.signing_alg.unwrap_or(self.default_alg)
    }

    /// Signs `claims` as a compact JWS with `typ`, with the current key of `alg`. RSA
    /// signatures run on the bounded [`SigningPool`] (they take hundreds of microseconds of
    /// CPU); the others are fast enough to compute here.
    #[instrument(skip_all, fields(alg = %alg))]
    pub(crate) async fn sign<T: Serialize>(
        &self,
        alg: Algorithm,
        typ: &'static str,
        claims: &T,
    ) -> Result<String, Failure> {
        let signer = self
            .keys
            .ring()
            .signer(alg, self.clock.now())
            .ok_or_else(|| Failure::internal(format!("no current {alg} signing key")))?;
        if alg.is_rsa() {
            let payload = serde_json::to_vec(claims).map_err(Failure::internal)?;
            self.signing
                .run(move || signer.sign_jwt_json(typ, &payload))
                .await
                .map_err(Failure::internal)?
                .map_err(Failure::internal)
        } else {
            signer.sign_jwt(typ, claims).map_err(Failure::internal)
        }
    }

    /// Deletes expired opaque tokens and denylist entries.
    pub async fn purge_expired(&self) -> Result<usize, StorageError> {
        repo::purge_expired(&self.db, self.clock.now()).await
    }
}

/// Whether `token` has the shape of a compact JWS (three dot-separated parts).
pub(super) fn looks_like_jwt(token: &str) -> bool {
    token.bytes().filter(|b| *b == b'.').count() == 2
}

/// Hex digits of time at the start of an opaque token.
pub(crate) const ORDER_PREFIX_LEN: usize = 12;

/// The database key of an opaque token: its public time prefix followed by the SHA-256 of
/// the whole token, so only a digest is stored (RFC 6819 §5.1.4.1.3) while keys of new
/// tokens sort after older ones. A burst of issuance then appends to one end of the
/// primary-key index instead of dirtying a random index page per token, which is most of
/// the cost of storing a token. Any string maps to some key; a malformed token simply
/// matches nothing.
/// The successor of refresh token `rotated` under `salt` (a value of
/// [`Tokens::opaque_token`]): the salt's order prefix followed by
/// base64url(HMAC-SHA256(key = `rotated`, message = `salt`)), 32 bytes like every opaque
/// token. Only a holder of `rotated` can compute it, so the database (which keeps the salt
/// and digests, never a token) is not enough to recover the successor.
#[instrument(skip_all)]
pub(crate) fn successor_token(rotated: &str, salt: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, rotated.as_bytes());
    let tag = ring::hmac::sign(&key, salt.as_bytes());
    let prefix = salt.get(..ORDER_PREFIX_LEN).unwrap_or_default();
    prefix.to_owned() + &URL_SAFE_NO_PAD.encode(tag.as_ref())
}

pub(crate) fn lookup_key(token: &str) -> String {
    let prefix = token.get(..ORDER_PREFIX_LEN).unwrap_or_default();
    prefix.to_owned() + &domain::secret::digest_hex(token)
}
