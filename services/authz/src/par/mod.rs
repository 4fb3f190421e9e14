//! PAR: Pushed Authorization Requests (RFC 9126). A client pushes the parameters of an
//! authorization request (authenticated as at the token endpoint) and gets a
//! `request_uri` (`urn:ietf:params:oauth:request_uri:<random>`) it sends the browser to
//! `/authorize` with. A `request_uri` is short-lived (`par.request_uri_ttl`), bound to its
//! client and single-use (RFC 9126 §4): the conditional delete that consumes it wins
//! once. Only its SHA-256 is stored.

mod repo;

use std::sync::Arc;

use issuer::Clock;
use storage::{Database, StorageError};
use tracing::instrument;

use crate::config::ParConfig;

/// The `request_uri` prefix of pushed requests (RFC 9126 §2.2).
pub(crate) const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// Why a `request_uri` cannot be used; all are `invalid_request_uri` (RFC 9126 §4, RFC
/// 9101 §6.2) and none says whether it ever existed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TakeError {
    /// Unknown, already used, expired, or pushed by another client.
    #[error("the request_uri is unknown, expired, already used or not this client's")]
    Invalid,
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The pushed-request store.
pub(crate) struct PushedRequests {
    db: Database,
    clock: Arc<dyn Clock>,
    ttl: i64,
    /// `par.require`: every client must push.
    pub(crate) required: bool,
}

impl PushedRequests {
    /// The store, configured from the `par` section.
    pub(crate) fn new(db: Database, clock: Arc<dyn Clock>, config: &ParConfig) -> Self {
        Self {
            db,
            clock,
            ttl: i64::try_from(config.request_uri_ttl.as_secs()).unwrap_or(60),
            required: config.require,
        }
    }

    /// Stores the validated parameters of `client_id`'s request; returns the
    /// `request_uri` and `expires_in` (RFC 9126 §2.2).
    #[instrument(skip_all)]
    pub(crate) async fn push(
        &self,
        client_id: &str,
        params: &[(String, String)],
    ) -> Result<(String, i64), crate::error::Failure> {
        let handle = crate::clients::generated_id()
            .and_then(|a| crate::clients::generated_id().map(|b| format!("{a}{b}")))
            .map_err(|_| crate::error::Failure::internal("no randomness available"))?;
        let now = self.clock.now();
        let parameters = serde_json::to_string(params).map_err(crate::error::Failure::internal)?;
        repo::insert(
            &self.db,
            &domain::secret::digest_hex(&handle),
            client_id,
            &parameters,
            now,
            now + self.ttl,
        )
        .await?;
        Ok((format!("{REQUEST_URI_PREFIX}{handle}"), self.ttl))
    }

    /// Consumes `request_uri` for `client_id` (RFC 9126 §4): its parameters, once. A
    /// `request_uri` of another client is refused and left for its owner.
    #[instrument(skip_all)]
    pub(crate) async fn take(
        &self,
        request_uri: &str,
        client_id: &str,
    ) -> Result<Vec<(String, String)>, TakeError> {
        let handle = request_uri
            .strip_prefix(REQUEST_URI_PREFIX)
            .ok_or(TakeError::Invalid)?;
        let hash = domain::secret::digest_hex(handle);
        let now = self.clock.now();
        let row = repo::find(&self.db, &hash)
            .await?
            .ok_or(TakeError::Invalid)?;
        if row.client_id != client_id || row.expires_at <= now {
            return Err(TakeError::Invalid);
        }
        if !repo::delete(&self.db, &hash).await? {
            // Someone else used it first.
            return Err(TakeError::Invalid);
        }
        serde_json::from_str(&row.parameters).map_err(|_| TakeError::Invalid)
    }

    /// The current time (Unix seconds) of the server's clock, for request-object expiry.
    pub(crate) fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Deletes expired pushed requests; returns how many.
    pub(crate) async fn purge_expired(&self) -> Result<usize, StorageError> {
        repo::purge(&self.db, self.clock.now()).await
    }
}
