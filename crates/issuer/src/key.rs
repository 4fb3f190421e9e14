use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use josekit::jwk::alg::ec::{EcCurve, EcKeyPair};
use josekit::jwk::alg::ed::{EdCurve, EdKeyPair};
use josekit::jwk::alg::rsa::RsaKeyPair;
use josekit::jwk::{Jwk, KeyPair};
use josekit::jws::JwsSigner;
use serde_json::{Map, Value};

use crate::{Algorithm, IssuerError};

/// Public JWK members kept per key type; everything else (`d`, `p`, `q`, `dp`, `dq`, `qi`,
/// `k`, `oth`, …) is dropped before a key is ever published.
const PUBLIC_MEMBERS: &[(&str, &[&str])] = &[
    ("RSA", &["kty", "n", "e"]),
    ("EC", &["kty", "crv", "x", "y"]),
    ("OKP", &["kty", "crv", "x"]),
];

/// A private signing key for one [`Algorithm`], held as PKCS#8 DER (zeroed on drop).
///
/// Its `kid` is the RFC 7638 JWK SHA-256 thumbprint of the public key, so the same key
/// always has the same id and two keys never share one.
pub struct PrivateKey {
    alg: Algorithm,
    der: Vec<u8>,
    kid: String,
    public_jwk: Map<String, Value>,
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivateKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl Drop for PrivateKey {
    fn drop(&mut self) {
        self.der.iter_mut().for_each(|b| *b = 0);
    }
}

fn key_err(e: impl std::fmt::Display) -> IssuerError {
    IssuerError::Key(e.to_string())
}

impl PrivateKey {
    /// Generates a fresh key: RSA of `rsa_bits` (2048, 3072 or 4096) for RS256/PS256, P-256
    /// for ES256, Ed25519 for EdDSA.
    pub fn generate(alg: Algorithm, rsa_bits: u32) -> Result<Self, IssuerError> {
        let der = match alg {
            Algorithm::RS256 | Algorithm::PS256 => {
                if !matches!(rsa_bits, 2048 | 3072 | 4096) {
                    return Err(IssuerError::Key(format!(
                        "RSA size must be 2048, 3072 or 4096 bits, not {rsa_bits}"
                    )));
                }
                RsaKeyPair::generate(rsa_bits)
                    .map_err(key_err)?
                    .to_der_private_key()
            }
            Algorithm::ES256 => EcKeyPair::generate(EcCurve::P256)
                .map_err(key_err)?
                .to_der_private_key(),
            Algorithm::EdDSA => EdKeyPair::generate(EdCurve::Ed25519)
                .map_err(key_err)?
                .to_der_private_key(),
        };
        Self::from_pkcs8_der(alg, der)
    }

    /// A key from PKCS#8 DER, checked to fit `alg` (RSA of at least 2048 bits, P-256,
    /// Ed25519).
    pub fn from_pkcs8_der(alg: Algorithm, der: Vec<u8>) -> Result<Self, IssuerError> {
        let public = match alg {
            Algorithm::RS256 | Algorithm::PS256 => {
                let pair = RsaKeyPair::from_der(&der).map_err(key_err)?;
                if pair.key_len() * 8 < 2048 {
                    return Err(IssuerError::Key(
                        "RSA keys must have at least 2048 bits".into(),
                    ));
                }
                pair.to_jwk_public_key()
            }
            Algorithm::ES256 => EcKeyPair::from_der(&der, Some(EcCurve::P256))
                .map_err(key_err)?
                .to_jwk_public_key(),
            Algorithm::EdDSA => {
                let pair = EdKeyPair::from_der(&der).map_err(key_err)?;
                if pair.curve() != EdCurve::Ed25519 {
                    return Err(IssuerError::Key("EdDSA keys must be Ed25519".into()));
                }
                pair.to_jwk_public_key()
            }
        };
        let mut public_jwk = public_members(public.as_ref())?;
        let kid = thumbprint(&public_jwk)?;
        public_jwk.insert("kid".into(), Value::String(kid.clone()));
        public_jwk.insert("alg".into(), Value::String(alg.as_str().into()));
        public_jwk.insert("use".into(), Value::String("sig".into()));
        let key = Self {
            alg,
            der,
            kid,
            public_jwk,
        };
        // Fail now, not at the first signature, if the signer cannot be built.
        key.signer()?;
        Ok(key)
    }

    /// A key from a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`). Without `alg`, EC keys are
    /// ES256, Ed25519 keys EdDSA and RSA keys RS256.
    pub fn from_pem(pem: &str, alg: Option<Algorithm>) -> Result<Self, IssuerError> {
        let body: String = pem
            .lines()
            .map(str::trim)
            .skip_while(|l| *l != "-----BEGIN PRIVATE KEY-----")
            .skip(1)
            .take_while(|l| *l != "-----END PRIVATE KEY-----")
            .collect();
        if body.is_empty() {
            return Err(IssuerError::Key(
                "expected a PKCS#8 PEM (-----BEGIN PRIVATE KEY-----)".into(),
            ));
        }
        let der = STANDARD.decode(body).map_err(key_err)?;
        Self::from_der_any(der, alg)
    }

    /// A key from a private JWK (RFC 7517). The algorithm is `alg`, else the JWK's `alg`
    /// member, else inferred from the key type as for [`PrivateKey::from_pem`].
    pub fn from_jwk(json: &str, alg: Option<Algorithm>) -> Result<Self, IssuerError> {
        let jwk = Jwk::from_bytes(json.as_bytes()).map_err(key_err)?;
        let alg = match (alg, jwk.algorithm()) {
            (Some(a), _) => Some(a),
            (None, Some(named)) => Some(named.parse().map_err(IssuerError::Key)?),
            (None, None) => None,
        };
        let der = match jwk.key_type() {
            "RSA" => RsaKeyPair::from_jwk(&jwk)
                .map_err(key_err)?
                .to_der_private_key(),
            "EC" => EcKeyPair::from_jwk(&jwk)
                .map_err(key_err)?
                .to_der_private_key(),
            "OKP" => EdKeyPair::from_jwk(&jwk)
                .map_err(key_err)?
                .to_der_private_key(),
            other => return Err(IssuerError::Key(format!("unsupported key type {other:?}"))),
        };
        Self::from_der_any(der, alg)
    }

    fn from_der_any(der: Vec<u8>, alg: Option<Algorithm>) -> Result<Self, IssuerError> {
        if let Some(alg) = alg {
            return Self::from_pkcs8_der(alg, der);
        }
        let guess = if EcKeyPair::from_der(&der, Some(EcCurve::P256)).is_ok() {
            Algorithm::ES256
        } else if EdKeyPair::from_der(&der).is_ok() {
            Algorithm::EdDSA
        } else {
            Algorithm::RS256
        };
        Self::from_pkcs8_der(guess, der)
    }

    /// The algorithm this key signs with.
    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// The key id (RFC 7638 thumbprint).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public JWK: key-type members, `kid`, `alg` and `use: "sig"` only.
    pub fn public_jwk(&self) -> &Map<String, Value> {
        &self.public_jwk
    }

    /// The PKCS#8 DER, to be sealed with the key-encryption key before storage.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.der
    }

    /// A josekit signer for this key (built once per key and cached by the key ring).
    pub(crate) fn signer(&self) -> Result<Box<dyn JwsSigner>, IssuerError> {
        Ok(match self.alg {
            Algorithm::RS256 => Box::new(
                josekit::jws::RS256
                    .signer_from_der(&self.der)
                    .map_err(key_err)?,
            ),
            Algorithm::PS256 => Box::new(
                josekit::jws::PS256
                    .signer_from_der(&self.der)
                    .map_err(key_err)?,
            ),
            Algorithm::ES256 => Box::new(
                josekit::jws::ES256
                    .signer_from_der(&self.der)
                    .map_err(key_err)?,
            ),
            Algorithm::EdDSA => Box::new(
                josekit::jws::EdDSA
                    .signer_from_der(&self.der)
                    .map_err(key_err)?,
            ),
        })
    }
}

/// Keeps only the public members of `jwk` for its key type.
pub(crate) fn public_members(jwk: &Map<String, Value>) -> Result<Map<String, Value>, IssuerError> {
    let kty = jwk.get("kty").and_then(Value::as_str).unwrap_or_default();
    let members = PUBLIC_MEMBERS
        .iter()
        .find(|(t, _)| *t == kty)
        .map(|(_, m)| *m)
        .ok_or_else(|| IssuerError::Key(format!("unsupported key type {kty:?}")))?;
    let mut out = Map::new();
    for m in members {
        let v = jwk
            .get(*m)
            .ok_or_else(|| IssuerError::Key(format!("JWK lacks {m}")))?;
        out.insert((*m).to_owned(), v.clone());
    }
    Ok(out)
}

/// RFC 7638 §3: SHA-256 over the required members in lexicographic order, no whitespace.
fn thumbprint(public: &Map<String, Value>) -> Result<String, IssuerError> {
    let mut names: Vec<&String> = public.keys().collect();
    names.sort();
    let canonical: Map<String, Value> = names
        .into_iter()
        .map(|k| (k.clone(), public[k].clone()))
        .collect();
    let json = serde_json::to_vec(&canonical).map_err(key_err)?;
    let digest = ring::digest::digest(&ring::digest::SHA256, &json);
    Ok(URL_SAFE_NO_PAD.encode(digest.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7638_example_thumbprint() {
        // RFC 7638 §3.1.
        let jwk: Map<String, Value> = serde_json::from_str(
            r#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#,
        )
        .unwrap();
        let public = public_members(&jwk).unwrap();
        assert_eq!(
            thumbprint(&public).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn generated_keys_round_trip_through_der_and_pem() {
        for alg in Algorithm::ALL {
            let key = PrivateKey::generate(alg, 2048).unwrap();
            let again = PrivateKey::from_pkcs8_der(alg, key.pkcs8_der().to_vec()).unwrap();
            assert_eq!(again.kid(), key.kid());
            let pem = format!(
                "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
                STANDARD.encode(key.pkcs8_der())
            );
            let imported = PrivateKey::from_pem(&pem, Some(alg)).unwrap();
            assert_eq!(imported.kid(), key.kid());
            assert_eq!(imported.alg(), alg);
        }
    }

    #[test]
    fn algorithm_is_inferred_from_the_key_type() {
        for (alg, inferred) in [
            (Algorithm::ES256, Algorithm::ES256),
            (Algorithm::EdDSA, Algorithm::EdDSA),
            (Algorithm::PS256, Algorithm::RS256),
        ] {
            let key = PrivateKey::generate(alg, 2048).unwrap();
            let pem = format!(
                "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----",
                STANDARD.encode(key.pkcs8_der())
            );
            assert_eq!(PrivateKey::from_pem(&pem, None).unwrap().alg(), inferred);
        }
    }

    #[test]
    fn mismatched_or_weak_keys_are_refused() {
        let ec = PrivateKey::generate(Algorithm::ES256, 2048).unwrap();
        assert!(PrivateKey::from_pkcs8_der(Algorithm::RS256, ec.pkcs8_der().to_vec()).is_err());
        let small = RsaKeyPair::generate(1024).unwrap().to_der_private_key();
        assert!(PrivateKey::from_pkcs8_der(Algorithm::RS256, small).is_err());
        assert!(PrivateKey::generate(Algorithm::RS256, 1024).is_err());
        assert!(PrivateKey::from_pem("not a pem", None).is_err());
    }

    #[test]
    fn private_jwk_import() {
        let pair = EcKeyPair::generate(EcCurve::P256).unwrap();
        let jwk = pair.to_jwk_private_key().to_string();
        let key = PrivateKey::from_jwk(&jwk, None).unwrap();
        assert_eq!(key.alg(), Algorithm::ES256);
        assert!(!key.public_jwk().contains_key("d"));
    }
}
