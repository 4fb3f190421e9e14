//! Access token revocation (RFC 7009 §2.1); refresh tokens revoke their grant (see the
//! grants module).

use tracing::instrument;

use super::repo;
use super::service::{Tokens, looks_like_jwt, lookup_key};
use crate::clients::Client;
use crate::error::Failure;

impl Tokens {
    /// RFC 7009 §2.1: revokes `token` if it was issued to `client`; anything else (unknown,
    /// expired, another client's) is left alone and still succeeds.
    #[instrument(skip_all, fields(client_id = %client.id))]
    pub async fn revoke(&self, client: &Client, token: &str) -> Result<(), Failure> {
        if looks_like_jwt(token) {
            let Some(claims) = self.verified_claims(token) else {
                return Ok(());
            };
            let owner = claims.get("client_id").and_then(serde_json::Value::as_str);
            let jti = claims.get("jti").and_then(serde_json::Value::as_str);
            let exp = claims
                .get("exp")
                .and_then(serde_json::Value::as_i64)
                .unwrap_or(0);
            if let (Some(owner), Some(jti)) = (owner, jti)
                && owner == client.id.as_str()
                && exp > self.clock.now()
            {
                repo::revoke_jti(&self.db, jti, owner, exp).await?;
            }
            return Ok(());
        }
        repo::delete_opaque(&self.db, &lookup_key(token), client.id.as_str()).await?;
        Ok(())
    }
}
