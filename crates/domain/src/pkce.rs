//! Proof Key for Code Exchange (RFC 7636), S256 only.
//!
//! OAuth 2.1 §4.1.1 and RFC 9700 §2.1.1 make PKCE mandatory and `plain` pointless: this
//! server requires `code_challenge_method=S256` from every client, public or confidential.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::secret::constant_time_eq;

/// Why a PKCE parameter was refused. The messages are safe to send to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PkceError {
    /// No `code_challenge` (RFC 7636 §4.4.1: required here for every client).
    #[error("code_challenge is required (PKCE with S256)")]
    MissingChallenge,
    /// `code_challenge_method` absent (which means `plain`, RFC 7636 §4.3) or `plain`.
    #[error("code_challenge_method must be S256")]
    PlainRefused,
    /// Some other method.
    #[error("code_challenge_method {0:?} is not supported; use S256")]
    UnknownMethod(String),
    /// An S256 challenge is the base64url encoding (no padding) of 32 bytes: 43 characters.
    #[error("code_challenge must be 43 base64url characters (BASE64URL(SHA256(code_verifier)))")]
    MalformedChallenge,
    /// RFC 7636 §4.1: 43 to 128 characters of `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"`.
    #[error("code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~")]
    MalformedVerifier,
}

/// A validated S256 code challenge (RFC 7636 §4.2), as sent to the authorization endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeChallenge(String);

impl CodeChallenge {
    /// Parses the `code_challenge` and `code_challenge_method` parameters of an
    /// authorization request (RFC 7636 §4.3). Only `S256` is accepted; a missing method
    /// means `plain` and is refused like `plain` itself.
    pub fn parse(challenge: Option<&str>, method: Option<&str>) -> Result<Self, PkceError> {
        let challenge = challenge.ok_or(PkceError::MissingChallenge)?;
        match method {
            Some("S256") => {}
            None | Some("plain") => return Err(PkceError::PlainRefused),
            Some(other) => return Err(PkceError::UnknownMethod(other.to_owned())),
        }
        Self::from_stored(challenge)
    }

    /// A challenge read back from storage (already validated once; checked again).
    pub fn from_stored(challenge: &str) -> Result<Self, PkceError> {
        let valid = challenge.len() == 43
            && challenge
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if valid {
            Ok(Self(challenge.to_owned()))
        } else {
            Err(PkceError::MalformedChallenge)
        }
    }

    /// The challenge as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// RFC 7636 §4.6: whether `BASE64URL-ENCODE(SHA256(ASCII(code_verifier)))` equals the
    /// challenge, compared in constant time. A malformed verifier is an error, not a
    /// mismatch, so the caller can answer `invalid_request` rather than `invalid_grant`.
    pub fn verify(&self, verifier: &str) -> Result<bool, PkceError> {
        let valid = (43..=128).contains(&verifier.len())
            && verifier
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
        if !valid {
            return Err(PkceError::MalformedVerifier);
        }
        let digest = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
        let computed = URL_SAFE_NO_PAD.encode(digest.as_ref());
        Ok(constant_time_eq(computed.as_bytes(), self.0.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn rfc7636_appendix_b() {
        let c = CodeChallenge::parse(Some(CHALLENGE), Some("S256")).unwrap();
        assert_eq!(c.verify(VERIFIER), Ok(true));
        let other = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXl";
        assert_eq!(c.verify(other), Ok(false));
    }

    #[test]
    fn only_s256_with_a_well_formed_challenge() {
        assert_eq!(
            CodeChallenge::parse(None, Some("S256")),
            Err(PkceError::MissingChallenge)
        );
        assert_eq!(
            CodeChallenge::parse(Some(CHALLENGE), None),
            Err(PkceError::PlainRefused)
        );
        assert_eq!(
            CodeChallenge::parse(Some(CHALLENGE), Some("plain")),
            Err(PkceError::PlainRefused)
        );
        assert_eq!(
            CodeChallenge::parse(Some(CHALLENGE), Some("S512")),
            Err(PkceError::UnknownMethod("S512".into()))
        );
        for bad in [
            "short",
            &format!("{CHALLENGE}A"),
            &CHALLENGE.replace('-', "+"),
        ] {
            assert_eq!(
                CodeChallenge::parse(Some(bad), Some("S256")),
                Err(PkceError::MalformedChallenge),
                "{bad}"
            );
        }
    }

    #[test]
    fn verifier_syntax() {
        let c = CodeChallenge::from_stored(CHALLENGE).unwrap();
        for bad in [
            "a".repeat(42),
            "a".repeat(129),
            format!("{}!", "a".repeat(43)),
        ] {
            assert_eq!(c.verify(&bad), Err(PkceError::MalformedVerifier), "{bad}");
        }
        assert_eq!(c.verify(&"a~.-_".repeat(10)), Ok(false));
    }
}
