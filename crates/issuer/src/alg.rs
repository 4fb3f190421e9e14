use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The JWS algorithms this platform signs and verifies with (RFC 7518 §3, RFC 8037 §3.1).
///
/// This enum is the allowlist: `none` and the HMAC family cannot be expressed, so a token
/// claiming them is rejected before any key is looked at (RFC 8725 §3.1, §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PSS with SHA-256 and MGF1 with SHA-256.
    PS256,
    /// ECDSA using P-256 and SHA-256.
    ES256,
    /// EdDSA with Ed25519.
    EdDSA,
}

impl Algorithm {
    /// Every supported algorithm.
    pub const ALL: [Self; 4] = [Self::RS256, Self::PS256, Self::ES256, Self::EdDSA];

    /// The `alg` header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::PS256 => "PS256",
            Self::ES256 => "ES256",
            Self::EdDSA => "EdDSA",
        }
    }

    /// Whether keys of this algorithm are RSA keys (which take a size).
    pub fn is_rsa(self) -> bool {
        matches!(self, Self::RS256 | Self::PS256)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| {
                format!("unsupported algorithm {s:?} (supported: RS256, PS256, ES256, EdDSA)")
            })
    }
}
