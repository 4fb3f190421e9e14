use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::{AccessTokenFormat, ClientId, GrantType, ScopeSet, TokenEndpointAuthMethod};
use issuer::Algorithm;
use ring::rand::{SecureRandom, SystemRandom};

/// A registered client.
#[derive(Debug, Clone, PartialEq)]
pub struct Client {
    /// `client_id`.
    pub id: ClientId,
    /// Display name (shown on consent pages).
    pub name: String,
    /// Token endpoint authentication method.
    pub auth_method: TokenEndpointAuthMethod,
    /// Exact redirect URIs (no patterns).
    pub redirect_uris: Vec<String>,
    /// Exact post-logout redirect URIs.
    pub post_logout_redirect_uris: Vec<String>,
    /// Grant types the client may use.
    pub grant_types: Vec<GrantType>,
    /// Scopes the client may request.
    pub scopes: ScopeSet,
    /// Resource indicators (RFC 8707) the client may ask tokens for; the first is the
    /// default audience. Empty: only the default audience (the issuer).
    pub audiences: Vec<String>,
    /// JWT (RFC 9068) or opaque access tokens.
    pub access_token_format: AccessTokenFormat,
    /// Access token lifetime, seconds.
    pub access_token_ttl: i64,
    /// Refresh token lifetime, seconds.
    pub refresh_token_ttl: i64,
    /// ID token lifetime, seconds.
    pub id_token_ttl: i64,
    /// Signing algorithm of this client's tokens; `None` for `keys.default_alg`.
    pub signing_alg: Option<Algorithm>,
    /// First-party clients may skip consent.
    pub first_party: bool,
    /// May call the introspection endpoints.
    pub can_introspect: bool,
    /// Creation time.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
    // token exchange (RFC 8693)
    /// What the client may obtain with the token exchange grant.
    pub token_exchange: TokenExchangePolicy,
}

// token exchange (RFC 8693)
/// A client's token exchange policy (RFC 8693 §2.1, §5: "the authorization server
/// determines whether the client is allowed to exchange"). The empty policy allows no
/// audience, so the grant type alone grants nothing.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenExchangePolicy {
    /// Audiences (`audience` names or `resource` URIs, compared exactly) the client may
    /// exchange tokens for; the first is the default target.
    pub audiences: Vec<String>,
    /// The most scopes an exchanged token may carry; it never carries more than the
    /// subject token had either (down-scoping only).
    #[serde(with = "scope_text")]
    pub scopes: ScopeSet,
    /// Whether the client may exchange without an actor token (impersonation, RFC 8693
    /// §1.1): the issued token then carries no new `act` claim.
    pub impersonate: bool,
}

/// [`ScopeSet`] as its space-separated text.
mod scope_text {
    use domain::ScopeSet;

    pub(super) fn serialize<S: serde::Serializer>(s: &ScopeSet, ser: S) -> Result<S::Ok, S::Error> {
        ser.serialize_str(&s.to_string())
    }

    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<ScopeSet, D::Error> {
        let text: String = serde::Deserialize::deserialize(d)?;
        ScopeSet::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl Client {
    /// A client with the settings `authz clients create` starts from: confidential
    /// (`client_secret_basic`), `client_credentials` only, no scopes, redirect URIs or
    /// audiences, JWT access tokens (RFC 9068) living 1 h, refresh tokens 30 days, ID tokens
    /// 1 h, signed with `keys.default_alg`, not first-party, not allowed to introspect.
    /// The times are set when it is stored.
    pub fn new(id: ClientId, name: String) -> Self {
        Self {
            id,
            name,
            auth_method: TokenEndpointAuthMethod::ClientSecretBasic,
            redirect_uris: Vec::new(),
            post_logout_redirect_uris: Vec::new(),
            grant_types: vec![GrantType::ClientCredentials],
            scopes: ScopeSet::default(),
            audiences: Vec::new(),
            access_token_format: AccessTokenFormat::Jwt,
            access_token_ttl: 3600,
            refresh_token_ttl: 30 * 86_400,
            id_token_ttl: 3600,
            signing_alg: None,
            first_party: false,
            can_introspect: false,
            created_at: 0,
            updated_at: 0,
            token_exchange: TokenExchangePolicy::default(),
        }
    }
}

/// A stored secret: its digest and when it stops working.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secret {
    /// Row id.
    pub id: String,
    /// SHA-256 of the secret.
    pub digest: [u8; 32],
    /// When it was created.
    pub created_at: i64,
    /// When it stops being accepted; `None`: until rotated.
    pub expires_at: Option<i64>,
}

impl Secret {
    /// Whether it is accepted at `now`.
    pub fn is_valid_at(&self, now: i64) -> bool {
        self.expires_at.is_none_or(|t| t > now)
    }
}

/// What `clients create` stores.
#[derive(Debug, Clone)]
pub struct NewClient {
    /// The client.
    pub client: Client,
    /// A secret to use instead of a generated one (confidential clients only).
    pub secret: Option<String>,
}

/// A fresh secret: 32 random bytes (256 bits), base64url without padding.
pub(crate) fn generate_secret() -> Result<String, ring::error::Unspecified> {
    let mut bytes = [0u8; 32];
    SystemRandom::new().fill(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// A random row id (128 bits, base64url).
pub(crate) fn random_id() -> Result<String, ring::error::Unspecified> {
    let mut bytes = [0u8; 16];
    SystemRandom::new().fill(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// A generated client id (128 random bits, base64url).
pub(crate) fn generated_id() -> Result<String, crate::AuthzError> {
    random_id().map_err(|_| crate::AuthzError::Task("no randomness available".into()))
}

/// Secrets are kept as [`domain::secret::digest`], stored as lowercase hex.
pub(crate) use domain::secret::{digest, digest_from_hex as unhex, digest_to_hex as hex};
