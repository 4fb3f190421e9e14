//! Access token revocation (RFC 7009 §2.1); refresh tokens revoke their grant (see the
//! grants module).

use tracing::instrument;

use super::model::Revocation;
use super::repo;
use super::service::{Tokens, looks_like_jwt, lookup_key};
use crate::clients::Client;
use crate::error::Failure;

impl Tokens {
    /// RFC 7009 §2.1: revokes the access token `token` if it was issued to `client`. A
    /// live token of another client is left alone and reported as such (the edge refuses
    /// the request); unknown, expired and malformed tokens are [`Revocation::Unknown`].
    #[instrument(skip_all, fields(client_id = %client.id))]
    pub(crate) async fn revoke(&self, client: &Client, token: &str) -> Result<Revocation, Failure> {
        let now = self.clock.now();
        if looks_like_jwt(token) {
            let Some(claims) = self.verified_claims(token) else {
                return Ok(Revocation::Unknown);
            };
            let owner = claims.get("client_id").and_then(serde_json::Value::as_str);
            let jti = claims.get("jti").and_then(serde_json::Value::as_str);
            let exp = claims
                .get("exp")
                .and_then(serde_json::Value::as_i64)
                .unwrap_or(0);
            let (Some(owner), Some(jti)) = (owner, jti) else {
                return Ok(Revocation::Unknown);
            };
            if exp <= now {
                return Ok(Revocation::Unknown);
            }
            if owner != client.id.as_str() {
                return Ok(Revocation::OtherClient);
            }
            repo::revoke_jti(&self.db, jti, owner, exp).await?;
            return Ok(Revocation::Revoked);
        }
        let hash = lookup_key(token);
        if repo::delete_opaque(&self.db, &hash, client.id.as_str()).await? > 0 {
            return Ok(Revocation::Revoked);
        }
        let found = repo::find_opaque_many(&self.db, &[hash.as_str()]).await?;
        Ok(match found.first() {
            Some(row) if row.expires_at > now => Revocation::OtherClient,
            _ => Revocation::Unknown,
        })
    }
}
