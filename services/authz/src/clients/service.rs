use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use domain::{ClientId, TokenEndpointAuthMethod, constant_time_eq};
use issuer::Clock;
use storage::{Database, StorageError};
use tracing::instrument;

use super::model::{Client, NewClient, Secret, digest, generate_secret, random_id};
use super::repo;
use crate::AuthzError;

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
            Self::Basic { id, .. } | Self::Post { id, .. } | Self::PublicId { id } => id,
        }
    }

    /// The method this presentation corresponds to.
    pub fn method(&self) -> TokenEndpointAuthMethod {
        match self {
            Self::Basic { .. } => TokenEndpointAuthMethod::ClientSecretBasic,
            Self::Post { .. } => TokenEndpointAuthMethod::ClientSecretPost,
            Self::PublicId { .. } => TokenEndpointAuthMethod::None,
        }
    }

    fn secret(&self) -> Option<&str> {
        match self {
            Self::Basic { secret, .. } | Self::Post { secret, .. } => Some(secret),
            Self::PublicId { .. } => None,
        }
    }
}

/// Why client authentication failed; every variant is `invalid_client` on the wire and
/// none says whether the client exists.
#[derive(Debug, thiserror::Error)]
pub enum ClientAuthError {
    /// Unknown client, wrong secret, expired secret, or a method the client is not
    /// registered for.
    #[error("client authentication failed")]
    Invalid,
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
}

impl Clients {
    /// A registry over `db`, caching entries for `cache_ttl` (zero disables the cache).
    pub fn new(db: Database, clock: Arc<dyn Clock>, cache_ttl: Duration) -> Self {
        Self {
            db,
            clock,
            ttl: cache_ttl,
            cache: RwLock::new(HashMap::new()),
            origins: RwLock::new(None),
        }
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
    #[instrument(skip_all, fields(client_id = %credentials.client_id()))]
    pub async fn authenticate(
        &self,
        credentials: &Credentials,
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
        if entry.client.auth_method != credentials.method() {
            return Err(ClientAuthError::Invalid);
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
    fn new_secret(new: &NewClient) -> Result<Option<String>, AuthzError> {
        match new.client.auth_method {
            TokenEndpointAuthMethod::None => {
                if new.secret.is_some() {
                    return Err(AuthzError::Invalid(
                        "a public client (auth method none) has no secret".into(),
                    ));
                }
                Ok(None)
            }
            _ => Ok(Some(match &new.secret {
                Some(given) => given.clone(),
                None => generate_secret()
                    .map_err(|_| AuthzError::Task("no randomness available".into()))?,
            })),
        }
    }

    /// Registers a client. Confidential clients get a generated 256-bit secret unless one
    /// is given; it is returned once and only its digest is stored. An existing client id
    /// is a [`AuthzError::Conflict`] and changes nothing.
    pub async fn create(&self, new: NewClient) -> Result<(Client, Option<String>), AuthzError> {
        let secret = Self::new_secret(&new)?;
        let mut client = new.client;
        let now = self.clock.now();
        client.created_at = now;
        client.updated_at = now;
        let secret_id =
            random_id().map_err(|_| AuthzError::Task("no randomness available".into()))?;
        let inserted = repo::insert(
            &self.db,
            &client,
            secret.as_deref().map(|s| (secret_id.as_str(), digest(s))),
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
            prepared.push((client, secret.map(|s| (secret_id, digest(&s)))));
        }
        let rows: Vec<(&Client, Option<repo::NewSecret>)> = prepared
            .iter()
            .map(|(c, s)| (c, s.as_ref().map(|(id, d)| (id.as_str(), *d))))
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
    pub async fn update(&self, mut client: Client) -> Result<Client, AuthzError> {
        client.updated_at = self.clock.now();
        if !repo::update(&self.db, &client).await? {
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
        if !repo::delete(&self.db, id, self.clock.now()).await? {
            return Err(AuthzError::NotFound(format!("no client {id}")));
        }
        self.forget(id);
        Ok(())
    }

    /// Issues a new generated secret; the previous ones keep working for `grace`, then
    /// stop. Returns the new secret (shown once).
    pub async fn rotate_secret(&self, id: &str, grace: Duration) -> Result<String, AuthzError> {
        let Some((client, _)) = repo::get(&self.db, id).await? else {
            return Err(AuthzError::NotFound(format!("no client {id}")));
        };
        if client.auth_method == TokenEndpointAuthMethod::None {
            return Err(AuthzError::Invalid(
                "a public client has no secret to rotate".into(),
            ));
        }
        let secret =
            generate_secret().map_err(|_| AuthzError::Task("no randomness available".into()))?;
        let secret_id =
            random_id().map_err(|_| AuthzError::Task("no randomness available".into()))?;
        let now = self.clock.now();
        let grace = i64::try_from(grace.as_secs()).unwrap_or(i64::MAX / 2);
        repo::rotate_secret(&self.db, id, &secret_id, digest(&secret), now, now + grace).await?;
        self.forget(id);
        Ok(secret)
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
        let outcome = repo::insert_registered(
            &self.db,
            &client,
            secret.as_deref().map(|s| (secret_id.as_str(), digest(s))),
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
