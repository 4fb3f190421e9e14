//! Public keys for verifying JWS signatures, on `ring` alone: RS256 and PS256 (RFC 7518
//! §3.3, §3.5), ES256 (RFC 7518 §3.4) and EdDSA with Ed25519 (RFC 8037 §3.1).
//!
//! Verification needs no OpenSSL: a resource server that only checks tokens (the `guard`
//! crate) links none of it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{self, RsaParameters, RsaPublicKeyComponents, VerificationAlgorithm};
use serde_json::{Map, Value};

use crate::{Algorithm, IssuerError};

/// RSA moduli from 2048 bits (RFC 7518 §3.3 and §3.5: "A key of size 2048 bits or larger
/// MUST be used") to 8192 bits, the range `ring` verifies.
const RSA_MODULUS_BYTES: std::ops::RangeInclusive<usize> = 256..=1024;

/// A public key bound to one [`Algorithm`], decoded from a JWK once.
///
/// Built only from a JWK whose `kty` (and `crv`) fit the algorithm and whose `alg`, `use`
/// and `key_ops` members, when present, allow verifying with it (RFC 7517 §4.2–4.4).
#[derive(Clone)]
pub struct PublicKey {
    alg: Algorithm,
    material: Material,
}

/// The key in the form `ring` verifies with, together with the `ring` algorithm that
/// `alg` names, so a key can only ever be used with its own algorithm.
#[derive(Clone)]
enum Material {
    /// RS256 or PS256: big-endian modulus and exponent, without leading zero octets.
    Rsa {
        scheme: &'static RsaParameters,
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// ES256: the uncompressed SEC1 point `04 || x || y`; EdDSA: the 32-octet key.
    Raw {
        scheme: &'static dyn VerificationAlgorithm,
        key: Vec<u8>,
    },
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKey")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

fn refuse(reason: impl Into<String>) -> IssuerError {
    IssuerError::Key(reason.into())
}

impl PublicKey {
    /// The public part of `jwk` for verifying `alg` signatures. Private members (`d`, …)
    /// are ignored.
    pub fn from_jwk(alg: Algorithm, jwk: &Map<String, Value>) -> Result<Self, IssuerError> {
        let text = |name: &str| jwk.get(name).and_then(Value::as_str);
        if let Some(declared) = text("alg").filter(|a| *a != alg.as_str()) {
            return Err(refuse(format!("JWK is for {declared}, not {alg}")));
        }
        if text("use").is_some_and(|u| u != "sig") {
            return Err(refuse("JWK is not for signatures (use)"));
        }
        if let Some(ops) = jwk.get("key_ops") {
            let verifies = ops
                .as_array()
                .is_some_and(|ops| ops.iter().any(|op| op.as_str() == Some("verify")));
            if !verifies {
                return Err(refuse("JWK key_ops do not include verify"));
            }
        }
        let member = |name: &str| {
            let value = text(name).ok_or_else(|| refuse(format!("JWK lacks {name}")))?;
            URL_SAFE_NO_PAD
                .decode(value)
                .map_err(|_| refuse(format!("JWK {name} is not base64url")))
        };
        let kty = text("kty").unwrap_or_default();
        let crv = text("crv").unwrap_or_default();
        let material = match (alg, kty, crv) {
            (Algorithm::RS256 | Algorithm::PS256, "RSA", _) => {
                let n = without_leading_zeros(member("n")?);
                let e = without_leading_zeros(member("e")?);
                if !RSA_MODULUS_BYTES.contains(&n.len()) {
                    return Err(refuse(format!(
                        "RSA modulus of {} bits (2048 to 8192 required)",
                        n.len() * 8
                    )));
                }
                if e.is_empty() || e.len() > 4 {
                    return Err(refuse("RSA exponent out of range"));
                }
                let scheme = if alg == Algorithm::RS256 {
                    &signature::RSA_PKCS1_2048_8192_SHA256
                } else {
                    &signature::RSA_PSS_2048_8192_SHA256
                };
                Material::Rsa { scheme, n, e }
            }
            (Algorithm::ES256, "EC", "P-256") => {
                let (x, y) = (member("x")?, member("y")?);
                if x.len() != 32 || y.len() != 32 {
                    return Err(refuse("P-256 coordinates must be 32 octets"));
                }
                let mut point = Vec::with_capacity(65);
                point.push(0x04);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                Material::Raw {
                    scheme: &signature::ECDSA_P256_SHA256_FIXED,
                    key: point,
                }
            }
            (Algorithm::EdDSA, "OKP", "Ed25519") => {
                let x = member("x")?;
                if x.len() != 32 {
                    return Err(refuse("Ed25519 key must be 32 octets"));
                }
                Material::Raw {
                    scheme: &signature::ED25519,
                    key: x,
                }
            }
            _ => {
                return Err(refuse(format!(
                    "a {kty} key{} cannot verify {alg}",
                    if crv.is_empty() {
                        String::new()
                    } else {
                        format!(" on {crv}")
                    }
                )));
            }
        };
        Ok(Self { alg, material })
    }

    /// The algorithm this key verifies.
    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// Whether `signature` is this key's `alg` signature of `message` (for ES256 the
    /// 64-octet `R || S` of RFC 7518 §3.4, not DER). An invalid point or key never
    /// verifies.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match &self.material {
            Material::Rsa { scheme, n, e } => RsaPublicKeyComponents { n, e }
                .verify(scheme, message, signature)
                .is_ok(),
            Material::Raw { scheme, key } => signature::UnparsedPublicKey::new(*scheme, key)
                .verify(message, signature)
                .is_ok(),
        }
    }
}

/// RFC 7518 §6.3.1.1 forbids leading zero octets in `n`, yet some libraries write them
/// (a sign octet); the value is the same without them.
fn without_leading_zeros(mut bytes: Vec<u8>) -> Vec<u8> {
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    bytes.drain(..zeros);
    bytes
}

#[cfg(test)]
mod tests {
    use josekit::jwk::alg::rsa::RsaKeyPair;

    use super::*;
    use crate::PrivateKey;

    fn public(alg: Algorithm) -> (PrivateKey, Map<String, Value>) {
        let key = PrivateKey::generate(alg, 2048).unwrap();
        let jwk = key.public_jwk().clone();
        (key, jwk)
    }

    #[test]
    fn verifies_what_josekit_signs_for_every_algorithm() {
        for alg in Algorithm::ALL {
            let (key, jwk) = public(alg);
            let signer = key.signer().unwrap();
            let signature = signer.sign(b"message").unwrap();
            let public = PublicKey::from_jwk(alg, &jwk).unwrap();
            assert!(public.verify(b"message", &signature), "{alg}");
            assert!(!public.verify(b"massage", &signature), "{alg}");
            let mut flipped = signature.clone();
            flipped[0] ^= 1;
            assert!(!public.verify(b"message", &flipped), "{alg}");
        }
    }

    #[test]
    fn a_key_is_refused_for_another_algorithm_or_use() {
        let (_, rsa) = public(Algorithm::RS256);
        let (_, ec) = public(Algorithm::ES256);
        let (_, ed) = public(Algorithm::EdDSA);
        assert!(PublicKey::from_jwk(Algorithm::ES256, &rsa).is_err());
        assert!(PublicKey::from_jwk(Algorithm::RS256, &ec).is_err());
        assert!(PublicKey::from_jwk(Algorithm::ES256, &ed).is_err());
        assert!(PublicKey::from_jwk(Algorithm::EdDSA, &ec).is_err());
        let with = |jwk: &Map<String, Value>, name: &str, value: Value| {
            let mut jwk = jwk.clone();
            jwk.insert(name.into(), value);
            jwk
        };
        assert!(PublicKey::from_jwk(Algorithm::PS256, &with(&rsa, "alg", "RS256".into())).is_err());
        assert!(PublicKey::from_jwk(Algorithm::RS256, &with(&rsa, "alg", "RS256".into())).is_ok());
        assert!(PublicKey::from_jwk(Algorithm::RS256, &with(&rsa, "use", "enc".into())).is_err());
        let sign_only = serde_json::json!(["sign"]);
        assert!(PublicKey::from_jwk(Algorithm::RS256, &with(&rsa, "key_ops", sign_only)).is_err());
        let verify = serde_json::json!(["verify"]);
        assert!(PublicKey::from_jwk(Algorithm::RS256, &with(&rsa, "key_ops", verify)).is_ok());
        let mut off_curve = ec.clone();
        off_curve.insert("crv".into(), "P-384".into());
        assert!(PublicKey::from_jwk(Algorithm::ES256, &off_curve).is_err());
    }

    #[test]
    fn rsa_keys_below_2048_bits_are_refused() {
        let small = RsaKeyPair::generate(1024).unwrap().to_jwk_public_key();
        let jwk = small.as_ref().clone();
        assert!(PublicKey::from_jwk(Algorithm::RS256, &jwk).is_err());
    }

    #[test]
    fn a_modulus_written_with_a_leading_zero_still_verifies() {
        let (key, mut jwk) = public(Algorithm::RS256);
        let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
        let padded = [&[0u8][..], &n].concat();
        jwk.insert("n".into(), URL_SAFE_NO_PAD.encode(padded).into());
        let signature = key.signer().unwrap().sign(b"m").unwrap();
        assert!(
            PublicKey::from_jwk(Algorithm::RS256, &jwk)
                .unwrap()
                .verify(b"m", &signature)
        );
    }
}
