//! Access token issuance: RFC 9068 JWT access tokens or opaque reference tokens, in the
//! client's format.

use domain::{AccessTokenFormat, ScopeSet};
use serde::Serialize;
use tracing::instrument;

use super::model::{Exchanged, IssuedToken, PreparedAccess};
use super::repo::OpaqueRow;
use super::service::{Tokens, lookup_key};
use crate::clients::Client;
use crate::error::Failure;

/// RFC 9068 §2.2 claims of a JWT access token.
#[derive(Serialize)]
struct AccessClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a [String],
    exp: i64,
    iat: i64,
    jti: &'a str,
    client_id: &'a str,
    scope: String,
    /// RFC 8693 §4.1: the actor chain of an exchanged token.
    #[serde(skip_serializing_if = "Option::is_none")]
    act: Option<&'a serde_json::Value>,
}

impl Tokens {
    /// Makes an access token for `client` without storing anything: a signed RFC 9068 JWT,
    /// or an opaque token with the row that must be stored before it is handed out.
    #[instrument(skip_all, fields(client_id = %client.id))]
    pub(crate) async fn prepare(
        &self,
        client: &Client,
        subject: &str,
        scope: &ScopeSet,
        aud: &[String],
    ) -> Result<PreparedAccess, Failure> {
        self.prepare_exchanged(client, subject, scope, aud, &Exchanged::default())
            .await
    }

    /// [`Tokens::prepare`] with what a token exchange adds: an `act` claim and an expiry
    /// no later than `exchanged.not_after`.
    #[instrument(skip_all, fields(client_id = %client.id))]
    pub(crate) async fn prepare_exchanged(
        &self,
        client: &Client,
        subject: &str,
        scope: &ScopeSet,
        aud: &[String],
        exchanged: &Exchanged,
    ) -> Result<PreparedAccess, Failure> {
        let now = self.clock.now();
        let exp = exchanged
            .not_after
            .map_or(now + client.access_token_ttl, |t| {
                t.min(now + client.access_token_ttl)
            });
        let jti = self.random(16)?;
        let (token, opaque) = match client.access_token_format {
            AccessTokenFormat::Jwt => {
                let claims = AccessClaims {
                    iss: &self.issuer,
                    sub: subject,
                    aud,
                    exp,
                    iat: now,
                    jti: &jti,
                    client_id: client.id.as_str(),
                    scope: scope.to_string(),
                    act: exchanged.act.as_ref(),
                };
                let token = self.sign(self.alg_for(client), "at+jwt", &claims).await?;
                (token, None)
            }
            AccessTokenFormat::Opaque => {
                let token = self.opaque_token()?;
                let row = OpaqueRow {
                    token_hash: lookup_key(&token),
                    jti: jti.clone(),
                    client_id: client.id.as_str().to_owned(),
                    subject: subject.to_owned(),
                    scope: scope.to_string(),
                    audience: serde_json::to_string(aud).map_err(Failure::internal)?,
                    issued_at: now,
                    expires_at: exp,
                    act: exchanged.act.as_ref().map(serde_json::Value::to_string),
                };
                (token, Some(row))
            }
        };
        Ok(PreparedAccess {
            token,
            jti,
            expires_at: exp,
            expires_in: exp - now,
            opaque,
        })
    }

    /// Issues an access token for `client` with `scope` and audiences `aud`, in the
    /// client's format: a signed RFC 9068 JWT (`typ: at+jwt`), or a 256-bit random opaque
    /// token stored only as its SHA-256 (committed before this returns).
    #[instrument(skip_all, fields(client_id = %client.id))]
    pub async fn issue(
        &self,
        client: &Client,
        subject: &str,
        scope: ScopeSet,
        aud: Vec<String>,
    ) -> Result<IssuedToken, Failure> {
        self.issue_exchanged(client, subject, scope, aud, &Exchanged::default())
            .await
    }

    /// Issues the access token of a token exchange (RFC 8693 §2.2.1): [`Tokens::issue`]
    /// with the `act` claim and expiry ceiling of `exchanged`.
    #[instrument(skip_all, fields(client_id = %client.id))]
    pub(crate) async fn issue_exchanged(
        &self,
        client: &Client,
        subject: &str,
        scope: ScopeSet,
        aud: Vec<String>,
        exchanged: &Exchanged,
    ) -> Result<IssuedToken, Failure> {
        let prepared = self
            .prepare_exchanged(client, subject, &scope, &aud, exchanged)
            .await?;
        if let Some(row) = prepared.opaque {
            self.writer.insert(row).await?;
        }
        Ok(IssuedToken {
            access_token: prepared.token,
            expires_in: prepared.expires_in,
            scope,
        })
    }
}
