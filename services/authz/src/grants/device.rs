//! The device-code grant (RFC 8628 §3.4-§3.5): the device polls the token endpoint with
//! its device code until the user decided; an approved request becomes a grant, once.

use diesel::prelude::*;
use domain::ScopeSet;
use storage::diesel_async::{AsyncConnection, RunQueryDsl};
use storage::{Database, StorageError, with_conn};
use tracing::instrument;

use super::claims::Authentication;
use super::model::TokenResponse;
use super::repo::{GrantRow, Issued, insert_issued, lost, won};
use super::service::{Grants, expiry};
use crate::clients::Client;
use crate::device::PollError;
use crate::device::repo::{self as device_repo, DeviceRow, status};
use crate::error::Failure;
use crate::schema::{
    device_authorizations, grant_access_tokens, grants, opaque_tokens, refresh_tokens,
};
use crate::tokens::{TokenError, lookup_key};

const BAD_CODE: &str = "the device_code is invalid or was issued to another client";
const USED_CODE: &str = "the device_code has already been used";

impl Grants {
    /// RFC 8628 §3.4-§3.5: answers one poll of `client` with `device_code`. In order: an
    /// unknown code or another client's is `invalid_grant`; a redeemed one `invalid_grant`
    /// (single use); an expired one `expired_token`; a denied one `access_denied`; a
    /// pending one `authorization_pending`, or `slow_down` when this poll came sooner than
    /// the code's interval after the previous one (the interval then grows by 5 s, stored,
    /// so later polls are held to it). An approved one gives the tokens of a code-flow
    /// response (access token; refresh token when the client may refresh; ID token with
    /// `openid`), exactly once even under concurrent polls.
    #[instrument(skip_all, fields(client_id = %client.id))]
    pub(crate) async fn redeem_device_code(
        &self,
        client: &Client,
        device_code: &str,
        aud: &[String],
    ) -> Result<TokenResponse, PollError> {
        let hash = lookup_key(device_code);
        let row = device_repo::by_device_code(&self.db, &hash)
            .await?
            .filter(|r| r.client_id == client.id.as_str())
            .ok_or(TokenError::InvalidGrant(BAD_CODE))?;
        if row.status == status::REDEEMED {
            return Err(TokenError::InvalidGrant(USED_CODE).into());
        }
        let now = self.tokens.now();
        if row.expires_at <= now {
            return Err(PollError::Expired);
        }
        match row.status.as_str() {
            status::DENIED => Err(PollError::Denied),
            status::APPROVED => self.issue_for_device(client, &hash, &row, aud, now).await,
            _ => {
                let too_fast = row
                    .last_polled_at
                    .is_some_and(|last| now - last < row.poll_interval);
                device_repo::polled(&self.db, &hash, now, too_fast).await?;
                if too_fast {
                    metrics::counter!("device_polls_total", "result" => "slow_down").increment(1);
                    Err(PollError::SlowDown(
                        row.poll_interval + device_repo::SLOW_DOWN_STEP,
                    ))
                } else {
                    Err(PollError::Pending)
                }
            }
        }
    }

    async fn issue_for_device(
        &self,
        client: &Client,
        hash: &str,
        row: &DeviceRow,
        aud: &[String],
        now: i64,
    ) -> Result<TokenResponse, PollError> {
        let (Some(subject), Some(sid), Some(auth_time)) =
            (row.subject.as_deref(), row.sid.as_deref(), row.auth_time)
        else {
            return Err(
                Failure::internal("an approved device authorization lacks its login").into(),
            );
        };
        let amr = row.amr.clone().unwrap_or_default();
        let acr = row.acr.clone().unwrap_or_default();
        let scope = ScopeSet::parse(&row.scope).map_err(Failure::internal)?;
        let user = self.user(subject, &scope).await?;
        let grant_id = self.tokens.random(16)?;
        let auth = Authentication {
            subject,
            auth_time,
            amr: &amr,
            acr: &acr,
            sid,
            nonce: None,
        };
        let (response, issued) = self
            .issue(client, &grant_id, &scope, aud, &auth, &user, None)
            .await?;
        let grant = GrantRow {
            id: grant_id,
            client_id: client.id.as_str().to_owned(),
            subject: subject.to_owned(),
            scope: row.scope.clone(),
            sid: sid.to_owned(),
            auth_time,
            amr,
            acr,
            created_at: now,
            updated_at: now,
            expires_at: expiry(&issued),
            revoked_at: None,
        };
        if !redeem(&self.db, hash, now, &grant, &issued).await? {
            // Another poll won (or the code just expired): single use.
            return Err(TokenError::InvalidGrant(USED_CODE).into());
        }
        metrics::counter!("device_polls_total", "result" => "redeemed").increment(1);
        Ok(response)
    }
}

/// Redeems the approved device authorization `hash` for `grant`, once: in one transaction
/// the grant is inserted, the authorization is marked redeemed by a conditional UPDATE
/// (`status = approved`, unexpired) that only one caller can win, and the issued tokens
/// are recorded. `false`: another redemption won or the code expired; nothing was written.
async fn redeem(
    db: &Database,
    hash: &str,
    now: i64,
    grant: &GrantRow,
    issued: &Issued,
) -> Result<bool, StorageError> {
    let mut conn = db.get().await?;
    let result = with_conn!(&mut conn, |c| c
        .transaction(async |tx| {
            diesel::insert_into(grants::table)
                .values(grant)
                .execute(tx)
                .await?;
            let n = diesel::update(
                device_authorizations::table
                    .filter(device_authorizations::device_code_hash.eq(hash))
                    .filter(device_authorizations::status.eq(status::APPROVED))
                    .filter(device_authorizations::expires_at.gt(now)),
            )
            .set((
                device_authorizations::status.eq(status::REDEEMED),
                device_authorizations::grant_id.eq(Some(&grant.id)),
            ))
            .execute(tx)
            .await?;
            if n != 1 {
                return Err(lost());
            }
            insert_issued!(tx, issued)
        })
        .await);
    won(result)
}
