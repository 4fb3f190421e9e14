use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use domain::{ClientId, TokenEndpointAuthMethod, constant_time_eq};
use issuer::{Algorithm, Clock, Kek};
use serde_json::{Map, Value};
use storage::{Database, StorageError};
use tracing::instrument;

use super::certificate;
use super::keys::{ClientKeys, KeyError, UnverifiedJws};
use super::model::{
    Client, NewClient, Secret, assertion_algorithms, digest, generate_secret, random_id,
};
use super::repo;
use crate::AuthzError;
use crate::config::ClientAuthConfig;

/// Whole seconds of a configured duration.
fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2)
}

/// How a client presented itself (RFC 6749 §2.3).
#[derive(Clone)]
pub enum Credentials {
    /// HTTP Basic, id and secret already form-urlencoding-decoded (RFC 6749 §2.3.1).
    Basic {
        /// `client_id`.
        id: String,
        /// `client_secret`.
        secret: String,
    },
    /// `client_id` and `client_secret` form parameters.
    Post {
        /// `client_id`.
        id: String,
        /// `client_secret`.
        secret: String,
    },
    /// Only `client_id` (public clients).
    PublicId {
        /// `client_id`.
        id: String,
    },
    // clientauth
    /// A JWT client assertion (`client_assertion_type`
    /// `urn:ietf:params:oauth:client-assertion-type:jwt-bearer`, RFC 7523 §2.2): for
    /// `private_key_jwt` and `client_secret_jwt` (OpenID Connect Core §9).
    Assertion {
        /// The client it names: the form's `client_id`, else the assertion's `sub`.
        id: String,
        /// The compact JWT.
        assertion: String,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("client_id", &self.client_id())
            .field("method", &self.method())
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// The claimed `client_id`.
    pub fn client_id(&self) -> &str {
        match self {
            Self::Basic { id, .. }
            | Self::Post { id, .. }
            | Self::PublicId { id }
            | Self::Assertion { id, .. } => id,
        }
    }

    /// The method this presentation corresponds to (for an assertion, whose method
    /// depends on how it is signed: `private_key_jwt`).
    pub fn method(&self) -> TokenEndpointAuthMethod {
        match self {
            Self::Basic { .. } => TokenEndpointAuthMethod::ClientSecretBasic,
            Self::Post { .. } => TokenEndpointAuthMethod::ClientSecretPost,
            Self::PublicId { .. } => TokenEndpointAuthMethod::None,
            Self::Assertion { .. } => TokenEndpointAuthMethod::PrivateKeyJwt,
        }
    }

    /// Whether a client registered for `registered` may present these credentials:
    /// its own method, where the two ways of sending a shared secret (HTTP Basic and
    /// form parameters, RFC 6749 §2.3.1) are one method (as Keycloak's "client id and
    /// secret" is, and as discovery and the guide say), and an assertion for either JWT
    /// method.
    fn fits(&self, registered: TokenEndpointAuthMethod) -> bool {
        use TokenEndpointAuthMethod as M;
        match self {
            Self::Basic { .. } | Self::Post { .. } => {
                matches!(registered, M::ClientSecretBasic | M::ClientSecretPost)
            }
            // clientauth: mTLS clients send only client_id; the certificate is the proof.
            Self::PublicId { .. } => matches!(
                registered,
                M::None | M::TlsClientAuth | M::SelfSignedTlsClientAuth
            ),
            Self::Assertion { .. } => matches!(registered, M::PrivateKeyJwt | M::ClientSecretJwt),
        }
    }

    fn secret(&self) -> Option<&str> {
        match self {
            Self::Basic { secret, .. } | Self::Post { secret, .. } => Some(secret),
            Self::PublicId { .. } | Self::Assertion { .. } => None,
        }
    }
}

// clientauth
/// What the endpoint being called adds to client authentication: the values a client
/// assertion's `aud` may hold (RFC 7523 §3 item 3: the issuer or the endpoint's URL; OpenID
/// Connect Core §9: the token endpoint URL).
#[derive(Debug, Clone, Default)]
pub struct AuthContext {
    /// Accepted `aud` values of a client assertion (empty for the other methods).
    pub audiences: Vec<String>,
    /// The client certificate of the connection: from authz's own TLS handshake, or as a
    /// trusted proxy forwarded it (RFC 8705 §2).
    pub certificate: Option<certificate::Presented>,
}

/// Why client authentication failed; every variant but `Storage` is `invalid_client` on
/// the wire.
#[derive(Debug, thiserror::Error)]
pub enum ClientAuthError {
    /// Unknown client, wrong secret or expired secret (never says which).
    #[error("client authentication failed")]
    Invalid,
    // clientauth
    /// The client exists but is registered for another method; the description names it,
    /// as Ory Hydra's does, so an integrator sees what to change.
    #[error("client authentication failed: this client is registered for {registered}, not {used}")]
    WrongMethod {
        /// The method it is registered for.
        registered: TokenEndpointAuthMethod,
        /// The method the request used.
        used: TokenEndpointAuthMethod,
    },
    /// A client assertion was refused (RFC 7523 §3); the reason is safe to show.
    #[error("client assertion rejected: {0}")]
    Assertion(String),
    /// The client certificate does not authenticate the client (RFC 8705 §2).
    #[error("client certificate rejected: {0}")]
    Certificate(&'static str),
    /// The registry could not be read.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// What [`Clients::seed`] did to one client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedOutcome {
    /// The client.
    pub id: ClientId,
    /// It existed and was deleted first (only when resetting).
    pub deleted: bool,
    /// It was registered now; `false`: it existed and was left untouched.
    pub created: bool,
}

struct Entry {
    client: Arc<Client>,
    secrets: Vec<Secret>,
}

const CACHE_LIMIT: usize = 10_000;

/// Cached look-ups by client id: when read, and what was found (`None`: no such client).
type Cache = HashMap<String, (Instant, Option<Arc<Entry>>)>;

/// The client registry with a short read-through cache, so the token and introspection
/// hot paths do not read the database on every request. Changes made through this
/// registry take effect at once here and within `clients.cache_ttl` on other replicas.
pub struct Clients {
    db: Database,
    clock: Arc<dyn Clock>,
    ttl: Duration,
    cache: RwLock<Cache>,
    // browser clients (CORS)
    /// Every origin some client allows, and when it was read.
    origins: RwLock<Option<(Instant, Arc<HashSet<String>>)>>,
    // clientauth
    /// Clients' public keys (`jwks`, `jwks_uri`).
    keys: Arc<ClientKeys>,
    /// Seals the secrets of `client_secret_jwt` clients; `None`: such clients cannot be
    /// created and their assertions are refused.
    kek: Option<Arc<Kek>>,
    /// `client_auth.assertion_max_lifetime`, seconds.
    assertion_max_lifetime: i64,
    /// `client_auth.clock_skew`, seconds.
    clock_skew: i64,
    /// `client_auth.certificate_header` and `client_auth.trusted_proxies`.
    certificate_header: Option<(String, Vec<std::net::IpAddr>)>,
}

impl Clients {
    /// A registry over `db`, caching entries for `cache_ttl` (zero disables the cache).
    pub fn new(db: Database, clock: Arc<dyn Clock>, cache_ttl: Duration) -> Self {
        // clientauth
        let keys = Arc::new(ClientKeys::new(
            &ClientAuthConfig::default(),
            Arc::clone(&clock),
        ));
        Self {
            db,
            clock,
            ttl: cache_ttl,
            cache: RwLock::new(HashMap::new()),
            origins: RwLock::new(None),
            // clientauth
            keys,
            kek: None,
            assertion_max_lifetime: 300,
            clock_skew: 30,
            certificate_header: None,
        }
    }

    // clientauth
    /// This registry with the `client_auth` settings and the key-encryption key that
    /// seals `client_secret_jwt` secrets (without it, such clients cannot be created and
    /// their assertions are refused).
    pub fn with_client_auth(mut self, config: &ClientAuthConfig, kek: Option<Kek>) -> Self {
        self.keys = Arc::new(ClientKeys::new(config, Arc::clone(&self.clock)));
        self.kek = kek.map(Arc::new);
        self.assertion_max_lifetime = secs(config.assertion_max_lifetime);
        self.clock_skew = secs(config.clock_skew);
        self.certificate_header = config
            .certificate_header
            .clone()
            .map(|h| (h, config.trusted_proxies.clone()));
        self
    }

    /// The header a connection from `peer` may carry the client certificate in: the
    /// configured `client_auth.certificate_header` when `peer` is a trusted proxy.
    pub fn certificate_header(&self, peer: Option<std::net::IpAddr>) -> Option<&str> {
        let (header, trusted) = self.certificate_header.as_ref()?;
        peer.filter(|p| trusted.contains(p))
            .map(|_| header.as_str())
    }

    /// The client key resolver (for verifying request objects, RFC 9101 §6.1).
    pub fn keys(&self) -> &Arc<ClientKeys> {
        &self.keys
    }

    /// Deletes recorded client assertion `jti`s whose assertion has expired; returns how
    /// many (run by the periodic purge).
    pub async fn purge_assertion_jtis(&self) -> Result<usize, StorageError> {
        repo::purge_assertion_jtis(&self.db, self.clock.now()).await
    }

    /// The context of a sealed secret: its client and row, so a sealed value moved to
    /// another row does not open.
    fn seal_context(client_id: &str, secret_id: &str) -> String {
        format!("client-secret:{client_id}:{secret_id}")
    }

    /// Seals `secret` for row `secret_id` of `client` when its method needs the secret
    /// back (`client_secret_jwt`); `None` otherwise.
    fn seal_for(
        &self,
        client: &Client,
        secret_id: &str,
        secret: &str,
    ) -> Result<Option<String>, AuthzError> {
        if client.auth_method != TokenEndpointAuthMethod::ClientSecretJwt {
            return Ok(None);
        }
        let kek = self.kek.as_ref().ok_or_else(|| {
            AuthzError::Invalid(
                "client_secret_jwt needs keys.encryption_key to seal the client secret".into(),
            )
        })?;
        kek.seal_secret(
            &Self::seal_context(client.id.as_str(), secret_id),
            secret.as_bytes(),
        )
        .map(Some)
        .map_err(|e| AuthzError::Task(e.to_string()))
    }

    // browser clients (CORS)
    /// Whether some registered client allows `origin` ([`Client::allows_origin`]): for
    /// CORS preflights, which carry no client identity (WHATWG Fetch §3.2.2). The set of
    /// allowed origins is read at most once per `clients.cache_ttl` (on every call when
    /// it is zero) and again at once after a change through this registry.
    pub async fn any_allows_origin(&self, origin: &str) -> Result<bool, StorageError> {
        if !self.ttl.is_zero()
            && let Ok(origins) = self.origins.read()
            && let Some((at, set)) = &*origins
            && at.elapsed() < self.ttl
        {
            return Ok(set.contains(origin));
        }
        let set: HashSet<String> = repo::list(&self.db)
            .await?
            .iter()
            .flat_map(Client::origins)
            .collect();
        let found = set.contains(origin);
        if !self.ttl.is_zero()
            && let Ok(mut origins) = self.origins.write()
        {
            *origins = Some((Instant::now(), Arc::new(set)));
        }
        Ok(found)
    }

    async fn entry(&self, id: &str) -> Result<Option<Arc<Entry>>, StorageError> {
        if !self.ttl.is_zero()
            && let Ok(cache) = self.cache.read()
            && let Some((at, entry)) = cache.get(id)
            && at.elapsed() < self.ttl
        {
            return Ok(entry.clone());
        }
        let entry = repo::get(&self.db, id).await?.map(|(client, secrets)| {
            Arc::new(Entry {
                client: Arc::new(client),
                secrets,
            })
        });
        if !self.ttl.is_zero()
            && let Ok(mut cache) = self.cache.write()
        {
            if cache.len() >= CACHE_LIMIT {
                cache.clear();
            }
            cache.insert(id.to_owned(), (Instant::now(), entry.clone()));
        }
        Ok(entry)
    }

    /// The client `id` (through the cache), without authenticating it: for the
    /// authorization endpoint, where the client is identified by `client_id` and its
    /// registered redirect URI, not by a secret (RFC 6749 §3.1).
    pub async fn find(&self, id: &str) -> Result<Option<Arc<Client>>, StorageError> {
        Ok(self.entry(id).await?.map(|e| Arc::clone(&e.client)))
    }

    /// Whether a token issued to `client_id` at `iat` (Unix seconds) may still be honoured:
    /// the client exists and was registered no later than the token was issued, so a
    /// deleted client's tokens die with it (RFC 7009 §2.2) and a client registered again
    /// under the same id (`serve --reset-demo`, or delete and create) does not inherit the
    /// tokens of its predecessor. Through the cache, as [`Clients::find`].
    pub async fn honours(&self, client_id: &str, iat: i64) -> Result<bool, StorageError> {
        Ok(self
            .entry(client_id)
            .await?
            .is_some_and(|e| e.client.created_at <= iat))
    }

    fn forget(&self, id: &str) {
        if let Ok(mut cache) = self.cache.write() {
            cache.remove(id);
        }
        if let Ok(mut origins) = self.origins.write() {
            *origins = None;
        }
    }

    /// Authenticates a client (RFC 6749 §2.3): the method must be the one it is registered
    /// with, and the secret must match one of its unexpired secrets (compared in constant
    /// time). Unknown clients take the same path, so timing does not tell them apart.
    ///
    /// clientauth: a client registered for `client_secret_basic` or `client_secret_post`
    /// may send its secret either way (RFC 6749 §2.3.1); a client assertion is verified as
    /// [`Clients::check_assertion`] says; any other mismatch is
    /// [`ClientAuthError::WrongMethod`], naming the registered method.
    #[instrument(skip_all, fields(client_id = %credentials.client_id()))]
    pub async fn authenticate(
        &self,
        credentials: &Credentials,
        context: &AuthContext,
    ) -> Result<Arc<Client>, ClientAuthError> {
        let entry = self.entry(credentials.client_id()).await?;
        let presented = credentials.secret().map(digest);
        let now = self.clock.now();
        let Some(entry) = entry else {
            if let Some(p) = presented {
                let _ = constant_time_eq(&p, &[0u8; 32]);
            }
            return Err(ClientAuthError::Invalid);
        };
        if !credentials.fits(entry.client.auth_method) {
            return Err(ClientAuthError::WrongMethod {
                registered: entry.client.auth_method,
                used: credentials.method(),
            });
        }
        if let Credentials::Assertion { assertion, .. } = credentials {
            self.check_assertion(&entry, assertion, context, now)
                .await?;
            return Ok(Arc::clone(&entry.client));
        }
        // clientauth: mTLS (RFC 8705 §2).
        let registered = entry.client.auth_method;
        if matches!(
            registered,
            TokenEndpointAuthMethod::TlsClientAuth
                | TokenEndpointAuthMethod::SelfSignedTlsClientAuth
        ) {
            let Some(presented) = &context.certificate else {
                return Err(ClientAuthError::WrongMethod {
                    registered,
                    used: credentials.method(),
                });
            };
            let der = &presented.der[..];
            let checked = if registered == TokenEndpointAuthMethod::TlsClientAuth {
                // RFC 8705 §2.1: the PKI method needs a chain to a trusted anchor.
                match &entry.client.tls_client_auth {
                    _ if !presented.chain_verified => {
                        Err("the client certificate is not issued by a CA this server trusts")
                    }
                    Some(subject) => certificate::matches_subject(der, subject, now),
                    None => Err("no certificate subject is registered"),
                }
            } else {
                match self.keys.key_set(&entry.client, false).await {
                    Ok(keys) => certificate::matches_jwks(der, &keys, now),
                    Err(_) => Err("the client's keys are not available"),
                }
            };
            checked.map_err(ClientAuthError::Certificate)?;
            return Ok(Arc::clone(&entry.client));
        }
        match presented {
            None => Ok(Arc::clone(&entry.client)),
            Some(p) => {
                let mut ok = false;
                for s in &entry.secrets {
                    ok |= constant_time_eq(&p, &s.digest) & s.is_valid_at(now);
                }
                if ok {
                    Ok(Arc::clone(&entry.client))
                } else {
                    Err(ClientAuthError::Invalid)
                }
            }
        }
    }

    /// The secret a new client is stored with: none for a public client (which must not be
    /// given one), else the given one or a generated 256-bit secret.
    ///
    /// clientauth: only the shared-secret methods (`client_secret_basic`,
    /// `client_secret_post`, `client_secret_jwt`) have a secret; the key and certificate
    /// methods get none. The client's authentication settings must be coherent
    /// ([`Client::auth_problem`]).
    fn new_secret(new: &NewClient) -> Result<Option<String>, AuthzError> {
        if let Some(problem) = new.client.auth_problem() {
            return Err(AuthzError::Invalid(problem));
        }
        if !new.client.auth_method.uses_secret() {
            if new.secret.is_some() {
                return Err(AuthzError::Invalid(format!(
                    "a client using {} has no secret",
                    new.client.auth_method
                )));
            }
            return Ok(None);
        }
        Ok(Some(match &new.secret {
            Some(given) => given.clone(),
            None => {
                generate_secret().map_err(|_| AuthzError::Task("no randomness available".into()))?
            }
        }))
    }

    // clientauth
    /// Checks a client assertion (RFC 7523 §3, OpenID Connect Core §9) of a client
    /// registered for `private_key_jwt` (signed with a key of its `jwks`/`jwks_uri`) or
    /// `client_secret_jwt` (HS256 under one of its unexpired secrets):
    /// - the signature algorithm is on the method's allowlist (and is the registered
    ///   `token_endpoint_auth_signing_alg` if there is one): never `none`, never HMAC with
    ///   a public key;
    /// - `iss` and `sub` are the client id; `aud` holds the issuer or the endpoint's URL;
    /// - `exp` is present, not past, and at most `client_auth.assertion_max_lifetime`
    ///   ahead; `nbf` and `iat`, when present, are not in the future (all with
    ///   `client_auth.clock_skew`);
    /// - `jti` is present and has not been used before by this client: recorded in the
    ///   database until the assertion expires, so a replay is refused on every replica.
    async fn check_assertion(
        &self,
        entry: &Entry,
        assertion: &str,
        context: &AuthContext,
        now: i64,
    ) -> Result<(), ClientAuthError> {
        let client = &entry.client;
        let allowed: Vec<&str> = assertion_algorithms(client.auth_method)
            .iter()
            .copied()
            .filter(|a| {
                client
                    .token_endpoint_auth_signing_alg
                    .as_deref()
                    .is_none_or(|only| only == *a)
            })
            .collect();
        let reject = |e: KeyError| ClientAuthError::Assertion(e.to_string());
        let claims = if client.auth_method == TokenEndpointAuthMethod::ClientSecretJwt {
            self.verify_hmac(entry, assertion, &allowed, now)
                .map_err(reject)?
        } else {
            let algorithms: Vec<Algorithm> =
                allowed.iter().filter_map(|a| a.parse().ok()).collect();
            self.keys
                .verify(client, assertion, &algorithms)
                .await
                .map_err(reject)?
                .claims
        };
        let exp = self.check_claims(client, &claims, context, now)?;
        let jti = claims
            .get("jti")
            .and_then(Value::as_str)
            .filter(|j| !j.is_empty() && j.len() <= 256)
            .ok_or_else(|| ClientAuthError::Assertion("jti is required".into()))?;
        if !repo::record_assertion_jti(&self.db, client.id.as_str(), jti, exp + self.clock_skew)
            .await?
        {
            metrics::counter!("client_assertion_replays_total").increment(1);
            return Err(ClientAuthError::Assertion(
                "the assertion (jti) was already used".into(),
            ));
        }
        Ok(())
    }

    /// `client_secret_jwt`: verifies the HS256 signature (RFC 7518 §3.2, compared in
    /// constant time by ring) under each unexpired secret of the client, opened from its
    /// sealed form. Returns the claims.
    fn verify_hmac(
        &self,
        entry: &Entry,
        assertion: &str,
        allowed: &[&str],
        now: i64,
    ) -> Result<Map<String, Value>, KeyError> {
        let jws = UnverifiedJws::parse(assertion)?;
        if !jws.alg().is_some_and(|a| allowed.contains(&a)) {
            return Err(KeyError::AlgorithmNotAllowed);
        }
        let Some(kek) = &self.kek else {
            tracing::warn!(
                "client_secret_jwt assertion, but no key-encryption key to open secrets"
            );
            return Err(KeyError::NoKeys);
        };
        let mut ok = false;
        for secret in entry.secrets.iter().filter(|s| s.is_valid_at(now)) {
            let Some(sealed) = &secret.sealed else {
                continue;
            };
            let context = Self::seal_context(entry.client.id.as_str(), &secret.id);
            let Ok(key) = kek.open_secret(&context, sealed) else {
                tracing::warn!("a sealed client secret does not open with the key-encryption key");
                continue;
            };
            let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key);
            ok |= ring::hmac::verify(&key, jws.signing_input.as_bytes(), &jws.signature).is_ok();
        }
        if !ok {
            return Err(KeyError::BadSignature);
        }
        Ok(jws.claims)
    }

    /// The registered-claim checks of RFC 7523 §3 on a verified assertion; returns `exp`.
    fn check_claims(
        &self,
        client: &Client,
        claims: &Map<String, Value>,
        context: &AuthContext,
        now: i64,
    ) -> Result<i64, ClientAuthError> {
        let fail = |m: &str| ClientAuthError::Assertion(m.to_owned());
        let id = client.id.as_str();
        if claims.get("iss").and_then(Value::as_str) != Some(id) {
            return Err(fail("iss must be the client_id"));
        }
        if claims.get("sub").and_then(Value::as_str) != Some(id) {
            return Err(fail("sub must be the client_id"));
        }
        let aud_ok = match claims.get("aud") {
            Some(Value::String(a)) => context.audiences.iter().any(|x| x == a),
            Some(Value::Array(list)) => list
                .iter()
                .filter_map(Value::as_str)
                .any(|a| context.audiences.iter().any(|x| x == a)),
            _ => false,
        };
        if !aud_ok {
            return Err(fail(
                "aud must contain the issuer or the URL of the endpoint called",
            ));
        }
        let time = |k: &str| {
            claims.get(k).map(|v| {
                v.as_i64()
                    .ok_or_else(|| fail(&format!("{k} must be a number")))
            })
        };
        let exp = time("exp").ok_or_else(|| fail("exp is required"))??;
        if exp + self.clock_skew <= now {
            return Err(fail("the assertion has expired"));
        }
        if exp - now > self.assertion_max_lifetime + self.clock_skew {
            return Err(fail("exp is too far in the future"));
        }
        if let Some(nbf) = time("nbf").transpose()?
            && nbf > now + self.clock_skew
        {
            return Err(fail("the assertion is not valid yet (nbf)"));
        }
        if let Some(iat) = time("iat").transpose()?
            && iat > now + self.clock_skew
        {
            return Err(fail("iat is in the future"));
        }
        Ok(exp)
    }

    /// Registers a client. Confidential clients get a generated 256-bit secret unless one
    /// is given; it is returned once and only its digest is stored. An existing client id
    /// is a [`AuthzError::Conflict`] and changes nothing.
    pub async fn create(&self, new: NewClient) -> Result<(Client, Option<String>), AuthzError> {
        self.create_audited(new, None).await
    }

    /// [`Clients::create`] with `event` appended to the audit trail in the same transaction
    /// (issue 18: an admin write and its record commit or roll back together).
    pub async fn create_audited(
        &self,
        new: NewClient,
        event: Option<&audit::AuditEvent>,
    ) -> Result<(Client, Option<String>), AuthzError> {
        let secret = Self::new_secret(&new)?;
        let mut client = new.client;
        let now = self.clock.now();
        client.created_at = now;
        client.updated_at = now;
        let secret_id =
            random_id().map_err(|_| AuthzError::Task("no randomness available".into()))?;
        let sealed = match &secret {
            Some(s) => self.seal_for(&client, &secret_id, s)?,
            None => None,
        };
        let inserted = repo::insert(
            &self.db,
            &client,
            secret
                .as_deref()
                .map(|s| (secret_id.as_str(), digest(s), sealed.as_deref())),
            event,
        )
        .await
        .map_err(|e| {
            if e.is_unique_violation() {
                AuthzError::Conflict(format!("client {} already exists", client.id))
            } else {
                e.into()
            }
        })?;
        if !inserted {
            return Err(AuthzError::Conflict(format!(
                "client {} already exists",
                client.id
            )));
        }
        self.forget(client.id.as_str());
        Ok((client, secret))
    }

    /// Registers each of `clients` that is missing, leaving an existing client with the same
    /// id untouched (its settings, secrets and `created_at` stay as they are). With `reset`,
    /// each is first deleted with everything issued to it, as [`Clients::delete`] does, so
    /// it is registered afresh. One transaction: on any error nothing is changed. Returns,
    /// in order, what happened to each.
    pub async fn seed(
        &self,
        clients: Vec<NewClient>,
        reset: bool,
    ) -> Result<Vec<SeedOutcome>, AuthzError> {
        let now = self.clock.now();
        let mut prepared = Vec::with_capacity(clients.len());
        for new in clients {
            let secret = Self::new_secret(&new)?;
            let mut client = new.client;
            client.created_at = now;
            client.updated_at = now;
            let secret_id =
                random_id().map_err(|_| AuthzError::Task("no randomness available".into()))?;
            let sealed = match &secret {
                Some(s) => self.seal_for(&client, &secret_id, s)?,
                None => None,
            };
            prepared.push((client, secret.map(|s| (secret_id, digest(&s), sealed))));
        }
        let rows: Vec<(&Client, Option<repo::NewSecret>)> = prepared
            .iter()
            .map(|(c, s)| {
                (
                    c,
                    s.as_ref()
                        .map(|(id, d, sealed)| (id.as_str(), *d, sealed.as_deref())),
                )
            })
            .collect();
        let done = repo::seed(&self.db, reset, now, &rows).await?;
        for (client, _) in &prepared {
            self.forget(client.id.as_str());
        }
        Ok(prepared
            .iter()
            .zip(done)
            .map(|((client, _), d)| SeedOutcome {
                id: client.id.clone(),
                deleted: d.deleted,
                created: d.created,
            })
            .collect())
    }

    /// A client and its secrets.
    pub async fn get(&self, id: &str) -> Result<Option<(Client, Vec<Secret>)>, AuthzError> {
        Ok(repo::get(&self.db, id).await?)
    }

    /// Every client.
    pub async fn list(&self) -> Result<Vec<Client>, AuthzError> {
        Ok(repo::list(&self.db).await?)
    }

    /// Replaces a client's settings.
    pub async fn update(&self, client: Client) -> Result<Client, AuthzError> {
        self.update_audited(client, None).await
    }

    /// [`Clients::update`] with `event` appended to the audit trail in the same transaction.
    pub async fn update_audited(
        &self,
        mut client: Client,
        event: Option<&audit::AuditEvent>,
    ) -> Result<Client, AuthzError> {
        if let Some(problem) = client.auth_problem() {
            return Err(AuthzError::Invalid(problem));
        }
        client.updated_at = self.clock.now();
        if !repo::update(&self.db, &client, event).await? {
            return Err(AuthzError::NotFound(format!("no client {}", client.id)));
        }
        self.forget(client.id.as_str());
        Ok(client)
    }

    /// Deletes a client with everything issued to it, in one transaction: its secrets,
    /// opaque access tokens, pending authorization requests, codes, remembered consents and
    /// grants with their refresh tokens; the unexpired JWT access tokens issued from its
    /// grants go on the denylist. JWT access tokens of the `client_credentials` grant are
    /// recorded nowhere: introspection refuses them once the client is gone
    /// ([`Clients::honours`]), resource servers verifying them locally accept them until
    /// they expire.
    pub async fn delete(&self, id: &str) -> Result<(), AuthzError> {
        self.delete_audited(id, None).await
    }

    /// [`Clients::delete`] with `event` appended to the audit trail in the same transaction.
    pub async fn delete_audited(
        &self,
        id: &str,
        event: Option<&audit::AuditEvent>,
    ) -> Result<(), AuthzError> {
        if !repo::delete(&self.db, id, self.clock.now(), event).await? {
            return Err(AuthzError::NotFound(format!("no client {id}")));
        }
        self.forget(id);
        Ok(())
    }

    /// Issues a new generated secret; the previous ones keep working for `grace`, then
    /// stop. Returns the new secret (shown once).
    pub async fn rotate_secret(&self, id: &str, grace: Duration) -> Result<String, AuthzError> {
        self.rotate_secret_audited(id, grace, None).await
    }

    /// [`Clients::rotate_secret`] with `event` appended to the audit trail in the same
    /// transaction.
    pub async fn rotate_secret_audited(
        &self,
        id: &str,
        grace: Duration,
        event: Option<&audit::AuditEvent>,
    ) -> Result<String, AuthzError> {
        let Some((client, _)) = repo::get(&self.db, id).await? else {
            return Err(AuthzError::NotFound(format!("no client {id}")));
        };
        if !client.auth_method.uses_secret() {
            return Err(AuthzError::Invalid(format!(
                "a client using {} has no secret to rotate",
                client.auth_method
            )));
        }
        let secret =
            generate_secret().map_err(|_| AuthzError::Task("no randomness available".into()))?;
        let secret_id =
            random_id().map_err(|_| AuthzError::Task("no randomness available".into()))?;
        let now = self.clock.now();
        let grace = i64::try_from(grace.as_secs()).unwrap_or(i64::MAX / 2);
        let sealed = self.seal_for(&client, &secret_id, &secret)?;
        repo::rotate_secret(
            &self.db,
            id,
            &secret_id,
            digest(&secret),
            sealed.as_deref(),
            now,
            now + grace,
            event,
        )
        .await?;
        self.forget(id);
        Ok(secret)
    }

    // admin API (issue 18)
    /// Up to `limit` clients matching `filter` in id order, with their revisions.
    pub(crate) async fn page(
        &self,
        filter: &repo::ClientFilter,
        limit: usize,
    ) -> Result<Vec<(Client, i64)>, AuthzError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Ok(repo::page(&self.db, filter, limit).await?)
    }

    /// A client, its secrets and its revision (the admin API's ETag).
    pub(crate) async fn get_with_revision(
        &self,
        id: &str,
    ) -> Result<Option<(Client, Vec<Secret>, i64)>, AuthzError> {
        let Some((client, secrets)) = repo::get(&self.db, id).await? else {
            return Ok(None);
        };
        let Some(revision) = repo::revision(&self.db, id).await? else {
            return Ok(None);
        };
        Ok(Some((client, secrets, revision)))
    }

    /// Replaces a client's settings if its revision is still `expected`: the new revision,
    /// or `None` when someone else changed (or deleted) it since. The winner's `event` is
    /// appended to the audit trail in the same transaction.
    pub(crate) async fn update_if(
        &self,
        mut client: Client,
        expected: i64,
        event: Option<&audit::AuditEvent>,
    ) -> Result<Option<(Client, i64)>, AuthzError> {
        client.updated_at = self.clock.now();
        let revision = repo::update_if(&self.db, &client, expected, event).await?;
        self.forget(client.id.as_str());
        Ok(revision.map(|r| (client, r)))
    }

    // dcr: Dynamic Client Registration (RFC 7591, RFC 7592)
    /// Registers a dynamically registered client (RFC 7591 §3.2.1) in one transaction: one
    /// use of the initial access token `initial_token` (a row id; `None` for open
    /// registration), the client with a generated 256-bit secret unless it is public, and
    /// the digest of its registration access token. `Ok(None)`: the initial access token
    /// has no use left, expired or was revoked meanwhile, and nothing was written.
    pub(crate) async fn register(
        &self,
        mut client: Client,
        access_token: [u8; 32],
        initial_token: Option<&str>,
    ) -> Result<Option<(Client, Option<String>)>, AuthzError> {
        let secret = Self::new_secret(&NewClient {
            client: client.clone(),
            secret: None,
        })?;
        let now = self.clock.now();
        client.created_at = now;
        client.updated_at = now;
        let secret_id =
            random_id().map_err(|_| AuthzError::Task("no randomness available".into()))?;
        let sealed = match &secret {
            Some(s) => self.seal_for(&client, &secret_id, s)?,
            None => None,
        };
        let outcome = repo::insert_registered(
            &self.db,
            &client,
            secret
                .as_deref()
                .map(|s| (secret_id.as_str(), digest(s), sealed.as_deref())),
            access_token,
            initial_token,
            now,
        )
        .await?;
        match outcome {
            repo::Registered::Done => {
                self.forget(client.id.as_str());
                Ok(Some((client, secret)))
            }
            repo::Registered::TokenSpent => Ok(None),
            repo::Registered::Exists => Err(AuthzError::Conflict(format!(
                "client {} already exists",
                client.id
            ))),
        }
    }

    /// Whether `presented` is the registration access token of the dynamically registered
    /// client `id` (RFC 7592 §3), compared in constant time; `false` for unknown clients
    /// and for clients registered otherwise (CLI, admin), which have none.
    #[instrument(skip_all)]
    pub(crate) async fn registration_token_matches(
        &self,
        id: &str,
        presented: &str,
    ) -> Result<bool, StorageError> {
        let stored = repo::registration_token_digest(&self.db, id).await?;
        let presented = digest(presented);
        Ok(match stored {
            Some(d) => constant_time_eq(&presented, &d),
            None => {
                let _ = constant_time_eq(&presented, &[0u8; 32]);
                false
            }
        })
    }

    /// Whether `presented` is one of the unexpired secrets of client `id` (RFC 7592 §2.2:
    /// a `client_secret` in an update must be the current one), compared in constant time.
    #[instrument(skip_all)]
    pub(crate) async fn secret_matches(
        &self,
        id: &str,
        presented: &str,
    ) -> Result<bool, StorageError> {
        let presented = digest(presented);
        let now = self.clock.now();
        let secrets = repo::get(&self.db, id)
            .await?
            .map(|(_, s)| s)
            .unwrap_or_default();
        let mut ok = false;
        for s in &secrets {
            ok |= constant_time_eq(&presented, &s.digest) & s.is_valid_at(now);
        }
        Ok(ok)
    }

    /// Replaces a dynamically registered client's settings and its registration access
    /// token digest in one transaction (RFC 7592 §2.2). `Ok(None)`: it is gone.
    pub(crate) async fn update_registered(
        &self,
        mut client: Client,
        access_token: [u8; 32],
    ) -> Result<Option<Client>, AuthzError> {
        client.updated_at = self.clock.now();
        if !repo::update_registered(&self.db, &client, access_token).await? {
            return Ok(None);
        }
        self.forget(client.id.as_str());
        Ok(Some(client))
    }
}
