//! Remembered consents as the user's decisions (OpenID Connect Core §3.1.2.4: the server
//! may remember consent; Keycloak lets an administrator list and revoke it): list them
//! per subject and withdraw one client's, with everything issued to that client for the
//! subject, so the client must ask again (`authz consents …`).

use std::sync::Arc;

use issuer::Clock;
use storage::Database;
use tracing::instrument;

use super::repo::{self, ConsentRevoked};
use crate::AuthzError;

/// A remembered consent of one subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Consent {
    /// The client it was given to.
    pub(crate) client_id: String,
    /// The granted scopes, space-separated (RFC 6749 §3.3).
    pub(crate) scope: String,
    /// When it was last given or widened (Unix seconds).
    pub(crate) updated_at: i64,
}

/// Listing and revoking remembered consents.
pub(crate) struct Consents {
    db: Database,
    clock: Arc<dyn Clock>,
}

impl Consents {
    /// The service over `db`.
    pub(crate) fn new(db: Database, clock: Arc<dyn Clock>) -> Self {
        Self { db, clock }
    }

    /// The consents `subject` asked to be remembered, by client id.
    pub(crate) async fn list(&self, subject: &str) -> Result<Vec<Consent>, AuthzError> {
        Ok(repo::consents_of(&self.db, subject)
            .await?
            .into_iter()
            .map(|r| Consent {
                client_id: r.client_id,
                scope: r.scope,
                updated_at: r.updated_at,
            })
            .collect())
    }

    /// Withdraws what `subject` granted `client_id` in one transaction: its grants are
    /// revoked (refresh tokens stop working, access tokens are denylisted or deleted, RFC
    /// 7009 §2.1 semantics), its unredeemed codes deleted and the remembered consent
    /// forgotten. `NotFound` when there was neither a consent nor a live grant.
    /// `event` (an administrator's revocation, issue 18) is appended to the audit trail in
    /// the same transaction.
    #[instrument(skip_all)]
    pub(crate) async fn revoke(
        &self,
        subject: &str,
        client_id: &str,
        event: Option<&audit::AuditEvent>,
    ) -> Result<ConsentRevoked, AuthzError> {
        let revoked =
            repo::revoke_consent(&self.db, subject, client_id, self.clock.now(), event).await?;
        if !revoked.consent && revoked.grants == 0 {
            return Err(AuthzError::NotFound(format!(
                "no consent or grant of subject {subject} for client {client_id}"
            )));
        }
        tracing::info!(client_id, grants = revoked.grants, "consent revoked");
        Ok(revoked)
    }
}
