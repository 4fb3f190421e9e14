//! The `refresh_token` grant (RFC 6749 §6, RFC 9700 §4.14.2, OpenID Connect Core §12):
//! refresh tokens rotate on every use; a rotated one presented again revokes its grant.

use domain::ScopeSet;
use tracing::instrument;

use super::claims::Authentication;
use super::model::TokenResponse;
use super::repo;
use super::service::{Grants, expiry};
use crate::clients::Client;
use crate::error::Failure;
use crate::tokens::{TokenError, lookup_key};

const BAD_REFRESH: &str = "the refresh token is invalid, expired or revoked";

impl Grants {
    /// RFC 6749 §6 with RFC 9700 §4.14.2 and OpenID Connect Core §12: new tokens for a
    /// refresh token of `client`, which is rotated (the presented one stops working). The
    /// new refresh token keeps the grant's scope; `scope` may narrow the access token's.
    /// A rotated token presented again revokes the whole grant; of concurrent refreshes
    /// with one token exactly one succeeds (and the others are such presentations). A
    /// refreshed ID token keeps the original `auth_time`, `sid`, `acr` and `amr`.
    #[instrument(skip_all, fields(client_id = %client.id))]
    pub(crate) async fn refresh(
        &self,
        client: &Client,
        token: &str,
        scope: Option<ScopeSet>,
        aud: &[String],
    ) -> Result<TokenResponse, TokenError> {
        let hash = lookup_key(token);
        let (refresh, grant) = repo::refresh_token(&self.db, &hash)
            .await?
            .ok_or(TokenError::InvalidGrant(BAD_REFRESH))?;
        if refresh.client_id != client.id.as_str() || grant.revoked_at.is_some() {
            return Err(TokenError::InvalidGrant(BAD_REFRESH));
        }
        if refresh.rotated_at.is_some() {
            self.reused_refresh_token(&grant.id).await?;
            return Err(TokenError::InvalidGrant(BAD_REFRESH));
        }
        let now = self.tokens.now();
        if refresh.expires_at <= now {
            return Err(TokenError::InvalidGrant(BAD_REFRESH));
        }
        let granted = ScopeSet::parse(&grant.scope).map_err(Failure::internal)?;
        let scope = match scope {
            Some(asked) if !asked.is_subset(&granted) => {
                return Err(TokenError::InvalidScope(format!(
                    "not part of the grant: {}",
                    asked.difference(&granted)
                )));
            }
            Some(asked) => asked,
            None => granted.clone(),
        };
        let user = self.user(&grant.subject, &scope).await?;
        let auth = Authentication {
            subject: &grant.subject,
            auth_time: grant.auth_time,
            amr: &grant.amr,
            acr: &grant.acr,
            sid: &grant.sid,
            nonce: None,
        };
        let (response, issued) = self
            .issue(client, &grant.id, &scope, aud, &auth, &user)
            .await?;
        let expires_at = expiry(&issued).max(grant.expires_at);
        if !repo::rotate(&self.db, &hash, &grant.id, now, expires_at, &issued).await? {
            // Rotated by a concurrent request, or revoked meanwhile.
            self.reused_refresh_token(&grant.id).await?;
            return Err(TokenError::InvalidGrant(BAD_REFRESH));
        }
        Ok(response)
    }

    /// RFC 9700 §4.14.2: a rotated refresh token presented again means one of two parties
    /// holds a stolen token; the server cannot tell which, so the whole family goes.
    async fn reused_refresh_token(&self, grant_id: &str) -> Result<(), Failure> {
        metrics::counter!("grant_replays_total", "kind" => "refresh_token").increment(1);
        if repo::revoke_grant(&self.db, grant_id, self.tokens.now()).await? {
            tracing::warn!(
                grant_id,
                "rotated refresh token reused: its grant is revoked"
            );
        }
        Ok(())
    }
}
