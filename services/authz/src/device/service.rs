//! The device-authorization service: starts device authorizations (RFC 8628 §3.1-§3.2)
//! and records the user's decision from idp's verification page (§3.3).

use std::sync::Arc;

use domain::ScopeSet;
use domain::device::UserCode;
use storage::{Database, StorageError};
use tracing::instrument;

use super::model::{DeviceRequest, Started};
use super::repo::{self, Approval, DeviceRow, status};
use crate::clients::{Client, Clients};
use crate::config::DeviceConfig;
use crate::error::Failure;
use crate::flow::{FlowError, Login};
use crate::tokens::{Tokens, lookup_key};

/// Attempts at drawing a user code not in use before giving up (each collides with
/// probability live codes / 20^8, so a second attempt is already rare).
const USER_CODE_ATTEMPTS: usize = 5;

/// Seconds an expired device authorization is kept, so that polls still get
/// `expired_token` (RFC 8628 §3.5) for a while.
const EXPIRED_KEPT: i64 = 3600;

/// The device-authorization service.
pub(crate) struct Devices {
    db: Database,
    clients: Arc<Clients>,
    tokens: Arc<Tokens>,
    code_ttl: i64,
    interval: i64,
    verification_uri: String,
}

/// The stored digest of a user code: SHA-256 (hex) of its canonical form.
pub(crate) fn user_code_hash(code: &UserCode) -> String {
    domain::secret::digest_hex(code.canonical())
}

impl Devices {
    /// The service, configured from the `device` section; `verification_uri` is idp's
    /// verification page (`<idp.public_url>/device`).
    pub(crate) fn new(
        db: Database,
        clients: Arc<Clients>,
        tokens: Arc<Tokens>,
        config: &DeviceConfig,
        verification_uri: String,
    ) -> Self {
        let secs = |d: std::time::Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 4);
        Self {
            db,
            clients,
            tokens,
            code_ttl: secs(config.code_ttl),
            interval: secs(config.interval),
            verification_uri,
        }
    }

    /// The end-user verification URI (RFC 8628 §3.2 `verification_uri`).
    pub(crate) fn verification_uri(&self) -> &str {
        &self.verification_uri
    }

    /// RFC 8628 §3.1-§3.2: stores a new device authorization of `client` for `scope` (the
    /// caller validated both) and returns its codes. The device code is a high-entropy
    /// opaque secret stored as a digest; the user code is drawn uniformly from the
    /// unambiguous alphabet of [`UserCode`] and is unique among stored requests.
    #[instrument(skip_all, fields(client_id = %client.id))]
    pub(crate) async fn start(
        &self,
        client: &Client,
        scope: &ScopeSet,
    ) -> Result<Started, Failure> {
        let now = self.tokens.now();
        let device_code = self.tokens.opaque_token()?;
        for _ in 0..USER_CODE_ATTEMPTS {
            let mut random = [0u8; 32];
            self.tokens.fill_random(&mut random)?;
            let Some(user_code) = UserCode::from_random(&random) else {
                continue;
            };
            let row = DeviceRow {
                device_code_hash: lookup_key(&device_code),
                user_code_hash: user_code_hash(&user_code),
                client_id: client.id.as_str().to_owned(),
                scope: scope.to_string(),
                status: status::PENDING.to_owned(),
                poll_interval: self.interval,
                last_polled_at: None,
                subject: None,
                idp_session_id: None,
                sid: None,
                auth_time: None,
                amr: None,
                acr: None,
                grant_id: None,
                created_at: now,
                expires_at: now + self.code_ttl,
            };
            if repo::insert(&self.db, &row).await? {
                metrics::counter!("device_authorizations_total", "result" => "started")
                    .increment(1);
                return Ok(Started {
                    device_code,
                    user_code,
                    expires_in: self.code_ttl,
                    interval: self.interval,
                });
            }
        }
        Err(Failure::internal(
            "no free user code after several attempts",
        ))
    }

    /// The pending request of a user code as typed (case, hyphens and spaces do not
    /// matter). [`FlowError::NotFound`] when the code is malformed, unknown, expired or
    /// already answered, or its client is gone.
    #[instrument(skip_all)]
    pub(crate) async fn request(&self, typed: &str) -> Result<DeviceRequest, FlowError> {
        let (row, client) = self.pending(typed).await?;
        let scope = ScopeSet::parse(&row.scope).map_err(Failure::internal)?;
        Ok(DeviceRequest {
            client,
            scope,
            expires_at: row.expires_at,
        })
    }

    async fn pending(&self, typed: &str) -> Result<(DeviceRow, Arc<Client>), FlowError> {
        let code = UserCode::parse(typed).ok_or(FlowError::NotFound)?;
        let now = self.tokens.now();
        let row = repo::pending_by_user_code(&self.db, &user_code_hash(&code), now)
            .await?
            .ok_or(FlowError::NotFound)?;
        let client = self
            .clients
            .find(&row.client_id)
            .await?
            .ok_or(FlowError::NotFound)?;
        Ok((row, client))
    }

    /// `AcceptDevice`: the user signed in at idp as `login` and approved the request of
    /// the user code, granting every requested scope. Once: a second answer, or an answer
    /// for an expired code, is [`FlowError::NotFound`].
    #[instrument(skip_all)]
    pub(crate) async fn approve(&self, typed: &str, login: &Login) -> Result<(), FlowError> {
        let now = self.tokens.now();
        login.check(now)?;
        let code = UserCode::parse(typed).ok_or(FlowError::NotFound)?;
        let sid = self.tokens.random(16)?;
        let amr = login.amr.join(" ");
        let approval = Approval {
            subject: &login.subject,
            idp_session_id: &login.idp_session_id,
            sid: &sid,
            auth_time: login.auth_time,
            amr: &amr,
            acr: &login.acr,
        };
        if !repo::approve(&self.db, &user_code_hash(&code), now, &approval).await? {
            return Err(FlowError::NotFound);
        }
        metrics::counter!("device_authorizations_total", "result" => "approved").increment(1);
        Ok(())
    }

    /// `RejectDevice`: the user denied the request of the user code; the device's next
    /// poll gets `access_denied`. Once, like [`Devices::approve`].
    #[instrument(skip_all)]
    pub(crate) async fn deny(&self, typed: &str) -> Result<(), FlowError> {
        let code = UserCode::parse(typed).ok_or(FlowError::NotFound)?;
        if !repo::deny(&self.db, &user_code_hash(&code), self.tokens.now()).await? {
            return Err(FlowError::NotFound);
        }
        metrics::counter!("device_authorizations_total", "result" => "denied").increment(1);
        Ok(())
    }

    /// Deletes device authorizations that expired more than [`EXPIRED_KEPT`] ago (until
    /// then a device still polling learns `expired_token` rather than `invalid_grant`).
    pub(crate) async fn purge_expired(&self) -> Result<usize, StorageError> {
        repo::purge_expired(&self.db, self.tokens.now() - EXPIRED_KEPT).await
    }
}
