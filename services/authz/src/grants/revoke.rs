//! Revoking grants from outside the token endpoint: a refresh token at the revocation
//! endpoint (RFC 7009 §2.1), the session-bound grants at logout (OpenID Connect Core
//! §11, RP-Initiated Logout 1.0), and every grant of a user idp disabled or deleted
//! (`authz.v1.LoginFlow.RevokeSubject`).

use tracing::instrument;

use super::repo::{self, SubjectRevoked};
use super::service::Grants;
use crate::clients::Client;
use crate::error::Failure;
use crate::tokens::lookup_key;

/// The `offline_access` scope (OpenID Connect Core §11): refresh tokens that outlive the
/// browser session.
const OFFLINE_ACCESS: &str = "offline_access";

impl Grants {
    /// RFC 7009 §2.1: revokes the grant of a refresh token of `client` (with every token
    /// issued from it). `false` when `token` is no refresh token of this client.
    #[instrument(skip_all, fields(client_id = %client.id))]
    pub(crate) async fn revoke_refresh_token(
        &self,
        client: &Client,
        token: &str,
    ) -> Result<bool, Failure> {
        if token.contains('.') {
            // A JWT (an access token): refresh tokens are opaque.
            return Ok(false);
        }
        let Some((refresh, grant)) = repo::refresh_token(&self.db, &lookup_key(token)).await?
        else {
            return Ok(false);
        };
        if refresh.client_id != client.id.as_str() {
            return Ok(false);
        }
        repo::revoke_grant(&self.db, &grant.id, self.tokens.now()).await?;
        Ok(true)
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
        let revoked = repo::revoke_subject(&self.db, subject, self.tokens.now()).await?;
        tracing::info!(
            grants = revoked.grants,
            sessions = revoked.sessions,
            "subject signed out everywhere"
        );
        Ok(revoked)
    }
}
