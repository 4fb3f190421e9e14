use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A client identifier (RFC 6749 §2.2): 1 to 128 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ClientId(String);

impl ClientId {
    /// Parses a client id.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() || s.len() > 128 || !s.bytes().all(|b| (0x21..=0x7E).contains(&b)) {
            return Err("client_id must be 1 to 128 visible ASCII characters".into());
        }
        Ok(Self(s.to_owned()))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ClientId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s)
    }
}

impl From<ClientId> for String {
    fn from(c: ClientId) -> Self {
        c.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vm])* #[serde(rename = $wire)] $variant),+
        }

        impl $name {
            /// Every value.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The wire value.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $wire),+ }
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($wire => Ok(Self::$variant),)+
                    other => Err(format!(
                        "unknown value {other:?} (expected one of: {})",
                        [$($wire),+].join(", ")
                    )),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum!(
    /// OAuth grant types (RFC 6749 §4, §6; RFC 8628 §3.4).
    GrantType {
        /// Authorization code (with PKCE).
        AuthorizationCode = "authorization_code",
        /// Client credentials (RFC 6749 §4.4).
        ClientCredentials = "client_credentials",
        /// Refresh token (RFC 6749 §6).
        RefreshToken = "refresh_token",
        // token exchange
        /// Token exchange (RFC 8693 §2.1).
        TokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange",
        // device grant (RFC 8628)
        /// Device authorization grant (RFC 8628 §3.4).
        DeviceCode = "urn:ietf:params:oauth:grant-type:device_code",
    }
);

wire_enum!(
    /// How a client authenticates at the token endpoint (RFC 7591 §2,
    /// `token_endpoint_auth_method`).
    TokenEndpointAuthMethod {
        /// HTTP Basic (RFC 6749 §2.3.1).
        ClientSecretBasic = "client_secret_basic",
        /// `client_id` and `client_secret` in the form body.
        ClientSecretPost = "client_secret_post",
        /// Public client: no secret (PKCE protects its codes).
        None = "none",
        // client authentication (RFC 7523, RFC 8705)
        /// A JWT assertion signed with HMAC under the client secret (OpenID Connect Core §9,
        /// RFC 7523 §2.2).
        ClientSecretJwt = "client_secret_jwt",
        /// A JWT assertion signed with a private key whose public key is in the client's
        /// `jwks` or `jwks_uri` (OpenID Connect Core §9, RFC 7523 §2.2).
        PrivateKeyJwt = "private_key_jwt",
        /// Mutual TLS with a PKI certificate whose subject matches the registration
        /// (RFC 8705 §2.1).
        TlsClientAuth = "tls_client_auth",
        /// Mutual TLS with a self-signed certificate whose key is in the client's JWKS
        /// (RFC 8705 §2.2).
        SelfSignedTlsClientAuth = "self_signed_tls_client_auth",
    }
);

impl TokenEndpointAuthMethod {
    /// Whether the client proves itself with a shared secret, sent as such
    /// (`client_secret_basic`, `client_secret_post`) or as the HMAC key of an assertion
    /// (`client_secret_jwt`): such a client has stored secrets.
    pub fn uses_secret(self) -> bool {
        matches!(
            self,
            Self::ClientSecretBasic | Self::ClientSecretPost | Self::ClientSecretJwt
        )
    }

    /// Whether the client is confidential (RFC 6749 §2.1): every method but `none`.
    pub fn is_confidential(self) -> bool {
        self != Self::None
    }
}

wire_enum!(
    /// How a client's access tokens are issued.
    AccessTokenFormat {
        /// RFC 9068 JWT, verifiable locally by resource servers.
        Jwt = "jwt",
        /// Random reference token, stored hashed, checked by introspection.
        Opaque = "opaque",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_values_round_trip() {
        for g in GrantType::ALL {
            assert_eq!(g.as_str().parse::<GrantType>().unwrap(), *g);
        }
        assert!("password".parse::<GrantType>().is_err());
        assert_eq!(
            "none".parse::<TokenEndpointAuthMethod>().unwrap(),
            TokenEndpointAuthMethod::None
        );
        assert!(ClientId::parse("").is_err());
        assert!(ClientId::parse("has space").is_err());
        assert!(ClientId::parse("demo-client").is_ok());
    }
}
