//! The `authorization_code` grant (RFC 6749 §4.1.3, RFC 7636 §4.5-§4.6, OpenID Connect
//! Core §3.1.3): a code becomes a grant, once; a replayed code revokes it (RFC 6749
//! §4.1.2).

use domain::{CodeChallenge, ScopeSet};
use tracing::instrument;

use super::claims::Authentication;
use super::model::TokenResponse;
use super::repo::{self, GrantRow};
use super::service::{Grants, expiry};
use crate::clients::Client;
use crate::error::Failure;
use crate::tokens::{TokenError, lookup_key};

const BAD_CODE: &str = "the authorization code is invalid, expired or already used";

impl Grants {
    /// RFC 6749 §4.1.3 with RFC 7636 §4.6: exchanges a code for tokens. The code must have
    /// been issued to `client`, for `redirect_uri` exactly, be unexpired and unused, and
    /// `code_verifier` must hash to its challenge. Exactly one of any number of concurrent
    /// redemptions succeeds; any later presentation of the code revokes what was issued.
    #[instrument(skip_all, fields(client_id = %client.id))]
    pub(crate) async fn redeem_code(
        &self,
        client: &Client,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
        aud: &[String],
    ) -> Result<TokenResponse, TokenError> {
        let hash = lookup_key(code);
        let row = repo::code(&self.db, &hash)
            .await?
            .ok_or(TokenError::InvalidGrant(BAD_CODE))?;
        if row.redeemed_at.is_some() {
            self.replayed_code(row.grant_id.as_deref()).await?;
            return Err(TokenError::InvalidGrant(BAD_CODE));
        }
        let now = self.tokens.now();
        if row.client_id != client.id.as_str() || row.expires_at <= now {
            return Err(TokenError::InvalidGrant(BAD_CODE));
        }
        if row.redirect_uri != redirect_uri {
            return Err(TokenError::InvalidGrant(
                "redirect_uri differs from the one of the authorization request",
            ));
        }
        let challenge =
            CodeChallenge::from_stored(&row.code_challenge).map_err(Failure::internal)?;
        match challenge.verify(verifier) {
            Ok(true) => {}
            Ok(false) => {
                return Err(TokenError::InvalidGrant(
                    "code_verifier does not match the code_challenge",
                ));
            }
            Err(e) => return Err(TokenError::InvalidRequest(e.to_string())),
        }
        let scope = ScopeSet::parse(&row.scope).map_err(Failure::internal)?;
        let user = self.user(&row.subject, &scope).await?;
        let grant_id = self.tokens.random(16)?;
        let auth = Authentication {
            subject: &row.subject,
            auth_time: row.auth_time,
            amr: &row.amr,
            acr: &row.acr,
            sid: &row.sid,
            nonce: row.nonce.as_deref(),
        };
        let (response, issued) = self
            .issue(client, &grant_id, &scope, aud, &auth, &user, None)
            .await?;
        let grant = GrantRow {
            id: grant_id,
            client_id: client.id.as_str().to_owned(),
            subject: row.subject.clone(),
            scope: row.scope.clone(),
            sid: row.sid.clone(),
            auth_time: row.auth_time,
            amr: row.amr.clone(),
            acr: row.acr.clone(),
            created_at: now,
            updated_at: now,
            expires_at: expiry(&issued),
            revoked_at: None,
        };
        if !repo::redeem(&self.db, &hash, now, &grant, &issued).await? {
            // Another redemption won (or the code just expired): this one is a replay.
            let grant_id = repo::code(&self.db, &hash).await?.and_then(|r| r.grant_id);
            self.replayed_code(grant_id.as_deref()).await?;
            return Err(TokenError::InvalidGrant(BAD_CODE));
        }
        Ok(response)
    }

    /// RFC 6749 §4.1.2: a code used twice revokes every token issued from it.
    async fn replayed_code(&self, grant_id: Option<&str>) -> Result<(), Failure> {
        metrics::counter!("grant_replays_total", "kind" => "authorization_code").increment(1);
        if let Some(grant_id) = grant_id
            && repo::revoke_grant(&self.db, grant_id, self.tokens.now()).await?
        {
            tracing::warn!(
                grant_id,
                "authorization code replayed: its grant is revoked"
            );
        }
        Ok(())
    }
}
