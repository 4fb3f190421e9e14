//! Compact JWS / JWT signing and verification (RFC 7515, RFC 7519), hardened per RFC 8725:
//!
//! - the algorithm comes from an explicit allowlist ([`Algorithm`]); `none` and HMAC are
//!   rejected because they are not representable;
//! - `kid` is required and must name a known key, and the key's algorithm must equal the
//!   header's `alg`, so no key is ever used with another algorithm (no RSA-public-key-as-
//!   HMAC-secret confusion);
//! - `crit` extensions are not supported and rejected (RFC 7515 §4.1.11);
//! - `typ` is compared where the caller expects one (`at+jwt`, RFC 9068 §4), ignoring case
//!   and an `application/` prefix (RFC 7515 §4.1.9).

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jws::JwsSigner;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::{Algorithm, IssuerError, PublicKey};

/// A ready-to-use signing key: algorithm, kid and the parsed private key.
pub struct Signer {
    kid: String,
    alg: Algorithm,
    inner: Box<dyn JwsSigner>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// Builds the signer of `key` (parses the private key once).
    pub fn new(key: &crate::PrivateKey) -> Result<Self, IssuerError> {
        Ok(Self {
            kid: key.kid().to_owned(),
            alg: key.alg(),
            inner: key.signer()?,
        })
    }

    /// The key id put in every header.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm.
    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// Signs `claims` as a compact JWS with header `{"alg","kid","typ"}`.
    ///
    /// RSA signatures take about a millisecond of CPU: call this from a blocking pool or a
    /// bounded worker, not directly on an async executor thread.
    pub fn sign_jwt<T: Serialize>(&self, typ: &str, claims: &T) -> Result<String, IssuerError> {
        let payload = serde_json::to_vec(claims).map_err(|e| IssuerError::Sign(e.to_string()))?;
        self.sign_jwt_json(typ, &payload)
    }

    /// [`Signer::sign_jwt`] for claims already serialised as a JSON object (so a caller
    /// that moves the work to another thread serialises only once).
    pub fn sign_jwt_json(&self, typ: &str, payload: &[u8]) -> Result<String, IssuerError> {
        let header = serde_json::json!({ "alg": self.alg.as_str(), "kid": self.kid, "typ": typ });
        let header = serde_json::to_vec(&header).map_err(|e| IssuerError::Sign(e.to_string()))?;
        let mut token = String::with_capacity((header.len() + payload.len()) * 4 / 3 + 400);
        URL_SAFE_NO_PAD.encode_string(&header, &mut token);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(payload, &mut token);
        let signature = self
            .inner
            .sign(token.as_bytes())
            .map_err(|e| IssuerError::Sign(e.to_string()))?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut token);
        Ok(token)
    }
}

/// Public keys by `kid`, each bound to its algorithm and decoded once when added
/// ([`PublicKey`], on `ring`).
#[derive(Default)]
pub struct Verifiers {
    by_kid: HashMap<String, PublicKey>,
}

impl std::fmt::Debug for Verifiers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.by_kid.keys()).finish()
    }
}

impl Verifiers {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the public JWK `jwk` (its `kid` member names it) for `alg`.
    pub fn insert(&mut self, alg: Algorithm, jwk: &Map<String, Value>) -> Result<(), IssuerError> {
        let kid = jwk
            .get("kid")
            .and_then(Value::as_str)
            .ok_or_else(|| IssuerError::Key("JWK without kid".into()))?
            .to_owned();
        self.by_kid.insert(kid, PublicKey::from_jwk(alg, jwk)?);
        Ok(())
    }

    /// Adds every key of a JWKS document (`{"keys":[…]}`) that has a `kid` and a supported
    /// `alg`; other keys are skipped. Returns how many were added.
    pub fn extend_from_jwks(&mut self, jwks: &Value) -> usize {
        let mut added = 0;
        for key in jwks
            .get("keys")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(obj) = key.as_object() else { continue };
            let Some(alg) = obj
                .get("alg")
                .and_then(Value::as_str)
                .and_then(|a| a.parse::<Algorithm>().ok())
            else {
                continue;
            };
            if obj
                .get("use")
                .and_then(Value::as_str)
                .is_some_and(|u| u != "sig")
            {
                continue;
            }
            if self.insert(alg, obj).is_ok() {
                added += 1;
            }
        }
        added
    }
}

/// What a verifier insists on besides a valid signature.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    /// Algorithms accepted for this kind of token.
    pub algorithms: &'a [Algorithm],
    /// Required `typ` header (compared case-insensitively, `application/` optional), or
    /// `None` to accept any.
    pub typ: Option<&'a str>,
}

/// Why a token was refused. The messages are safe to show to the token's presenter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Not three base64url parts with JSON header and payload objects.
    #[error("malformed token")]
    Malformed,
    /// `alg` is missing, `none`, HMAC or otherwise not allowed here.
    #[error("algorithm not allowed")]
    AlgorithmNotAllowed,
    /// The header has no `kid`.
    #[error("missing key id")]
    MissingKid,
    /// `kid` names no known key.
    #[error("unknown key id")]
    UnknownKid,
    /// The key exists but belongs to another algorithm.
    #[error("key does not match the algorithm")]
    KeyAlgorithmMismatch,
    /// The signature does not verify.
    #[error("invalid signature")]
    BadSignature,
    /// `typ` differs from what this kind of token requires.
    #[error("wrong token type")]
    WrongType,
    /// A `crit` header asks for an extension this verifier does not understand.
    #[error("unsupported critical header")]
    UnsupportedCritical,
}

/// A verified token.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The protected header.
    pub header: Map<String, Value>,
    /// The claims.
    pub claims: Map<String, Value>,
}

/// Verifies a compact JWS/JWT against `keys` and `expect`.
pub fn verify(token: &str, keys: &Verifiers, expect: &Expect<'_>) -> Result<Verified, VerifyError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(VerifyError::Malformed);
    };
    let header = decode_object(h)?;
    let alg: Algorithm = header
        .get("alg")
        .and_then(Value::as_str)
        .and_then(|a| a.parse().ok())
        .ok_or(VerifyError::AlgorithmNotAllowed)?;
    if !expect.algorithms.contains(&alg) {
        return Err(VerifyError::AlgorithmNotAllowed);
    }
    if header.contains_key("crit") {
        return Err(VerifyError::UnsupportedCritical);
    }
    let kid = header
        .get("kid")
        .and_then(Value::as_str)
        .ok_or(VerifyError::MissingKid)?;
    let key = keys.by_kid.get(kid).ok_or(VerifyError::UnknownKid)?;
    if key.alg() != alg {
        return Err(VerifyError::KeyAlgorithmMismatch);
    }
    let signature = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| VerifyError::Malformed)?;
    let signing_input = &token[..h.len() + 1 + p.len()];
    if !key.verify(signing_input.as_bytes(), &signature) {
        return Err(VerifyError::BadSignature);
    }
    if let Some(required) = expect.typ {
        let typ = header
            .get("typ")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !same_media_type(typ, required) {
            return Err(VerifyError::WrongType);
        }
    }
    let claims = decode_object(p)?;
    Ok(Verified { header, claims })
}

fn same_media_type(actual: &str, required: &str) -> bool {
    fn strip(s: &str) -> &str {
        if s.len() > 12 && s[..12].eq_ignore_ascii_case("application/") {
            &s[12..]
        } else {
            s
        }
    }
    strip(actual).eq_ignore_ascii_case(strip(required))
}

fn decode_object(part: &str) -> Result<Map<String, Value>, VerifyError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| VerifyError::Malformed)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(VerifyError::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PrivateKey;

    fn setup(alg: Algorithm) -> (Signer, Verifiers) {
        let key = PrivateKey::generate(alg, 2048).unwrap();
        let mut v = Verifiers::new();
        v.insert(alg, key.public_jwk()).unwrap();
        (Signer::new(&key).unwrap(), v)
    }

    const ALL: Expect<'static> = Expect {
        algorithms: &Algorithm::ALL,
        typ: Some("at+jwt"),
    };

    fn forge(header: &Value, payload: &Value, sig: &[u8]) -> String {
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(header).unwrap()),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(payload).unwrap()),
            URL_SAFE_NO_PAD.encode(sig)
        )
    }

    #[test]
    fn signs_and_verifies_every_algorithm() {
        for alg in Algorithm::ALL {
            let (signer, keys) = setup(alg);
            let token = signer
                .sign_jwt("at+jwt", &serde_json::json!({"sub": "x"}))
                .unwrap();
            let v = verify(&token, &keys, &ALL).unwrap();
            assert_eq!(v.claims["sub"], "x");
            assert_eq!(v.header["kid"], signer.kid());
            assert_eq!(
                verify(
                    &token,
                    &keys,
                    &Expect {
                        algorithms: &[],
                        typ: None
                    }
                )
                .unwrap_err(),
                VerifyError::AlgorithmNotAllowed
            );
        }
    }

    #[test]
    fn none_and_hmac_are_rejected() {
        let (signer, keys) = setup(Algorithm::RS256);
        for alg in ["none", "HS256", "HS512", "RS384"] {
            let t = forge(
                &serde_json::json!({"alg": alg, "kid": signer.kid(), "typ": "at+jwt"}),
                &serde_json::json!({"sub": "x"}),
                b"",
            );
            assert_eq!(
                verify(&t, &keys, &ALL).unwrap_err(),
                VerifyError::AlgorithmNotAllowed,
                "{alg}"
            );
        }
    }

    #[test]
    fn hmac_with_the_public_key_as_secret_is_rejected() {
        let key = PrivateKey::generate(Algorithm::RS256, 2048).unwrap();
        let mut keys = Verifiers::new();
        keys.insert(Algorithm::RS256, key.public_jwk()).unwrap();
        let secret = serde_json::to_vec(key.public_jwk()).unwrap();
        let hmac = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret);
        let header = serde_json::json!({"alg": "HS256", "kid": key.kid(), "typ": "at+jwt"});
        let body = serde_json::json!({"sub": "admin"});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap()),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&body).unwrap())
        );
        let sig = ring::hmac::sign(&hmac, input.as_bytes());
        let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()));
        assert_eq!(
            verify(&token, &keys, &ALL).unwrap_err(),
            VerifyError::AlgorithmNotAllowed
        );
    }

    #[test]
    fn key_of_another_algorithm_is_refused() {
        let rsa = PrivateKey::generate(Algorithm::RS256, 2048).unwrap();
        let mut keys = Verifiers::new();
        keys.insert(Algorithm::RS256, rsa.public_jwk()).unwrap();
        // Same RSA key, but the token claims PS256.
        let ps = PrivateKey::from_pkcs8_der(Algorithm::PS256, rsa.pkcs8_der().to_vec()).unwrap();
        let token = Signer::new(&ps)
            .unwrap()
            .sign_jwt("at+jwt", &serde_json::json!({}))
            .unwrap();
        assert_eq!(
            verify(&token, &keys, &ALL).unwrap_err(),
            VerifyError::KeyAlgorithmMismatch
        );
    }

    #[test]
    fn kid_typ_tampering_and_shape() {
        let (signer, keys) = setup(Algorithm::ES256);
        let token = signer
            .sign_jwt("at+jwt", &serde_json::json!({"sub": "x"}))
            .unwrap();
        // Case and application/ prefix do not matter.
        let expect = Expect {
            algorithms: &[Algorithm::ES256],
            typ: Some("application/AT+JWT"),
        };
        assert!(verify(&token, &keys, &expect).is_ok());
        let expect = Expect {
            algorithms: &[Algorithm::ES256],
            typ: Some("JWT"),
        };
        assert_eq!(
            verify(&token, &keys, &expect).unwrap_err(),
            VerifyError::WrongType
        );

        let no_kid = forge(
            &serde_json::json!({"alg": "ES256"}),
            &serde_json::json!({}),
            b"x",
        );
        assert_eq!(
            verify(&no_kid, &keys, &ALL).unwrap_err(),
            VerifyError::MissingKid
        );
        let other_kid = forge(
            &serde_json::json!({"alg": "ES256", "kid": "nope"}),
            &serde_json::json!({}),
            b"x",
        );
        assert_eq!(
            verify(&other_kid, &keys, &ALL).unwrap_err(),
            VerifyError::UnknownKid
        );
        let crit = forge(
            &serde_json::json!({"alg": "ES256", "kid": signer.kid(), "crit": ["exp"]}),
            &serde_json::json!({}),
            b"x",
        );
        assert_eq!(
            verify(&crit, &keys, &ALL).unwrap_err(),
            VerifyError::UnsupportedCritical
        );

        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[1] = URL_SAFE_NO_PAD.encode(br#"{"sub":"admin"}"#);
        assert_eq!(
            verify(&parts.join("."), &keys, &ALL).unwrap_err(),
            VerifyError::BadSignature
        );
        for bad in [
            "",
            "a.b",
            "a.b.c.d",
            "!!.x.y",
            &format!("{}.!!.x", token.split('.').next().unwrap()),
        ] {
            assert!(verify(bad, &keys, &ALL).is_err(), "{bad}");
        }
    }
}
