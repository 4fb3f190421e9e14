//! Clients and their secrets in the authz database (one query path for both backends).

use diesel::prelude::*;
use domain::{ClientId, GrantType, ScopeSet};
use storage::diesel_async::{AsyncConnection, RunQueryDsl};
use storage::{Database, StorageError, with_conn};

use super::model::{Client, Secret, TlsClientAuthSubject, hex, unhex};
use crate::schema::{
    client_assertion_jtis, client_registrations, client_secrets, clients, grant_access_tokens,
    grants, opaque_tokens, registration_tokens, revoked_jtis,
};

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = clients)]
#[diesel(treat_none_as_null = true)]
struct ClientRow {
    id: String,
    name: String,
    auth_method: String,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    grant_types: String,
    scopes: String,
    audiences: String,
    access_token_format: String,
    /// `{"access_token":S,"refresh_token":S,"id_token":S}`.
    token_lifetimes: String,
    signing_alg: Option<String>,
    first_party: bool,
    can_introspect: bool,
    created_at: i64,
    updated_at: i64,
    // browser clients (CORS)
    /// JSON array of serialized origins.
    allowed_origins: String,
    /// logout: `{"backchannel_logout_uri":S|null,"backchannel_logout_session_required":B,
    /// "frontchannel_logout_uri":S|null,"frontchannel_logout_session_required":B}`.
    logout: String,
    // token exchange (RFC 8693)
    /// [`crate::clients::TokenExchangePolicy`] as JSON.
    token_exchange: String,
    // clientauth: client authentication by JWT (RFC 7523) and mTLS (RFC 8705)
    /// The JWKS document as JSON text.
    jwks: Option<String>,
    jwks_uri: Option<String>,
    token_endpoint_auth_signing_alg: Option<String>,
    tls_client_auth_subject_dn: Option<String>,
    tls_client_auth_san_dns: Option<String>,
    tls_client_auth_san_uri: Option<String>,
    tls_client_auth_san_ip: Option<String>,
    tls_client_auth_san_email: Option<String>,
    // PAR (RFC 9126 §6)
    require_pushed_authorization_requests: bool,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = client_secrets)]
struct SecretRow {
    id: String,
    client_id: String,
    secret_hash: String,
    created_at: i64,
    expires_at: Option<i64>,
    // clientauth
    sealed_secret: Option<String>,
}

fn corrupt(what: impl Into<String>) -> StorageError {
    StorageError::Query(diesel::result::Error::DeserializationError(
        what.into().into(),
    ))
}

// clientauth
/// The registered `tls_client_auth` value if it is the kind `pick` selects.
fn tls_subject(
    c: &Client,
    pick: impl Fn(&TlsClientAuthSubject) -> Option<&String>,
) -> Option<String> {
    c.tls_client_auth.as_ref().and_then(pick).cloned()
}

fn json_list(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".to_owned())
}

impl ClientRow {
    fn from_client(c: &Client) -> Self {
        Self {
            id: c.id.as_str().to_owned(),
            name: c.name.clone(),
            auth_method: c.auth_method.as_str().to_owned(),
            redirect_uris: json_list(&c.redirect_uris),
            post_logout_redirect_uris: json_list(&c.post_logout_redirect_uris),
            grant_types: c
                .grant_types
                .iter()
                .map(|g| g.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            scopes: c.scopes.to_string(),
            audiences: json_list(&c.audiences),
            access_token_format: c.access_token_format.as_str().to_owned(),
            token_lifetimes: serde_json::json!({
                "access_token": c.access_token_ttl,
                "refresh_token": c.refresh_token_ttl,
                "id_token": c.id_token_ttl,
            })
            .to_string(),
            signing_alg: c.signing_alg.map(|a| a.as_str().to_owned()),
            first_party: c.first_party,
            can_introspect: c.can_introspect,
            created_at: c.created_at,
            updated_at: c.updated_at,
            // browser clients (CORS)
            allowed_origins: json_list(&c.allowed_origins),
            logout: serde_json::json!({
                "backchannel_logout_uri": c.backchannel_logout_uri,
                "backchannel_logout_session_required": c.backchannel_logout_session_required,
                "frontchannel_logout_uri": c.frontchannel_logout_uri,
                "frontchannel_logout_session_required": c.frontchannel_logout_session_required,
            })
            .to_string(),
            // token exchange (RFC 8693)
            token_exchange: serde_json::to_string(&c.token_exchange)
                .unwrap_or_else(|_| "{}".to_owned()),
            // clientauth
            jwks: c.jwks.as_ref().map(ToString::to_string),
            jwks_uri: c.jwks_uri.clone(),
            token_endpoint_auth_signing_alg: c.token_endpoint_auth_signing_alg.clone(),
            tls_client_auth_subject_dn: tls_subject(c, |s| match s {
                TlsClientAuthSubject::SubjectDn(v) => Some(v),
                _ => None,
            }),
            tls_client_auth_san_dns: tls_subject(c, |s| match s {
                TlsClientAuthSubject::SanDns(v) => Some(v),
                _ => None,
            }),
            tls_client_auth_san_uri: tls_subject(c, |s| match s {
                TlsClientAuthSubject::SanUri(v) => Some(v),
                _ => None,
            }),
            tls_client_auth_san_ip: tls_subject(c, |s| match s {
                TlsClientAuthSubject::SanIp(v) => Some(v),
                _ => None,
            }),
            tls_client_auth_san_email: tls_subject(c, |s| match s {
                TlsClientAuthSubject::SanEmail(v) => Some(v),
                _ => None,
            }),
            // PAR (RFC 9126 §6)
            require_pushed_authorization_requests: c.require_pushed_authorization_requests,
        }
    }

    fn into_client(self) -> Result<Client, StorageError> {
        let list =
            |s: &str| serde_json::from_str::<Vec<String>>(s).map_err(|e| corrupt(e.to_string()));
        let lifetimes: serde_json::Value =
            serde_json::from_str(&self.token_lifetimes).map_err(|e| corrupt(e.to_string()))?;
        // logout: absent members (rows from before the migration hold `{}`) are unset.
        let logout: serde_json::Value =
            serde_json::from_str(&self.logout).map_err(|e| corrupt(e.to_string()))?;
        let logout_uri = |k: &str| logout[k].as_str().map(str::to_owned);
        let logout_flag = |k: &str| logout[k].as_bool().unwrap_or(false);
        let lifetime = |k: &str| {
            lifetimes[k]
                .as_i64()
                .ok_or_else(|| corrupt(format!("no {k} lifetime")))
        };
        Ok(Client {
            id: ClientId::parse(&self.id).map_err(corrupt)?,
            name: self.name,
            auth_method: self.auth_method.parse().map_err(corrupt)?,
            redirect_uris: list(&self.redirect_uris)?,
            post_logout_redirect_uris: list(&self.post_logout_redirect_uris)?,
            grant_types: self
                .grant_types
                .split_whitespace()
                .map(str::parse::<GrantType>)
                .collect::<Result<_, _>>()
                .map_err(corrupt)?,
            scopes: ScopeSet::parse(&self.scopes).map_err(|e| corrupt(e.to_string()))?,
            audiences: list(&self.audiences)?,
            access_token_format: self.access_token_format.parse().map_err(corrupt)?,
            access_token_ttl: lifetime("access_token")?,
            refresh_token_ttl: lifetime("refresh_token")?,
            id_token_ttl: lifetime("id_token")?,
            signing_alg: self
                .signing_alg
                .map(|a| a.parse())
                .transpose()
                .map_err(corrupt)?,
            first_party: self.first_party,
            can_introspect: self.can_introspect,
            created_at: self.created_at,
            updated_at: self.updated_at,
            // browser clients (CORS)
            allowed_origins: list(&self.allowed_origins)?,
            backchannel_logout_uri: logout_uri("backchannel_logout_uri"),
            backchannel_logout_session_required: logout_flag("backchannel_logout_session_required"),
            frontchannel_logout_uri: logout_uri("frontchannel_logout_uri"),
            frontchannel_logout_session_required: logout_flag(
                "frontchannel_logout_session_required",
            ),
            // token exchange (RFC 8693)
            token_exchange: serde_json::from_str(&self.token_exchange)
                .map_err(|e| corrupt(e.to_string()))?,
            // clientauth
            jwks: self
                .jwks
                .as_deref()
                .map(serde_json::from_str)
                .transpose()
                .map_err(|e| corrupt(e.to_string()))?,
            jwks_uri: self.jwks_uri,
            token_endpoint_auth_signing_alg: self.token_endpoint_auth_signing_alg,
            tls_client_auth: self
                .tls_client_auth_subject_dn
                .map(TlsClientAuthSubject::SubjectDn)
                .or(self
                    .tls_client_auth_san_dns
                    .map(TlsClientAuthSubject::SanDns))
                .or(self
                    .tls_client_auth_san_uri
                    .map(TlsClientAuthSubject::SanUri))
                .or(self.tls_client_auth_san_ip.map(TlsClientAuthSubject::SanIp))
                .or(self
                    .tls_client_auth_san_email
                    .map(TlsClientAuthSubject::SanEmail)),
            // PAR (RFC 9126 §6)
            require_pushed_authorization_requests: self.require_pushed_authorization_requests,
        })
    }
}

impl SecretRow {
    fn into_secret(self) -> Result<Secret, StorageError> {
        Ok(Secret {
            digest: unhex(&self.secret_hash).ok_or_else(|| corrupt("bad secret digest"))?,
            id: self.id,
            created_at: self.created_at,
            expires_at: self.expires_at,
            sealed: self.sealed_secret,
        })
    }
}

/// Inserts a client and (for confidential clients) its first secret inside the caller's
/// transaction (a macro: the transaction's connection type differs per backend), unless a
/// client with its id exists; evaluates to whether it inserted (`usize` 1 or 0).
macro_rules! insert_client {
    ($tx:expr, $row:expr, $secret:expr) => {{
        let row: &ClientRow = $row;
        let secret: Option<&SecretRow> = $secret;
        let n = diesel::insert_into(clients::table)
            .values(row)
            .on_conflict(clients::id)
            .do_nothing()
            .execute($tx)
            .await?;
        if n == 1
            && let Some(secret) = secret
        {
            diesel::insert_into(client_secrets::table)
                .values(secret)
                .execute($tx)
                .await?;
        }
        n
    }};
}

/// Deletes client `$id` inside the caller's transaction (a macro: the transaction's
/// connection type differs per backend), with everything issued to it, and evaluates to
/// the number of clients deleted (`usize` 1 or 0):
/// - the unexpired JWT access tokens issued from its grants go on the denylist until they
///   expire (RFC 7009 §2.2: they must not stay valid once the client is gone);
/// - its secrets and opaque access tokens are deleted;
/// - the foreign keys' `ON DELETE CASCADE` deletes the rest: its pending authorization
///   requests, authorization codes, remembered consents and grants, with their refresh
///   tokens and access-token records.
///
/// JWT access tokens of the `client_credentials` grant are recorded nowhere: introspection
/// refuses them once the client is gone (`Clients::honours`); local verifiers accept them
/// until they expire (at most the client's access token lifetime).
macro_rules! delete_client {
    ($tx:expr, $id:expr, $now:expr) => {{
        let id: &str = $id;
        let now: i64 = $now;
        let jwts: Vec<(String, i64)> = grant_access_tokens::table
            .inner_join(grants::table)
            .filter(grants::client_id.eq(id))
            .filter(grant_access_tokens::opaque_hash.is_null())
            .filter(grant_access_tokens::expires_at.gt(now))
            .select((grant_access_tokens::jti, grant_access_tokens::expires_at))
            .load($tx)
            .await?;
        for (jti, expires_at) in &jwts {
            diesel::insert_into(revoked_jtis::table)
                .values((
                    revoked_jtis::jti.eq(jti),
                    revoked_jtis::client_id.eq(id),
                    revoked_jtis::expires_at.eq(expires_at),
                ))
                .on_conflict_do_nothing()
                .execute($tx)
                .await?;
        }
        diesel::delete(client_secrets::table.filter(client_secrets::client_id.eq(id)))
            .execute($tx)
            .await?;
        diesel::delete(opaque_tokens::table.filter(opaque_tokens::client_id.eq(id)))
            .execute($tx)
            .await?;
        diesel::delete(clients::table.find(id)).execute($tx).await?
    }};
}

/// A client's first secret as stored: its row id, the SHA-256 of the secret and, for
/// `client_secret_jwt`, the secret sealed with the key-encryption key.
pub(crate) type NewSecret<'a> = (&'a str, [u8; 32], Option<&'a str>);

fn secret_row(client: &Client, secret: Option<NewSecret<'_>>) -> Option<SecretRow> {
    secret.map(|(id, digest, sealed)| SecretRow {
        id: id.to_owned(),
        client_id: client.id.as_str().to_owned(),
        secret_hash: hex(&digest),
        created_at: client.created_at,
        expires_at: None,
        sealed_secret: sealed.map(str::to_owned),
    })
}

/// Inserts a client and (for confidential clients) its first secret, with `event`
/// appended to the audit trail, in one transaction. `Ok(false)`: a client with this id
/// exists; nothing was written (nor the event).
pub(crate) async fn insert(
    db: &Database,
    client: &Client,
    secret: Option<NewSecret<'_>>,
    event: Option<&audit::AuditEvent>,
) -> Result<bool, StorageError> {
    let row = ClientRow::from_client(client);
    let secret = secret_row(client, secret);
    let mut conn = db.get().await?;
    let n = with_conn!(&mut conn, |c| c
        .transaction(async |tx| {
            let n = insert_client!(tx, &row, secret.as_ref());
            if n == 1
                && let Some(event) = event
            {
                audit::append(tx, event).await?;
            }
            Ok::<_, diesel::result::Error>(n)
        })
        .await)?;
    Ok(n == 1)
}

/// What [`seed`] did to one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Seeded {
    /// It existed and was deleted first (only when resetting).
    pub(crate) deleted: bool,
    /// It was inserted (it did not exist, or was just deleted).
    pub(crate) created: bool,
}

/// In one transaction, for each client in order: with `reset`, deletes it as [`delete`]
/// does (at `now`); then inserts it with its secret unless a client with its id exists
/// (which is left untouched). Either every change is committed or none is.
pub(crate) async fn seed(
    db: &Database,
    reset: bool,
    now: i64,
    new: &[(&Client, Option<NewSecret<'_>>)],
) -> Result<Vec<Seeded>, StorageError> {
    let rows: Vec<(ClientRow, Option<SecretRow>)> = new
        .iter()
        .map(|(client, secret)| (ClientRow::from_client(client), secret_row(client, *secret)))
        .collect();
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| c
        .transaction(async |tx| {
            let mut outcome = Vec::with_capacity(rows.len());
            for (row, secret) in &rows {
                let deleted = reset && delete_client!(tx, &row.id, now) == 1;
                let created = insert_client!(tx, row, secret.as_ref()) == 1;
                outcome.push(Seeded { deleted, created });
            }
            Ok::<_, diesel::result::Error>(outcome)
        })
        .await)?)
}

/// A client with its secrets, or `None`.
pub(crate) async fn get(
    db: &Database,
    id: &str,
) -> Result<Option<(Client, Vec<Secret>)>, StorageError> {
    let mut conn = db.get().await?;
    let found: Option<(ClientRow, Vec<SecretRow>)> = with_conn!(&mut conn, |c| {
        let row: Option<ClientRow> = clients::table
            .find(id)
            .select(ClientRow::as_select())
            .first(c)
            .await
            .optional()?;
        match row {
            Some(row) => {
                let secrets: Vec<SecretRow> = client_secrets::table
                    .filter(client_secrets::client_id.eq(id))
                    .select(SecretRow::as_select())
                    .load(c)
                    .await?;
                Ok::<_, diesel::result::Error>(Some((row, secrets)))
            }
            None => Ok(None),
        }
    })?;
    found
        .map(|(row, secrets)| {
            Ok((
                row.into_client()?,
                secrets
                    .into_iter()
                    .map(SecretRow::into_secret)
                    .collect::<Result<_, _>>()?,
            ))
        })
        .transpose()
}

/// Every client, by id.
pub(crate) async fn list(db: &Database) -> Result<Vec<Client>, StorageError> {
    let mut conn = db.get().await?;
    let rows: Vec<ClientRow> = with_conn!(&mut conn, |c| clients::table
        .order(clients::id.asc())
        .select(ClientRow::as_select())
        .load(c)
        .await)?;
    rows.into_iter().map(ClientRow::into_client).collect()
}

/// Replaces a client's settings (not its secrets), with `event` appended to the audit
/// trail in the same transaction. `Ok(false)` if it does not exist (nothing written).
pub(crate) async fn update(
    db: &Database,
    client: &Client,
    event: Option<&audit::AuditEvent>,
) -> Result<bool, StorageError> {
    let row = ClientRow::from_client(client);
    let mut conn = db.get().await?;
    let n = with_conn!(&mut conn, |c| c
        .transaction(async |tx| {
            let n = diesel::update(clients::table.find(&row.id))
                .set((&row, clients::revision.eq(clients::revision + 1)))
                .execute(tx)
                .await?;
            if n == 1
                && let Some(event) = event
            {
                audit::append(tx, event).await?;
            }
            Ok::<_, diesel::result::Error>(n)
        })
        .await)?;
    Ok(n == 1)
}

/// Deletes a client with everything issued to it (see `delete_client!`), with `event`
/// appended to the audit trail, in one transaction, at `now`. `Ok(false)` if it does not
/// exist (nothing written).
pub(crate) async fn delete(
    db: &Database,
    id: &str,
    now: i64,
    event: Option<&audit::AuditEvent>,
) -> Result<bool, StorageError> {
    let mut conn = db.get().await?;
    let n = with_conn!(&mut conn, |c| c
        .transaction(async |tx| {
            let n = delete_client!(tx, id, now);
            if n == 1
                && let Some(event) = event
            {
                audit::append(tx, event).await?;
            }
            Ok::<_, diesel::result::Error>(n)
        })
        .await)?;
    Ok(n == 1)
}

/// Adds a new secret and makes every other still-valid secret expire at `old_expires_at`
/// (the grace period), with `event` appended to the audit trail, in one transaction.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn rotate_secret(
    db: &Database,
    client_id: &str,
    new_id: &str,
    digest: [u8; 32],
    sealed: Option<&str>,
    now: i64,
    old_expires_at: i64,
    event: Option<&audit::AuditEvent>,
) -> Result<(), StorageError> {
    let row = SecretRow {
        id: new_id.to_owned(),
        client_id: client_id.to_owned(),
        secret_hash: hex(&digest),
        created_at: now,
        expires_at: None,
        sealed_secret: sealed.map(str::to_owned),
    };
    let mut conn = db.get().await?;
    with_conn!(&mut conn, |c| c
        .transaction(async |tx| {
            diesel::update(
                client_secrets::table
                    .filter(client_secrets::client_id.eq(client_id))
                    .filter(
                        client_secrets::expires_at
                            .is_null()
                            .or(client_secrets::expires_at.gt(old_expires_at)),
                    ),
            )
            .set(client_secrets::expires_at.eq(Some(old_expires_at)))
            .execute(tx)
            .await?;
            // Secrets already past their expiry are dead weight: drop them.
            diesel::delete(
                client_secrets::table
                    .filter(client_secrets::client_id.eq(client_id))
                    .filter(client_secrets::expires_at.le(now)),
            )
            .execute(tx)
            .await?;
            // admin API: the secrets shown with the client changed.
            diesel::update(clients::table.find(client_id))
                .set(clients::revision.eq(clients::revision + 1))
                .execute(tx)
                .await?;
            diesel::insert_into(client_secrets::table)
                .values(&row)
                .execute(tx)
                .await?;
            if let Some(event) = event {
                audit::append(tx, event).await?;
            }
            Ok::<_, diesel::result::Error>(())
        })
        .await)?;
    Ok(())
}

// admin API (issue 18): paging, revisions and conditional updates.

/// What the admin API lists clients by.
#[derive(Debug, Clone, Default)]
pub(crate) struct ClientFilter {
    /// Only clients whose id sorts after this one (the cursor).
    pub(crate) after: Option<String>,
    /// Only this token endpoint authentication method.
    pub(crate) auth_method: Option<String>,
    /// Only clients allowed this grant type.
    pub(crate) grant_type: Option<String>,
    /// Only first-party (or only third-party) clients.
    pub(crate) first_party: Option<bool>,
}

/// Up to `limit` clients matching `filter`, by id, each with its revision.
pub(crate) async fn page(
    db: &Database,
    filter: &ClientFilter,
    limit: i64,
) -> Result<Vec<(Client, i64)>, StorageError> {
    let mut conn = db.get().await?;
    let rows: Vec<(ClientRow, i64)> = with_conn!(&mut conn, |c| {
        let mut query = clients::table
            .order(clients::id.asc())
            .select((ClientRow::as_select(), clients::revision))
            .limit(limit)
            .into_boxed();
        if let Some(after) = &filter.after {
            query = query.filter(clients::id.gt(after.clone()));
        }
        if let Some(method) = &filter.auth_method {
            query = query.filter(clients::auth_method.eq(method.clone()));
        }
        if let Some(grant) = &filter.grant_type {
            // grant_types is a space-separated list: pad it so a whole word matches.
            let padded = format!("% {grant} %");
            query = query.filter(
                diesel::dsl::sql::<diesel::sql_types::Text>("(' ' || grant_types || ' ')")
                    .like(padded),
            );
        }
        if let Some(first_party) = filter.first_party {
            query = query.filter(clients::first_party.eq(first_party));
        }
        query.load(c).await
    })?;
    rows.into_iter()
        .map(|(row, revision)| Ok((row.into_client()?, revision)))
        .collect()
}

/// A client's current revision, if it exists.
pub(crate) async fn revision(db: &Database, id: &str) -> Result<Option<i64>, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| clients::table
        .find(id)
        .select(clients::revision)
        .first::<i64>(c)
        .await
        .optional())?)
}

/// Replaces a client's settings only if its revision is still `expected`; the new
/// revision, or `None` when the client is gone or was changed since (one conditional
/// statement, so of two concurrent writers with the same `expected` exactly one wins).
/// The winner's `event` is appended to the audit trail in the same transaction.
pub(crate) async fn update_if(
    db: &Database,
    client: &Client,
    expected: i64,
    event: Option<&audit::AuditEvent>,
) -> Result<Option<i64>, StorageError> {
    let row = ClientRow::from_client(client);
    let mut conn = db.get().await?;
    let n = with_conn!(&mut conn, |c| c
        .transaction(async |tx| {
            let n = diesel::update(
                clients::table
                    .filter(clients::id.eq(&row.id))
                    .filter(clients::revision.eq(expected)),
            )
            .set((&row, clients::revision.eq(expected + 1)))
            .execute(tx)
            .await?;
            if n == 1
                && let Some(event) = event
            {
                audit::append(tx, event).await?;
            }
            Ok::<_, diesel::result::Error>(n)
        })
        .await)?;
    Ok((n == 1).then_some(expected + 1))
}

// clientauth: the client assertion replay store (RFC 7523 §3 item 7)
/// Records that `client_id` used an assertion with `jti`, kept until `expires_at`.
/// `Ok(false)`: it was already recorded (a replay). The primary key decides, so two
/// replicas on one database never both accept the same `jti`.
pub(crate) async fn record_assertion_jti(
    db: &Database,
    client_id: &str,
    jti: &str,
    expires_at: i64,
) -> Result<bool, StorageError> {
    let mut conn = db.get().await?;
    let n = with_conn!(&mut conn, |c| diesel::insert_into(
        client_assertion_jtis::table
    )
    .values((
        client_assertion_jtis::client_id.eq(client_id),
        client_assertion_jtis::jti.eq(jti),
        client_assertion_jtis::expires_at.eq(expires_at),
    ))
    .on_conflict_do_nothing()
    .execute(c)
    .await)?;
    Ok(n == 1)
}

/// Deletes the recorded assertion `jti`s that expired before `now` (an expired assertion
/// is refused for its `exp` alone); returns how many.
pub(crate) async fn purge_assertion_jtis(db: &Database, now: i64) -> Result<usize, StorageError> {
    let mut conn = db.get().await?;
    Ok(with_conn!(&mut conn, |c| diesel::delete(
        client_assertion_jtis::table.filter(client_assertion_jtis::expires_at.lt(now))
    )
    .execute(c)
    .await)?)
}
// dcr: Dynamic Client Registration (RFC 7591, RFC 7592)

/// What [`insert_registered`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Registered {
    /// The client, its secret and its registration are stored; the initial access token
    /// (if any) has one use less.
    Done,
    /// The initial access token is expired, used up or revoked: nothing was written.
    TokenSpent,
    /// A client with this id exists: nothing was written.
    Exists,
}

/// Registers a client dynamically in one transaction: spends one use of the initial
/// access token `initial_token` (only while it has uses left and is unexpired at `now`),
/// inserts the client with its first secret, and records its registration access token
/// digest. Either all of it is committed or nothing.
pub(crate) async fn insert_registered(
    db: &Database,
    client: &Client,
    secret: Option<NewSecret<'_>>,
    access_token: [u8; 32],
    initial_token: Option<&str>,
    now: i64,
) -> Result<Registered, StorageError> {
    let row = ClientRow::from_client(client);
    let secret = secret_row(client, secret);
    let access_hash = hex(&access_token);
    let mut conn = db.get().await?;
    let outcome = with_conn!(&mut conn, |c| c
        .transaction(async |tx| {
            if let Some(token) = initial_token {
                let n = diesel::update(
                    registration_tokens::table
                        .filter(registration_tokens::id.eq(token))
                        .filter(registration_tokens::uses_left.gt(0))
                        .filter(registration_tokens::expires_at.gt(now)),
                )
                .set(registration_tokens::uses_left.eq(registration_tokens::uses_left - 1))
                .execute(tx)
                .await?;
                if n == 0 {
                    return Ok(Registered::TokenSpent);
                }
            }
            if insert_client!(tx, &row, secret.as_ref()) == 0 {
                // Undo the spent use.
                return Err(diesel::result::Error::RollbackTransaction);
            }
            diesel::insert_into(client_registrations::table)
                .values((
                    client_registrations::client_id.eq(&row.id),
                    client_registrations::access_token_hash.eq(&access_hash),
                    client_registrations::registration_token_id.eq(initial_token),
                    client_registrations::created_at.eq(now),
                    client_registrations::updated_at.eq(now),
                ))
                .execute(tx)
                .await?;
            Ok::<_, diesel::result::Error>(Registered::Done)
        })
        .await);
    match outcome {
        Err(diesel::result::Error::RollbackTransaction) => Ok(Registered::Exists),
        other => Ok(other?),
    }
}

/// The registration access token digest of a dynamically registered client; `None` for
/// clients registered otherwise and unknown ids.
pub(crate) async fn registration_token_digest(
    db: &Database,
    client_id: &str,
) -> Result<Option<[u8; 32]>, StorageError> {
    let mut conn = db.get().await?;
    let found: Option<String> = with_conn!(&mut conn, |c| client_registrations::table
        .find(client_id)
        .select(client_registrations::access_token_hash)
        .first(c)
        .await
        .optional())?;
    found
        .map(|h| unhex(&h).ok_or_else(|| corrupt("bad registration access token digest")))
        .transpose()
}

/// Replaces a dynamically registered client's settings and its registration access token
/// digest (RFC 7592 §2.2: a new token on every update), in one transaction. `Ok(false)`:
/// it is no longer registered.
pub(crate) async fn update_registered(
    db: &Database,
    client: &Client,
    access_token: [u8; 32],
) -> Result<bool, StorageError> {
    let row = ClientRow::from_client(client);
    let access_hash = hex(&access_token);
    let mut conn = db.get().await?;
    let n = with_conn!(&mut conn, |c| c
        .transaction(async |tx| {
            let n = diesel::update(
                client_registrations::table.filter(client_registrations::client_id.eq(&row.id)),
            )
            .set((
                client_registrations::access_token_hash.eq(&access_hash),
                client_registrations::updated_at.eq(row.updated_at),
            ))
            .execute(tx)
            .await?;
            if n == 1 {
                diesel::update(clients::table.find(&row.id))
                    .set(&row)
                    .execute(tx)
                    .await?;
            }
            Ok::<_, diesel::result::Error>(n)
        })
        .await)?;
    Ok(n == 1)
}
