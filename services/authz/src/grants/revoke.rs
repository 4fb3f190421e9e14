//! Revoking grants from outside the token endpoint: a refresh token at the revocation
//! endpoint (RFC 7009 §2.1), the session-bound grants at logout (OpenID Connect Core
//! §11, RP-Initiated Logout 1.0), and every grant of a user idp disabled or deleted
//! (`authz.v1.LoginFlow.RevokeSubject`).

use tracing::instrument;

use super::repo::{self, ClientGrantRow, ConsentRevoked, ConsentRow, SubjectRevoked};
use super::service::Grants;
use crate::clients::Client;
use crate::error::Failure;
use crate::tokens::{Revocation, lookup_key};

/// The `offline_access` scope (OpenID Connect Core §11): refresh tokens that outlive the
/// browser session.
const OFFLINE_ACCESS: &str = "offline_access";

impl Grants {
    /// RFC 7009 §2.1: revokes the grant of a refresh token of `client` (with every token
    /// issued from it). [`Revocation::Unknown`] when `token` is no refresh token;
    /// [`Revocation::OtherClient`] (nothing revoked) when it is a live refresh token of
    /// another client.
    #[instrument(skip_all, fields(client_id = %client.id))]
    pub(crate) async fn revoke_refresh_token(
        &self,
        client: &Client,
        token: &str,
    ) -> Result<Revocation, Failure> {
        if token.contains('.') {
            // A JWT (an access token): refresh tokens are opaque.
            return Ok(Revocation::Unknown);
        }
        let Some((refresh, grant)) = repo::refresh_token(&self.db, &lookup_key(token)).await?
        else {
            return Ok(Revocation::Unknown);
        };
        let now = self.tokens.now();
        if refresh.client_id != client.id.as_str() {
            let live = grant.revoked_at.is_none()
                && refresh.rotated_at.is_none()
                && refresh.expires_at > now;
            return Ok(if live {
                Revocation::OtherClient
            } else {
                Revocation::Unknown
            });
        }
        repo::revoke_grant(&self.db, &grant.id, now).await?;
        Ok(Revocation::Revoked)
    }

    /// At logout: revokes the grants bound to browser session `sid` that are not for
    /// offline use (no `offline_access` scope, OpenID Connect Core §11). Returns how many.
    #[instrument(skip_all)]
    pub(crate) async fn revoke_session(&self, sid: &str) -> Result<usize, Failure> {
        let mut revoked = 0;
        for (id, scope) in repo::session_grants(&self.db, sid).await? {
            if scope.split(' ').any(|s| s == OFFLINE_ACCESS) {
                continue;
            }
            if repo::revoke_grant(&self.db, &id, self.tokens.now()).await? {
                revoked += 1;
            }
        }
        Ok(revoked)
    }

    /// When idp disables or deletes a user (`LoginFlow.RevokeSubject`): revokes every grant
    /// of `subject` with everything issued from it (RFC 7009 §2.1 semantics for each:
    /// refresh tokens stop working, access tokens are reported inactive by introspection,
    /// RFC 7662 §2.2), deletes its unredeemed codes and ends its authz browser sessions,
    /// all in one transaction. Consents are kept. Calling it again is harmless.
    #[instrument(skip_all)]
    pub(crate) async fn revoke_subject(&self, subject: &str) -> Result<SubjectRevoked, Failure> {
        self.revoke_subject_audited(subject, None).await
    }

    /// [`Grants::revoke_subject`] with `event` (an administrator's "sign this user out of
    /// every app", issue 18) appended to the audit trail in the same transaction.
    pub(crate) async fn revoke_subject_audited(
        &self,
        subject: &str,
        event: Option<&audit::AuditEvent>,
    ) -> Result<SubjectRevoked, Failure> {
        let revoked = repo::revoke_subject(&self.db, subject, self.tokens.now(), event).await?;
        tracing::info!(
            grants = revoked.grants,
            sessions = revoked.sessions,
            "subject signed out everywhere"
        );
        Ok(revoked)
    }

    // account page (idp's "Apps" section, over LoginFlow.ListConsents / RevokeConsent)
    /// The remembered consents of `subject`, by client id (OpenID Connect Core §3.1.2.4:
    /// what the server remembers of the user's consent decisions).
    pub(crate) async fn consents_of(&self, subject: &str) -> Result<Vec<ConsentRow>, Failure> {
        Ok(repo::consents_of(&self.db, subject).await?)
    }

    /// The user withdraws `client_id`'s access: in one transaction every unrevoked grant of
    /// the pair is revoked (RFC 7009 §2.1 semantics), its unredeemed codes deleted and the
    /// remembered consent forgotten. Idempotent.
    #[instrument(skip_all, fields(client_id))]
    pub(crate) async fn revoke_client_of_subject(
        &self,
        subject: &str,
        client_id: &str,
    ) -> Result<ConsentRevoked, Failure> {
        let revoked =
            repo::revoke_consent(&self.db, subject, client_id, self.tokens.now(), None).await?;
        tracing::info!(
            grants = revoked.grants,
            consent = revoked.consent,
            "the user withdrew a client's access"
        );
        Ok(revoked)
    }

    // admin API (issue 18): a client's grants.
    /// Up to `limit` live grants of `client_id` in id order, after id `after` (a page of
    /// `GET /admin/v1/clients/{client_id}/grants`).
    pub(crate) async fn client_grants(
        &self,
        client_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ClientGrantRow>, storage::StorageError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        repo::client_grants(&self.db, client_id, after, self.tokens.now(), limit).await
    }

    /// Revokes every live grant of `client_id`, or only grant `only`, with everything
    /// issued from them (RFC 7009 §2.1 semantics), with `event` appended to the audit trail,
    /// in one transaction. Returns how many were revoked (0 with `only`: no such live grant
    /// of the client, nothing written).
    #[instrument(skip_all)]
    pub(crate) async fn revoke_client_grants(
        &self,
        client_id: &str,
        only: Option<&str>,
        event: Option<&audit::AuditEvent>,
    ) -> Result<usize, storage::StorageError> {
        let revoked =
            repo::revoke_client_grants(&self.db, client_id, only, self.tokens.now(), event).await?;
        tracing::info!(client_id, grants = revoked, "client grants revoked");
        Ok(revoked)
    }
}
