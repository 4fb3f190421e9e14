//! Introspection of every token kind (RFC 7662 §2.1-§2.2): access tokens through the token
//! service, refresh tokens from their grants.

use std::collections::HashMap;

use tracing::instrument;

use super::repo::{self, GrantRow, RefreshRow};
use super::service::Grants;
use crate::error::Failure;
use crate::tokens::{Introspection, lookup_key};

/// The `token_type` of an active refresh token: the RFC 7009 §4.1.2 token type hint value
/// for refresh tokens. RFC 7662 §2.2 defines `token_type` by RFC 6749 §5.1, which names
/// access token types only; saying `refresh_token` here keeps a resource server that checks
/// `token_type` from taking a refresh token for a Bearer access token (refresh tokens also
/// carry no `aud`, so no audience check accepts them).
pub(crate) const REFRESH_TOKEN_TYPE: &str = "refresh_token";

impl Grants {
    /// RFC 7662 §2.2 for `tokens`, in order: access tokens as [`crate::tokens::Tokens::
    /// introspect_many`] says, and live refresh tokens `active: true` with their grant's
    /// `scope`, `client_id` and `sub`, the token's `iat` and `exp`, our `iss` and
    /// `token_type: refresh_token`. A rotated refresh token, one of a revoked grant, an
    /// expired one and one whose client is gone are inactive. The `token_type_hint` of
    /// RFC 7662 §2.1 is not needed: every kind is searched whatever the hint says (§2.1:
    /// the server "MUST extend its search across all of its supported token types").
    #[instrument(skip_all, fields(count = tokens.len()))]
    pub(crate) async fn introspect_many(
        &self,
        tokens: &[&str],
    ) -> Result<Vec<Introspection>, Failure> {
        let mut out = self.tokens.introspect_many(tokens).await?;
        // Inactive opaque-looking tokens may be refresh tokens: one query for all of them.
        let candidates: Vec<(usize, String)> = out
            .iter()
            .zip(tokens)
            .enumerate()
            .filter(|(_, (result, token))| !result.active && !token.contains('.'))
            .map(|(i, (_, token))| (i, lookup_key(token)))
            .collect();
        if candidates.is_empty() {
            return Ok(out);
        }
        let hashes: Vec<String> = candidates.iter().map(|(_, h)| h.clone()).collect();
        let found: HashMap<String, (RefreshRow, GrantRow)> =
            repo::refresh_tokens_many(&self.db, &hashes)
                .await?
                .into_iter()
                .map(|(refresh, grant)| (refresh.token_hash.clone(), (refresh, grant)))
                .collect();
        let now = self.tokens.now();
        for (i, hash) in candidates {
            // A batch may name one token twice: each place gets its answer.
            let Some((refresh, grant)) = found.get(&hash) else {
                continue;
            };
            let live = grant.revoked_at.is_none()
                && refresh.rotated_at.is_none()
                && refresh.expires_at > now
                && refresh.client_id == grant.client_id
                && self
                    .tokens
                    .honours(&refresh.client_id, refresh.issued_at)
                    .await?;
            if !live {
                continue;
            }
            out[i] = Introspection {
                active: true,
                scope: Some(grant.scope.clone()),
                client_id: Some(refresh.client_id.clone()),
                sub: Some(grant.subject.clone()),
                aud: Vec::new(),
                iss: Some(self.tokens.issuer().to_owned()),
                exp: Some(refresh.expires_at),
                iat: Some(refresh.issued_at),
                token_type: Some(REFRESH_TOKEN_TYPE.to_owned()),
                jti: None,
                act: None,
            };
        }
        Ok(out)
    }

    /// [`Grants::introspect_many`] for one token.
    pub(crate) async fn introspect(&self, token: &str) -> Result<Introspection, Failure> {
        Ok(self
            .introspect_many(&[token])
            .await?
            .pop()
            .unwrap_or_default())
    }
}
