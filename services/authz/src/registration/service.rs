//! The registration service: initial access tokens and the RFC 7591 / RFC 7592 operations.

use std::sync::Arc;
use std::time::Duration;

use domain::{ClientId, ScopeSet};
use issuer::Clock;
use serde_json::Value;
use storage::Database;
use tracing::instrument;

use super::metadata::{self, MetadataError, Policy};
use super::model::InitialAccessToken;
use super::repo;
use crate::AuthzError;
use crate::clients::{Client, Clients};
use crate::config::RegistrationConfig;
use crate::error::Failure;

/// Why a registration request fails; mapped once at the HTTP edge.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RegistrationError {
    /// No, an unknown, expired, used-up or revoked initial access token, or a wrong
    /// registration access token (RFC 6750 §3.1 `invalid_token`, 401). Never says which.
    #[error("{0}")]
    InvalidToken(&'static str),
    /// `invalid_redirect_uri` or `invalid_client_metadata` (RFC 7591 §3.2.2, 400).
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    /// A malformed request that is not about metadata (`invalid_request`, 400).
    #[error("{0}")]
    InvalidRequest(String),
    /// The database or something inside authz failed.
    #[error(transparent)]
    Failed(#[from] Failure),
}

impl From<storage::StorageError> for RegistrationError {
    fn from(e: storage::StorageError) -> Self {
        Self::Failed(Failure::from(e))
    }
}

impl From<AuthzError> for RegistrationError {
    fn from(e: AuthzError) -> Self {
        match e {
            AuthzError::Storage(s) => Self::from(s),
            AuthzError::Invalid(m) => Self::Metadata(MetadataError::Metadata(m)),
            other => Self::Failed(Failure::internal(other)),
        }
    }
}

/// A successful registration or update: the client and the credentials to show once.
#[derive(Debug)]
pub(crate) struct Registration {
    /// The client as stored.
    pub(crate) client: Client,
    /// Its secret (registration only, confidential clients only).
    pub(crate) client_secret: Option<String>,
    /// The new registration access token.
    pub(crate) registration_access_token: String,
}

impl Registration {
    /// The RFC 7591 §3.2.1 response body (RFC 7592 §3 for reads and updates): the
    /// registered metadata, the credentials shown once, and `registration_client_uri`.
    pub(crate) fn to_json(&self, registration_client_uri: &str) -> Value {
        let mut body = metadata::view(&self.client);
        if let Some(s) = &self.client_secret {
            body["client_secret"] = s.clone().into();
        }
        if self.client.auth_method.uses_secret() {
            // Generated secrets do not expire (RFC 7591 §3.2.1: 0 means never).
            body["client_secret_expires_at"] = 0.into();
        }
        body["registration_access_token"] = self.registration_access_token.clone().into();
        body["registration_client_uri"] = registration_client_uri.into();
        body
    }
}

fn random_token() -> Result<String, Failure> {
    crate::clients::generated_id()
        .and_then(|a| crate::clients::generated_id().map(|b| format!("{a}{b}")))
        .map_err(|_| Failure::internal("no randomness available"))
}

/// Initial access tokens and dynamic registrations.
pub struct Registrations {
    db: Database,
    clients: Arc<Clients>,
    clock: Arc<dyn Clock>,
    config: RegistrationConfig,
}

impl Registrations {
    /// The service over `db`, registering through `clients` (so its cache sees changes).
    pub fn new(
        db: Database,
        clients: Arc<Clients>,
        clock: Arc<dyn Clock>,
        config: RegistrationConfig,
    ) -> Self {
        Self {
            db,
            clients,
            clock,
            config,
        }
    }

    /// Mints an initial access token (RFC 7591 §3) allowing `uses` registrations until
    /// `ttl` from now, of clients with at most `scope`. Returns it with its value, which
    /// is shown once: only its SHA-256 is stored.
    #[instrument(skip_all)]
    pub async fn create_token(
        &self,
        description: String,
        scope: ScopeSet,
        ttl: Duration,
        uses: u32,
    ) -> Result<(InitialAccessToken, String), AuthzError> {
        let (token, value, _) = self
            .create_token_audited(description, scope, ttl, uses, None)
            .await?;
        Ok((token, value))
    }

    /// [`Registrations::create_token`] with `event`, its target set to the new token,
    /// appended to the audit trail in the insert's transaction (issue 18); returns the
    /// event as committed, to be logged.
    #[instrument(skip_all)]
    pub async fn create_token_audited(
        &self,
        description: String,
        scope: ScopeSet,
        ttl: Duration,
        uses: u32,
        event: Option<audit::AuditEvent>,
    ) -> Result<(InitialAccessToken, String, Option<audit::AuditEvent>), AuthzError> {
        if uses == 0 {
            return Err(AuthzError::Invalid("--uses must be at least 1".into()));
        }
        let secs = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 4);
        if secs <= 0 {
            return Err(AuthzError::Invalid("--expires must be at least 1s".into()));
        }
        let value = random_token().map_err(|e| AuthzError::Task(e.to_string()))?;
        let now = self.clock.now();
        let token = InitialAccessToken {
            id: crate::clients::generated_id()?,
            description,
            scope,
            uses_left: i64::from(uses),
            created_at: now,
            expires_at: now.saturating_add(secs),
        };
        let event = event.map(|e| e.target(audit::TargetKind::RegistrationToken, &token.id));
        repo::insert(
            &self.db,
            &token,
            &domain::secret::digest_hex(&value),
            event.as_ref(),
        )
        .await?;
        Ok((token, value, event))
    }

    /// The scope of an initial access token minted without one: `registration.open_scope`.
    pub fn default_scope(&self) -> ScopeSet {
        self.config.open_scopes()
    }

    /// Every initial access token (never their values), newest first.
    pub async fn list_tokens(&self) -> Result<Vec<InitialAccessToken>, AuthzError> {
        Ok(repo::list(&self.db).await?)
    }

    /// Revokes an initial access token at once; clients registered with it stay.
    pub async fn revoke_token(&self, id: &str) -> Result<(), AuthzError> {
        self.revoke_token_audited(id, None).await
    }

    /// [`Registrations::revoke_token`] with `event` appended to the audit trail in the same
    /// transaction (issue 18).
    pub async fn revoke_token_audited(
        &self,
        id: &str,
        event: Option<&audit::AuditEvent>,
    ) -> Result<(), AuthzError> {
        if !repo::delete(&self.db, id, event).await? {
            return Err(AuthzError::NotFound(format!("no registration token {id}")));
        }
        Ok(())
    }

    /// RFC 7591 §3: registers a client. `bearer` is the initial access token presented
    /// (RFC 6750 §2.1); without one, only open registration ([`RegistrationConfig::open`])
    /// applies. Every metadata value is checked before anything is written; then one
    /// transaction spends a use of the token and stores the client, its secret and its
    /// registration access token, or writes nothing.
    #[instrument(skip_all)]
    pub(crate) async fn register(
        &self,
        bearer: Option<&str>,
        body: &[u8],
    ) -> Result<Registration, RegistrationError> {
        let now = self.clock.now();
        let (policy, token_id) = match bearer {
            Some(value) => {
                let token = repo::find_by_hash(&self.db, &domain::secret::digest_hex(value))
                    .await?
                    .filter(|t| t.is_usable_at(now))
                    .ok_or(RegistrationError::InvalidToken(
                        "the initial access token is invalid, expired or used up",
                    ))?;
                (
                    Policy {
                        scope: token.scope.clone(),
                        open: false,
                    },
                    Some(token.id),
                )
            }
            None if self.config.open => (
                Policy {
                    scope: self.config.open_scopes(),
                    open: true,
                },
                None,
            ),
            None => {
                return Err(RegistrationError::InvalidToken(
                    "an initial access token is required",
                ));
            }
        };
        let obj = metadata::parse_object(body)?;
        let id = ClientId::parse(&crate::clients::generated_id().map_err(RegistrationError::from)?)
            .map_err(Failure::internal)?;
        let mut client = Client::new(id.clone(), id.to_string());
        metadata::apply(&obj, &mut client, &policy)?;
        let access_token = random_token()?;
        let registered = self
            .clients
            .register(
                client,
                domain::secret::digest(&access_token),
                token_id.as_deref(),
            )
            .await?;
        let (client, client_secret) = registered.ok_or(RegistrationError::InvalidToken(
            "the initial access token is invalid, expired or used up",
        ))?;
        metrics::counter!("clients_registered_total").increment(1);
        tracing::info!(client_id = %client.id, "client registered dynamically");
        Ok(Registration {
            client,
            client_secret,
            registration_access_token: access_token,
        })
    }

    /// The client `id` if `bearer` is its registration access token (RFC 7592 §3: an
    /// unknown client and a wrong token look the same).
    async fn authorized(
        &self,
        id: &str,
        bearer: Option<&str>,
    ) -> Result<Client, RegistrationError> {
        let denied = RegistrationError::InvalidToken("the registration access token is invalid");
        let Some(bearer) = bearer else {
            return Err(denied);
        };
        if !self.clients.registration_token_matches(id, bearer).await? {
            return Err(denied);
        }
        match self.clients.get(id).await? {
            Some((client, _)) => Ok(client),
            None => Err(denied),
        }
    }

    /// RFC 7592 §2.1: the registered metadata. The registration access token stays as it
    /// is; the response does not repeat it (the caller adds `registration_client_uri`).
    #[instrument(skip_all)]
    pub(crate) async fn read(
        &self,
        id: &str,
        bearer: Option<&str>,
    ) -> Result<Value, RegistrationError> {
        let client = self.authorized(id, bearer).await?;
        let mut body = metadata::view(&client);
        if client.auth_method.uses_secret() {
            body["client_secret_expires_at"] = 0.into();
        }
        Ok(body)
    }

    /// RFC 7592 §2.2: replaces the metadata with the request's (omitted fields return to
    /// their defaults) under the same policy as registration (its initial access token's
    /// scope is not remembered, so the scope stays within what the client has or the open
    /// scope), and issues a new registration access token; the old one stops working. The
    /// body's `client_id` must be the client's; `client_secret`, if sent, must be its
    /// current one; the server-set fields must not be sent. A public client stays public
    /// and a confidential one confidential.
    #[instrument(skip_all)]
    pub(crate) async fn update(
        &self,
        id: &str,
        bearer: Option<&str>,
        body: &[u8],
    ) -> Result<Registration, RegistrationError> {
        let current = self.authorized(id, bearer).await?;
        let obj = metadata::parse_object(body)?;
        match obj.get("client_id") {
            Some(Value::String(given)) if given == id => {}
            _ => {
                return Err(RegistrationError::InvalidRequest(
                    "the body's client_id must be the client's (RFC 7592 §2.2)".into(),
                ));
            }
        }
        for field in [
            "registration_access_token",
            "registration_client_uri",
            "client_secret_expires_at",
            "client_id_issued_at",
        ] {
            if obj.contains_key(field) {
                return Err(RegistrationError::InvalidRequest(format!(
                    "{field} is set by the server and must not be sent (RFC 7592 §2.2)"
                )));
            }
        }
        if let Some(given) = obj.get("client_secret") {
            let Value::String(given) = given else {
                return Err(RegistrationError::InvalidRequest(
                    "client_secret must be a string".into(),
                ));
            };
            if !self.clients.secret_matches(id, given).await? {
                return Err(RegistrationError::InvalidRequest(
                    "client_secret is not the client's current secret".into(),
                ));
            }
        }
        let policy = Policy {
            scope: if current.scopes.is_empty() {
                self.config.open_scopes()
            } else {
                current.scopes.clone()
            },
            open: false,
        };
        let mut client = Client::new(current.id.clone(), current.name.clone());
        client.created_at = current.created_at;
        metadata::apply(&obj, &mut client, &policy)?;
        let (before, after) = (current.auth_method, client.auth_method);
        if before.uses_secret() != after.uses_secret()
            || before.is_confidential() != after.is_confidential()
        {
            return Err(MetadataError::Metadata(format!(
                "token_endpoint_auth_method cannot change from {before} to {after}: a client \
                 keeps being public, secret-based or key-based; register a new client"
            ))
            .into());
        }
        // Settings only an operator sets are kept.
        client.audiences = current.audiences.clone();
        client.access_token_format = current.access_token_format;
        client.access_token_ttl = current.access_token_ttl;
        client.refresh_token_ttl = current.refresh_token_ttl;
        client.id_token_ttl = current.id_token_ttl;
        client.signing_alg = current.signing_alg;
        client.first_party = current.first_party;
        client.can_introspect = current.can_introspect;
        client.allowed_origins = current.allowed_origins.clone();
        client.token_exchange = current.token_exchange.clone();
        let access_token = random_token()?;
        let client = self
            .clients
            .update_registered(client, domain::secret::digest(&access_token))
            .await?
            .ok_or(RegistrationError::InvalidToken(
                "the registration access token is invalid",
            ))?;
        tracing::info!(client_id = %client.id, "dynamic registration updated");
        Ok(Registration {
            client,
            client_secret: None,
            registration_access_token: access_token,
        })
    }

    /// RFC 7592 §2.3: deletes the client with everything issued to it, as
    /// `authz clients delete` does; its registration access token dies with it.
    #[instrument(skip_all)]
    pub(crate) async fn delete(
        &self,
        id: &str,
        bearer: Option<&str>,
    ) -> Result<(), RegistrationError> {
        self.authorized(id, bearer).await?;
        match self.clients.delete(id).await {
            Ok(()) => {}
            Err(AuthzError::NotFound(_)) => {
                return Err(RegistrationError::InvalidToken(
                    "the registration access token is invalid",
                ));
            }
            Err(e) => return Err(e.into()),
        }
        tracing::info!(client_id = %id, "dynamic registration deleted");
        Ok(())
    }
}
