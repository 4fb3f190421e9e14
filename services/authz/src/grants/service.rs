//! The grant service: the state the user grants share, the tokens of one token response,
//! and the user's claims from idp. Code redemption is in `redeem.rs`, refresh in
//! `refresh.rs`, revocation in `revoke.rs`.

use std::sync::Arc;

use domain::{GrantType, ScopeSet};
use proto::idp::v1::UserClaims;
use storage::Database;

use super::claims::{self, Authentication};
use super::model::TokenResponse;
use super::repo::{self, AccessRecord, Issued, RefreshRow};
use crate::clients::Client;
use crate::error::Failure;
use crate::idp::{Idp, IdpError};
use crate::tokens::{PreparedAccess, TokenError, Tokens, lookup_key};

/// Grant issuance and revocation.
pub(crate) struct Grants {
    pub(super) db: Database,
    pub(super) tokens: Arc<Tokens>,
    idp: Arc<Idp>,
    /// `tokens.refresh_reuse_interval` in seconds (see `refresh.rs`); 0: no grace.
    pub(super) refresh_reuse_interval: i64,
}

impl Grants {
    /// The service; a rotated refresh token presented again within
    /// `refresh_reuse_interval` gets the grace answer instead of revoking its grant.
    pub(crate) fn new(
        db: Database,
        tokens: Arc<Tokens>,
        idp: Arc<Idp>,
        refresh_reuse_interval: std::time::Duration,
    ) -> Self {
        Self {
            db,
            tokens,
            idp,
            refresh_reuse_interval: i64::try_from(refresh_reuse_interval.as_secs())
                .unwrap_or(i64::MAX),
        }
    }

    /// The standard claims `scope` allows for `subject`, from idp; a disabled or deleted
    /// user is `invalid_grant`.
    pub(super) async fn user(
        &self,
        subject: &str,
        scope: &ScopeSet,
    ) -> Result<UserClaims, TokenError> {
        match self.idp.user_claims(subject, scope).await {
            Ok(user) => Ok(user),
            Err(IdpError::UserGone) => {
                Err(TokenError::InvalidGrant("the user is no longer active"))
            }
            Err(e) => Err(Failure::from(e).into()),
        }
    }

    /// Makes the tokens of one response: the access token (with `scope`), a refresh token
    /// when the client may refresh (a refresh token stands for its grant, whose scope it
    /// always keeps, RFC 6749 §6), and an ID token when `scope` includes `openid`. The
    /// refresh token is `refresh` when given (a rotation's derived successor), else random.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn issue(
        &self,
        client: &Client,
        grant_id: &str,
        scope: &ScopeSet,
        aud: &[String],
        auth: &Authentication<'_>,
        user: &UserClaims,
        refresh: Option<String>,
    ) -> Result<(TokenResponse, Issued), Failure> {
        let PreparedAccess {
            token,
            jti,
            expires_at,
            expires_in,
            opaque,
        } = self
            .tokens
            .prepare(client, auth.subject, scope, aud)
            .await?;
        let now = self.tokens.now();
        let refresh = if client.grant_types.contains(&GrantType::RefreshToken) {
            match refresh {
                Some(given) => Some(given),
                None => Some(self.tokens.opaque_token()?),
            }
        } else {
            None
        };
        let id_token = if scope.contains("openid") {
            let alg = self.tokens.alg_for(client);
            let issue = claims::Issue {
                issuer: self.tokens.issuer(),
                client_id: client.id.as_str(),
                now,
                ttl: client.id_token_ttl,
            };
            let claims = claims::id_token(&issue, auth, claims::at_hash(alg, &token), user, scope);
            Some(self.tokens.sign(alg, "JWT", &claims).await?)
        } else {
            None
        };
        let issued = Issued {
            access: AccessRecord {
                jti,
                grant_id: grant_id.to_owned(),
                opaque_hash: opaque.as_ref().map(|o| o.token_hash.clone()),
                expires_at,
            },
            opaque,
            refresh: refresh.as_ref().map(|r| RefreshRow {
                token_hash: lookup_key(r),
                grant_id: grant_id.to_owned(),
                client_id: client.id.as_str().to_owned(),
                issued_at: now,
                expires_at: now + client.refresh_token_ttl,
                rotated_at: None,
                successor_salt: None,
            }),
        };
        Ok((
            TokenResponse {
                access_token: token,
                expires_in,
                scope: scope.clone(),
                refresh_token: refresh,
                id_token,
            },
            issued,
        ))
    }

    /// Deletes expired grants with everything recorded for them.
    pub(crate) async fn purge_expired(&self) -> Result<usize, storage::StorageError> {
        repo::purge_expired(&self.db, self.tokens.now()).await
    }
}

/// When a grant may be forgotten: once its newest refresh token and access token expired.
pub(super) fn expiry(issued: &Issued) -> i64 {
    issued
        .refresh
        .as_ref()
        .map_or(issued.access.expires_at, |r| {
            r.expires_at.max(issued.access.expires_at)
        })
}
