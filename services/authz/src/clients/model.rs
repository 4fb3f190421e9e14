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
    // browser clients (CORS)
    /// Origins (`scheme://host[:port]`, WHATWG URL §4.5 serialization) allowed to call the
    /// token, userinfo and revocation endpoints from browser JavaScript for this client,
    /// besides the origins of its redirect URIs ([`Client::allows_origin`]).
    pub allowed_origins: Vec<String>,
    /// logout: where logout tokens are POSTed (OpenID Connect Back-Channel Logout 1.0
    /// §2.2); `None`: the client is not told.
    pub backchannel_logout_uri: Option<String>,
    /// logout: the client needs `sid` in logout tokens (Back-Channel Logout 1.0 §2.2;
    /// authz always sends it).
    pub backchannel_logout_session_required: bool,
    /// logout: the page loaded in an iframe on authz's logout page (OpenID Connect
    /// Front-Channel Logout 1.0 §2).
    pub frontchannel_logout_uri: Option<String>,
    /// logout: `iss` and `sid` are added to `frontchannel_logout_uri` (Front-Channel
    /// Logout 1.0 §2; authz adds them whenever it knows the session).
    pub frontchannel_logout_session_required: bool,
    // token exchange (RFC 8693)
    /// What the client may obtain with the token exchange grant.
    pub token_exchange: TokenExchangePolicy,
    // clientauth: client authentication by JWT (RFC 7523) and mTLS (RFC 8705)
    /// The client's public keys, a JWKS document (RFC 7591 §2 `jwks`, RFC 7517 §5): for
    /// `private_key_jwt`, `self_signed_tls_client_auth` and signed request objects. Never
    /// together with [`Client::jwks_uri`].
    pub jwks: Option<serde_json::Value>,
    /// Where the client publishes its JWKS (RFC 7591 §2 `jwks_uri`); fetched and cached by
    /// [`crate::clients::ClientKeys`].
    pub jwks_uri: Option<String>,
    /// The one JWS algorithm the client's assertions must be signed with (RFC 7591 §2
    /// `token_endpoint_auth_signing_alg`); `None`: any algorithm allowed for its method.
    pub token_endpoint_auth_signing_alg: Option<String>,
    /// `tls_client_auth`: the certificate subject value the client is registered with
    /// (RFC 8705 §2.1.2).
    pub tls_client_auth: Option<TlsClientAuthSubject>,
    // PAR (RFC 9126)
    /// The client must push its authorization requests first (RFC 9126 §6,
    /// `require_pushed_authorization_requests`): `/authorize` refuses its requests that do
    /// not come through a `request_uri` of the PAR endpoint.
    pub require_pushed_authorization_requests: bool,
}

// clientauth: client authentication by mTLS (RFC 8705)
/// The one certificate subject value a `tls_client_auth` client is registered with
/// (RFC 8705 §2.1.2: exactly one of these metadata parameters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsClientAuthSubject {
    /// `tls_client_auth_subject_dn`: the subject distinguished name (RFC 4514 string).
    SubjectDn(String),
    /// `tls_client_auth_san_dns`: a dNSName SAN entry.
    SanDns(String),
    /// `tls_client_auth_san_uri`: a uniformResourceIdentifier SAN entry.
    SanUri(String),
    /// `tls_client_auth_san_ip`: an iPAddress SAN entry (IPv4 or IPv6 text form).
    SanIp(String),
    /// `tls_client_auth_san_email`: an rfc822Name SAN entry.
    SanEmail(String),
}

impl TlsClientAuthSubject {
    /// The client metadata parameter name (RFC 8705 §2.1.2).
    pub fn metadata_name(&self) -> &'static str {
        match self {
            Self::SubjectDn(_) => "tls_client_auth_subject_dn",
            Self::SanDns(_) => "tls_client_auth_san_dns",
            Self::SanUri(_) => "tls_client_auth_san_uri",
            Self::SanIp(_) => "tls_client_auth_san_ip",
            Self::SanEmail(_) => "tls_client_auth_san_email",
        }
    }

    /// The registered value.
    pub fn value(&self) -> &str {
        match self {
            Self::SubjectDn(v)
            | Self::SanDns(v)
            | Self::SanUri(v)
            | Self::SanIp(v)
            | Self::SanEmail(v) => v,
        }
    }
}

/// The JWS algorithms a client assertion may be signed with for `method` (RFC 7523 §3
/// item 9; RFC 8725 §3.1: an explicit allowlist, never `none`): HS256 for
/// `client_secret_jwt`, the asymmetric algorithms authz verifies for `private_key_jwt`.
pub fn assertion_algorithms(method: TokenEndpointAuthMethod) -> &'static [&'static str] {
    match method {
        TokenEndpointAuthMethod::ClientSecretJwt => &["HS256"],
        TokenEndpointAuthMethod::PrivateKeyJwt => &["RS256", "PS256", "ES256", "EdDSA"],
        _ => &[],
    }
}

impl Client {
    // clientauth
    /// Why this client's authentication settings cannot work, or `None`: `jwks` and
    /// `jwks_uri` are exclusive (RFC 7591 §2) and `jwks` must be a JWKS document;
    /// `private_key_jwt` needs one of them, `self_signed_tls_client_auth` one too
    /// (RFC 8705 §2.2), `tls_client_auth` its subject value (RFC 8705 §2.1.2);
    /// `token_endpoint_auth_signing_alg` must be allowed for the method.
    pub fn auth_problem(&self) -> Option<String> {
        use TokenEndpointAuthMethod as M;
        if self.jwks.is_some() && self.jwks_uri.is_some() {
            return Some("jwks and jwks_uri are mutually exclusive".into());
        }
        if let Some(jwks) = &self.jwks
            && !jwks.get("keys").is_some_and(serde_json::Value::is_array)
        {
            return Some("jwks must be a JWKS document ({\"keys\":[...]})".into());
        }
        if let Some(uri) = &self.jwks_uri
            && let Some(problem) = logout_uri_problem(uri)
        {
            return Some(format!("jwks_uri {problem}"));
        }
        let has_keys = self.jwks.is_some() || self.jwks_uri.is_some();
        match self.auth_method {
            M::PrivateKeyJwt | M::SelfSignedTlsClientAuth if !has_keys => {
                return Some(format!("{} needs jwks or jwks_uri", self.auth_method));
            }
            M::TlsClientAuth if self.tls_client_auth.is_none() => {
                return Some(
                    "tls_client_auth needs a certificate subject (tls_client_auth_subject_dn or a tls_client_auth_san_* value)"
                        .into(),
                );
            }
            _ => {}
        }
        if self.tls_client_auth.is_some() && self.auth_method != M::TlsClientAuth {
            return Some("a tls_client_auth subject is only for tls_client_auth".into());
        }
        if let Some(alg) = &self.token_endpoint_auth_signing_alg
            && !assertion_algorithms(self.auth_method).contains(&alg.as_str())
        {
            return Some(format!(
                "token_endpoint_auth_signing_alg {alg} is not allowed for {} (allowed: {})",
                self.auth_method,
                assertion_algorithms(self.auth_method).join(", ")
            ));
        }
        None
    }
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
            allowed_origins: Vec::new(),
            backchannel_logout_uri: None,
            backchannel_logout_session_required: false,
            frontchannel_logout_uri: None,
            frontchannel_logout_session_required: false,
            token_exchange: TokenExchangePolicy::default(),
            // clientauth
            jwks: None,
            jwks_uri: None,
            token_endpoint_auth_signing_alg: None,
            tls_client_auth: None,
            // PAR (RFC 9126)
            require_pushed_authorization_requests: false,
        }
    }

    // browser clients (CORS)
    /// Whether browser JavaScript of `origin` (an `Origin` request header, RFC 6454 §7)
    /// may read this client's responses (WHATWG Fetch §3.2, CORS): the origins of its
    /// registered redirect URIs and its explicit [`Client::allowed_origins`], compared
    /// exactly as serialized origins, as Keycloak's "web origins" `+` and
    /// node-oidc-provider's `clientBasedCORS` do. `null` and malformed origins never match.
    pub fn allows_origin(&self, origin: &str) -> bool {
        origin_of(origin).as_deref() == Some(origin) && self.origins().any(|o| o == origin)
    }

    /// The origins [`Client::allows_origin`] accepts: its explicit
    /// [`Client::allowed_origins`], then the origins of its http(s) redirect URIs.
    pub fn origins(&self) -> impl Iterator<Item = String> + '_ {
        self.allowed_origins
            .iter()
            .cloned()
            .chain(self.redirect_uris.iter().filter_map(|u| origin_of(u)))
    }
}

// browser clients (CORS)
/// The serialized origin (`scheme://host[:port]`, default port omitted) of an http(s)
/// URL; `None` for other schemes and unparsable input.
pub fn origin_of(url: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    let origin = url.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

/// logout: why `uri` cannot be a logout endpoint (`backchannel_logout_uri`, OpenID Connect
/// Back-Channel Logout 1.0 §2.2, or `frontchannel_logout_uri`, Front-Channel Logout 1.0
/// §2): it must be an absolute `https` URI (plain `http` only on a loopback host, for
/// development), without a fragment. `None` when it is fine.
pub fn logout_uri_problem(uri: &str) -> Option<&'static str> {
    let Ok(url) = url::Url::parse(uri) else {
        return Some("must be an absolute URI");
    };
    if url.fragment().is_some() {
        return Some("must not contain a fragment");
    }
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Some("must be an absolute URI with a host"),
    };
    match url.scheme() {
        "https" => None,
        "http" if loopback => None,
        _ => Some("must use https (http only on a loopback host)"),
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
    /// clientauth: the secret sealed with the key-encryption key, for `client_secret_jwt`
    /// (the HMAC key of its assertions, OpenID Connect Core §9); `None` for other methods.
    pub sealed: Option<String>,
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

/// A random row id (128 bits, base64url) that never starts with `-`: ids are command-line
/// arguments (`authz clients show <id>`), where a leading `-` reads as an option. Drawn
/// again in that case (1 in 64), so the others stay uniformly distributed.
pub(crate) fn random_id() -> Result<String, ring::error::Unspecified> {
    let mut bytes = [0u8; 16];
    let rng = SystemRandom::new();
    loop {
        rng.fill(&mut bytes)?;
        // The first base64url character is the top six bits of the first byte; 62 is `-`.
        if bytes[0] >> 2 != 62 {
            return Ok(URL_SAFE_NO_PAD.encode(bytes));
        }
    }
}

/// A generated client id (128 random bits, base64url).
pub(crate) fn generated_id() -> Result<String, crate::AuthzError> {
    random_id().map_err(|_| crate::AuthzError::Task("no randomness available".into()))
}

/// Secrets are kept as [`domain::secret::digest`], stored as lowercase hex.
pub(crate) use domain::secret::{digest, digest_from_hex as unhex, digest_to_hex as hex};

#[cfg(test)]
mod id_tests {
    use super::*;

    #[test]
    fn generated_ids_never_read_as_options() {
        // Without the redraw, 1 id in 64 starts with `-`: 10,000 would show one.
        for _ in 0..10_000 {
            let id = random_id().unwrap();
            assert!(!id.starts_with('-'), "{id}");
            assert_eq!(id.len(), 22);
        }
    }
}
