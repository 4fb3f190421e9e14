//! The token endpoint's user grants: `authorization_code` (RFC 6749 §4.1.3, RFC 7636
//! §4.5-§4.6, OpenID Connect Core §3.1.3) and `refresh_token` (RFC 6749 §6, Core §12),
//! and the revocation of grants (code replay, refresh token reuse, RFC 7009, logout).
//!
//! A redeemed code becomes a *grant*: the family of every token issued from it. Refresh
//! tokens are opaque, stored as digests and rotated on every use; presenting a rotated one
//! again revokes the grant (RFC 9700 §4.14.2), as does presenting a redeemed code again
//! (RFC 6749 §4.1.2). Revoking a grant denylists its JWT access tokens and deletes its
//! opaque ones. Transport-neutral: the HTTP edge calls these functions.

pub(crate) mod claims;
pub(crate) mod repo;

use std::sync::Arc;

use domain::{CodeChallenge, ErrorCode, GrantType, OAuthError, ScopeSet};
use proto::idp::v1::UserClaims;
use storage::Database;
use tracing::instrument;

use self::claims::Authentication;
use self::repo::{AccessRecord, GrantRow, Issued, RefreshRow};
use crate::clients::Client;
use crate::flow::idp_error;
use crate::idp::{Idp, IdpError};
use crate::tokens::{PreparedAccess, Tokens, lookup_key, server_error, storage_error};

/// A successful token response (RFC 6749 §5.1, OpenID Connect Core §3.1.3.3). No `Debug`:
/// it holds tokens.
pub(crate) struct TokenResponse {
    /// The access token.
    pub(crate) access_token: String,
    /// Its lifetime in seconds.
    pub(crate) expires_in: i64,
    /// The scopes of the access token.
    pub(crate) scope: ScopeSet,
    /// A new refresh token, when the client may use the `refresh_token` grant.
    pub(crate) refresh_token: Option<String>,
    /// An ID token, when the scopes include `openid`.
    pub(crate) id_token: Option<String>,
}

/// The `offline_access` scope (OpenID Connect Core §11): refresh tokens that outlive the
/// browser session.
const OFFLINE_ACCESS: &str = "offline_access";

fn invalid_grant(description: &str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidGrant, description)
}

const BAD_CODE: &str = "the authorization code is invalid, expired or already used";
const BAD_REFRESH: &str = "the refresh token is invalid, expired or revoked";

/// Grant issuance and revocation.
pub(crate) struct Grants {
    db: Database,
    tokens: Arc<Tokens>,
    idp: Arc<Idp>,
}

impl Grants {
    /// The service.
    pub(crate) fn new(db: Database, tokens: Arc<Tokens>, idp: Arc<Idp>) -> Self {
        Self { db, tokens, idp }
    }

    /// The standard claims `scope` allows for `subject`, from idp; a disabled or deleted
    /// user is `invalid_grant`.
    async fn user(&self, subject: &str, scope: &ScopeSet) -> Result<UserClaims, OAuthError> {
        match self.idp.user_claims(subject, scope).await {
            Ok(user) => Ok(user),
            Err(IdpError::UserGone) => Err(invalid_grant("the user is no longer active")),
            Err(e) => Err(idp_error(e)),
        }
    }

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
    ) -> Result<TokenResponse, OAuthError> {
        let hash = lookup_key(code);
        let row = repo::code(&self.db, &hash)
            .await
            .map_err(storage_error)?
            .ok_or_else(|| invalid_grant(BAD_CODE))?;
        if row.redeemed_at.is_some() {
            self.replayed_code(row.grant_id.as_deref()).await?;
            return Err(invalid_grant(BAD_CODE));
        }
        let now = self.tokens.now();
        if row.client_id != client.id.as_str() || row.expires_at <= now {
            return Err(invalid_grant(BAD_CODE));
        }
        if row.redirect_uri != redirect_uri {
            return Err(invalid_grant(
                "redirect_uri differs from the one of the authorization request",
            ));
        }
        let challenge = CodeChallenge::from_stored(&row.code_challenge).map_err(server_error)?;
        match challenge.verify(verifier) {
            Ok(true) => {}
            Ok(false) => {
                return Err(invalid_grant(
                    "code_verifier does not match the code_challenge",
                ));
            }
            Err(e) => return Err(OAuthError::invalid_request(e.to_string())),
        }
        let scope = ScopeSet::parse(&row.scope).map_err(server_error)?;
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
            .issue(client, &grant_id, &scope, aud, &auth, &user)
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
        if !repo::redeem(&self.db, &hash, now, &grant, &issued)
            .await
            .map_err(storage_error)?
        {
            // Another redemption won (or the code just expired): this one is a replay.
            let grant_id = repo::code(&self.db, &hash)
                .await
                .map_err(storage_error)?
                .and_then(|r| r.grant_id);
            self.replayed_code(grant_id.as_deref()).await?;
            return Err(invalid_grant(BAD_CODE));
        }
        Ok(response)
    }

    /// RFC 6749 §4.1.2: a code used twice revokes every token issued from it.
    async fn replayed_code(&self, grant_id: Option<&str>) -> Result<(), OAuthError> {
        metrics::counter!("grant_replays_total", "kind" => "authorization_code").increment(1);
        if let Some(grant_id) = grant_id
            && repo::revoke_grant(&self.db, grant_id, self.tokens.now())
                .await
                .map_err(storage_error)?
        {
            tracing::warn!(
                grant_id,
                "authorization code replayed: its grant is revoked"
            );
        }
        Ok(())
    }

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
    ) -> Result<TokenResponse, OAuthError> {
        let hash = lookup_key(token);
        let (refresh, grant) = repo::refresh_token(&self.db, &hash)
            .await
            .map_err(storage_error)?
            .ok_or_else(|| invalid_grant(BAD_REFRESH))?;
        if refresh.client_id != client.id.as_str() || grant.revoked_at.is_some() {
            return Err(invalid_grant(BAD_REFRESH));
        }
        if refresh.rotated_at.is_some() {
            self.reused_refresh_token(&grant.id).await?;
            return Err(invalid_grant(BAD_REFRESH));
        }
        let now = self.tokens.now();
        if refresh.expires_at <= now {
            return Err(invalid_grant(BAD_REFRESH));
        }
        let granted = ScopeSet::parse(&grant.scope).map_err(server_error)?;
        let scope = match scope {
            Some(asked) if !asked.is_subset(&granted) => {
                return Err(OAuthError::new(
                    ErrorCode::InvalidScope,
                    format!("not part of the grant: {}", asked.difference(&granted)),
                ));
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
        if !repo::rotate(&self.db, &hash, &grant.id, now, expires_at, &issued)
            .await
            .map_err(storage_error)?
        {
            // Rotated by a concurrent request, or revoked meanwhile.
            self.reused_refresh_token(&grant.id).await?;
            return Err(invalid_grant(BAD_REFRESH));
        }
        Ok(response)
    }

    /// RFC 9700 §4.14.2: a rotated refresh token presented again means one of two parties
    /// holds a stolen token; the server cannot tell which, so the whole family goes.
    async fn reused_refresh_token(&self, grant_id: &str) -> Result<(), OAuthError> {
        metrics::counter!("grant_replays_total", "kind" => "refresh_token").increment(1);
        if repo::revoke_grant(&self.db, grant_id, self.tokens.now())
            .await
            .map_err(storage_error)?
        {
            tracing::warn!(
                grant_id,
                "rotated refresh token reused: its grant is revoked"
            );
        }
        Ok(())
    }

    /// Makes the tokens of one response: the access token (with `scope`), a refresh token
    /// when the client may refresh (a refresh token stands for its grant, whose scope it
    /// always keeps, RFC 6749 §6), and an ID token when `scope` includes `openid`.
    async fn issue(
        &self,
        client: &Client,
        grant_id: &str,
        scope: &ScopeSet,
        aud: &[String],
        auth: &Authentication<'_>,
        user: &UserClaims,
    ) -> Result<(TokenResponse, Issued), OAuthError> {
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
            Some(self.tokens.opaque_token()?)
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

    /// RFC 7009 §2.1: revokes the grant of a refresh token of `client` (with every token
    /// issued from it). `false` when `token` is no refresh token of this client.
    #[instrument(skip_all, fields(client_id = %client.id))]
    pub(crate) async fn revoke_refresh_token(
        &self,
        client: &Client,
        token: &str,
    ) -> Result<bool, OAuthError> {
        if token.contains('.') {
            // A JWT (an access token): refresh tokens are opaque.
            return Ok(false);
        }
        let Some((refresh, grant)) = repo::refresh_token(&self.db, &lookup_key(token))
            .await
            .map_err(storage_error)?
        else {
            return Ok(false);
        };
        if refresh.client_id != client.id.as_str() {
            return Ok(false);
        }
        repo::revoke_grant(&self.db, &grant.id, self.tokens.now())
            .await
            .map_err(storage_error)?;
        Ok(true)
    }

    /// At logout: revokes the grants bound to browser session `sid` that are not for
    /// offline use (no `offline_access` scope, OpenID Connect Core §11). Returns how many.
    #[instrument(skip_all)]
    pub(crate) async fn revoke_session(&self, sid: &str) -> Result<usize, OAuthError> {
        let mut revoked = 0;
        for (id, scope) in repo::session_grants(&self.db, sid)
            .await
            .map_err(storage_error)?
        {
            if scope.split(' ').any(|s| s == OFFLINE_ACCESS) {
                continue;
            }
            if repo::revoke_grant(&self.db, &id, self.tokens.now())
                .await
                .map_err(storage_error)?
            {
                revoked += 1;
            }
        }
        Ok(revoked)
    }

    /// Deletes expired grants with everything recorded for them.
    pub(crate) async fn purge_expired(&self) -> Result<usize, storage::StorageError> {
        repo::purge_expired(&self.db, self.tokens.now()).await
    }
}

/// When a grant may be forgotten: once its newest refresh token and access token expired.
fn expiry(issued: &Issued) -> i64 {
    issued
        .refresh
        .as_ref()
        .map_or(issued.access.expires_at, |r| {
            r.expires_at.max(issued.access.expires_at)
        })
}
