//! The `refresh_token` grant (RFC 6749 §6, RFC 9700 §4.14.2, OAuth 2.1 §6.1, OpenID Connect
//! Core §12): refresh tokens rotate on every use; a rotated one presented again revokes its
//! grant, unless it comes back within `tokens.refresh_reuse_interval`.
//!
//! # The reuse interval (grace period)
//!
//! A client whose refresh response was lost (a timeout, a crashed tab, two tabs racing)
//! presents the same refresh token again. Without a grace period that is a replay and its
//! whole session is revoked. Within the interval after a rotation, the same rotated token
//! gets the grace answer instead: the SAME successor refresh token the rotation produced
//! (and a freshly signed access token, and ID token when asked for, recorded in the grant
//! like every other, so revoking the grant still covers them).
//!
//! The successor is never stored, in clear or sealed: a rotation stores a random salt, and
//! the successor is HMAC-SHA256 keyed with the rotated token over that salt
//! ([`crate::tokens::successor_token`]). Only a holder of the rotated token can compute it,
//! and the database holds only digests and the salt.
//!
//! Security argument (RFC 9700 §4.14.2, OAuth 2.1 §6.1): rotation exists so that a stolen
//! refresh token is detected when both holders use it. The grace answer hands out nothing a
//! holder of the rotated token did not already obtain from the rotation; the family keeps
//! exactly one live refresh token (the successor), so the two holders still collide on it
//! at its next rotation. Detection is only deferred for reuse within the interval, and only
//! while the successor itself has not been used: once it was rotated, or the interval has
//! passed, the rotated token revokes the family as before. The default interval is 0s
//! (off, the strict RFC 9700 behaviour, as Okta and Ory Hydra default to): a deployment
//! opts in with a few seconds, the time a client may take to retry a lost response.

use domain::ScopeSet;
use tracing::instrument;

use super::claims::Authentication;
use super::model::TokenResponse;
use super::repo::{self, GrantRow, RefreshRow};
use super::service::{Grants, expiry};
use crate::clients::Client;
use crate::error::Failure;
use crate::tokens::{TokenError, lookup_key, successor_token};

const BAD_REFRESH: &str = "the refresh token is invalid, expired or revoked";

impl Grants {
    /// RFC 6749 §6 with RFC 9700 §4.14.2 and OpenID Connect Core §12: new tokens for a
    /// refresh token of `client`, which is rotated (the presented one stops working). The
    /// new refresh token keeps the grant's scope; `scope` may narrow the access token's.
    /// A rotated token presented again revokes the whole grant, except within
    /// `tokens.refresh_reuse_interval` of its rotation while its successor is unused (then
    /// the same successor is returned, see the module documentation); of concurrent
    /// refreshes with one token exactly one rotates it, and the others are such
    /// presentations. A refreshed ID token keeps the original `auth_time`, `sid`, `acr` and
    /// `amr`.
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
            return self
                .reused(client, token, &refresh, &grant, scope, aud)
                .await;
        }
        let now = self.tokens.now();
        if refresh.expires_at <= now {
            return Err(TokenError::InvalidGrant(BAD_REFRESH));
        }
        let scope = narrowed(&grant, scope)?;
        let salt = self.tokens.opaque_token()?;
        let (response, issued) = self
            .respond(client, &grant, &scope, aud, successor_token(token, &salt))
            .await?;
        let expires_at = expiry(&issued).max(grant.expires_at);
        if !repo::rotate(&self.db, &hash, &grant.id, now, expires_at, &salt, &issued).await? {
            // Rotated by a concurrent request, or revoked meanwhile: read what won.
            let Some((refresh, grant)) = repo::refresh_token(&self.db, &hash).await? else {
                return Err(TokenError::InvalidGrant(BAD_REFRESH));
            };
            if grant.revoked_at.is_some() || refresh.rotated_at.is_none() {
                return Err(TokenError::InvalidGrant(BAD_REFRESH));
            }
            return self
                .reused(client, token, &refresh, &grant, Some(scope), aud)
                .await;
        }
        Ok(response)
    }

    /// A rotated refresh token presented again: the grace answer within the reuse interval
    /// while the successor is unused, else RFC 9700 §4.14.2 reuse detection (the grant is
    /// revoked and the answer is `invalid_grant`).
    async fn reused(
        &self,
        client: &Client,
        token: &str,
        refresh: &RefreshRow,
        grant: &GrantRow,
        scope: Option<ScopeSet>,
        aud: &[String],
    ) -> Result<TokenResponse, TokenError> {
        let now = self.tokens.now();
        let within = refresh
            .rotated_at
            .is_some_and(|at| now < at.saturating_add(self.refresh_reuse_interval));
        if let (true, Some(salt)) = (within, refresh.successor_salt.as_deref()) {
            let scope = narrowed(grant, scope)?;
            let successor = successor_token(token, salt);
            let successor_hash = lookup_key(&successor);
            let (response, issued) = self.respond(client, grant, &scope, aud, successor).await?;
            if repo::record_grace(&self.db, &grant.id, &successor_hash, now, &issued).await? {
                metrics::counter!("refresh_reuse_grace_total").increment(1);
                tracing::info!(
                    grant_id = grant.id,
                    "rotated refresh token presented again within the reuse interval: same successor returned"
                );
                return Ok(response);
            }
        }
        self.reused_refresh_token(&grant.id).await?;
        Err(TokenError::InvalidGrant(BAD_REFRESH))
    }

    /// The token response of a refresh of `grant` with `successor` as its refresh token.
    async fn respond(
        &self,
        client: &Client,
        grant: &GrantRow,
        scope: &ScopeSet,
        aud: &[String],
        successor: String,
    ) -> Result<(TokenResponse, repo::Issued), TokenError> {
        let user = self.user(&grant.subject, scope).await?;
        let auth = Authentication {
            subject: &grant.subject,
            auth_time: grant.auth_time,
            amr: &grant.amr,
            acr: &grant.acr,
            sid: &grant.sid,
            nonce: None,
        };
        Ok(self
            .issue(client, &grant.id, scope, aud, &auth, &user, Some(successor))
            .await?)
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

/// The access token's scope: the grant's, or `asked` when it is a subset (RFC 6749 §6).
fn narrowed(grant: &GrantRow, asked: Option<ScopeSet>) -> Result<ScopeSet, TokenError> {
    let granted = ScopeSet::parse(&grant.scope).map_err(Failure::internal)?;
    match asked {
        Some(asked) if !asked.is_subset(&granted) => Err(TokenError::InvalidScope(format!(
            "not part of the grant: {}",
            asked.difference(&granted)
        ))),
        Some(asked) => Ok(asked),
        None => Ok(granted),
    }
}
