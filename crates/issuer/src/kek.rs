use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

use crate::{Algorithm, IssuerError};

/// The key-encryption key: AES-256-GCM over every private signing key stored in the
/// database.
///
/// A sealed key is `base64(nonce ‖ ciphertext ‖ tag)` with a fresh random 96-bit nonce, and
/// the key id and algorithm as additional authenticated data, so a ciphertext moved to
/// another row, altered in any bit, or opened with another KEK fails to open.
pub struct Kek {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek([redacted])")
    }
}

impl Kek {
    /// Parses 32 bytes given in standard base64 (surrounding whitespace ignored).
    pub fn from_base64(encoded: &str) -> Result<Self, IssuerError> {
        let bytes = STANDARD
            .decode(encoded.trim())
            .map_err(|_| IssuerError::Kek("must be base64".into()))?;
        Self::from_bytes(&bytes)
    }

    /// Uses 32 raw bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, IssuerError> {
        if bytes.len() != 32 {
            return Err(IssuerError::Kek(format!(
                "must be 32 bytes (base64 of 32 random bytes), got {}",
                bytes.len()
            )));
        }
        let key = UnboundKey::new(&AES_256_GCM, bytes)
            .map_err(|_| IssuerError::Kek("unusable AES-256 key".into()))?;
        Ok(Self {
            key: LessSafeKey::new(key),
            rng: SystemRandom::new(),
        })
    }

    /// 32 fresh random bytes, base64: a new key-encryption key.
    pub fn generate_base64() -> Result<String, IssuerError> {
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| IssuerError::Kek("no randomness available".into()))?;
        Ok(STANDARD.encode(bytes))
    }

    /// Encrypts `plaintext` (a private key) for the row of `kid`/`alg`.
    pub fn seal(&self, kid: &str, alg: Algorithm, plaintext: &[u8]) -> Result<String, IssuerError> {
        self.seal_aad(&aad(kid, alg), plaintext)
    }

    /// Encrypts another kind of secret (a client secret that must stay recoverable, for
    /// `client_secret_jwt`) bound to `context` (which names the row it belongs to), in a
    /// domain separate from the signing keys: it opens only with [`Kek::open_secret`] and
    /// the same context.
    pub fn seal_secret(&self, context: &str, plaintext: &[u8]) -> Result<String, IssuerError> {
        self.seal_aad(&secret_aad(context), plaintext)
    }

    /// Decrypts what [`Kek::seal_secret`] produced for `context`; anything else gives
    /// [`IssuerError::Decrypt`] naming the context and no bytes.
    pub fn open_secret(&self, context: &str, sealed: &str) -> Result<Vec<u8>, IssuerError> {
        self.open_aad(context, &secret_aad(context), sealed)
    }

    fn seal_aad(&self, aad: &[u8], plaintext: &[u8]) -> Result<String, IssuerError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| IssuerError::Kek("no randomness available".into()))?;
        let mut buf = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut buf,
            )
            .map_err(|_| IssuerError::Kek("encryption failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(STANDARD.encode(out))
    }

    /// Decrypts what [`Kek::seal`] produced for the same `kid`/`alg`; any tampering, a
    /// different row or a different KEK gives [`IssuerError::Decrypt`] and no bytes.
    pub fn open(&self, kid: &str, alg: Algorithm, sealed: &str) -> Result<Vec<u8>, IssuerError> {
        self.open_aad(kid, &aad(kid, alg), sealed)
    }

    fn open_aad(&self, kid: &str, aad: &[u8], sealed: &str) -> Result<Vec<u8>, IssuerError> {
        let fail = || IssuerError::Decrypt {
            kid: kid.to_owned(),
        };
        let raw = STANDARD.decode(sealed).map_err(|_| fail())?;
        if raw.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(fail());
        }
        let (nonce, ciphertext) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| fail())?;
        let mut buf = ciphertext.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(aad), &mut buf)
            .map_err(|_| fail())?;
        Ok(plain.to_vec())
    }
}

fn aad(kid: &str, alg: Algorithm) -> Vec<u8> {
    format!("signing-key:{alg}:{kid}").into_bytes()
}

fn secret_aad(context: &str) -> Vec<u8> {
    format!("secret:{context}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kek() -> Kek {
        Kek::from_base64(&Kek::generate_base64().unwrap()).unwrap()
    }

    #[test]
    fn round_trip() {
        let k = kek();
        let sealed = k
            .seal("kid1", Algorithm::ES256, b"secret key bytes")
            .unwrap();
        assert_eq!(
            k.open("kid1", Algorithm::ES256, &sealed).unwrap(),
            b"secret key bytes"
        );
    }

    #[test]
    fn secrets_open_only_in_their_context() {
        let k = kek();
        let sealed = k.seal_secret("client:a:s1", b"shared secret").unwrap();
        assert_eq!(
            k.open_secret("client:a:s1", &sealed).unwrap(),
            b"shared secret"
        );
        assert!(k.open_secret("client:b:s1", &sealed).is_err(), "other row");
        assert!(
            k.open("client:a:s1", Algorithm::RS256, &sealed).is_err(),
            "signing-key domain"
        );
        assert!(
            kek().open_secret("client:a:s1", &sealed).is_err(),
            "other KEK"
        );
    }

    #[test]
    fn every_tampering_is_detected() {
        let k = kek();
        let sealed = k
            .seal("kid1", Algorithm::ES256, b"secret key bytes")
            .unwrap();
        let raw = STANDARD.decode(&sealed).unwrap();
        for i in 0..raw.len() {
            let mut t = raw.clone();
            t[i] ^= 0x01;
            let err = k
                .open("kid1", Algorithm::ES256, &STANDARD.encode(&t))
                .unwrap_err();
            assert!(matches!(err, IssuerError::Decrypt { .. }), "byte {i}");
        }
        assert!(
            k.open("kid2", Algorithm::ES256, &sealed).is_err(),
            "other row"
        );
        assert!(
            k.open("kid1", Algorithm::RS256, &sealed).is_err(),
            "other alg"
        );
        assert!(
            k.open("kid1", Algorithm::ES256, "AAAA").is_err(),
            "truncated"
        );
        assert!(
            k.open("kid1", Algorithm::ES256, "!!").is_err(),
            "not base64"
        );
    }

    #[test]
    fn wrong_kek_is_detected() {
        let sealed = kek().seal("kid1", Algorithm::EdDSA, b"k").unwrap();
        assert!(matches!(
            kek().open("kid1", Algorithm::EdDSA, &sealed),
            Err(IssuerError::Decrypt { .. })
        ));
    }

    #[test]
    fn kek_must_be_32_bytes_of_base64() {
        assert!(Kek::from_base64("not base64!").is_err());
        assert!(Kek::from_base64(&STANDARD.encode([0u8; 16])).is_err());
        assert!(Kek::from_base64(&format!(" {}\n", STANDARD.encode([7u8; 32]))).is_ok());
    }
}
