use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::{AccessTokenFormat, ErrorCode, OAuthError, ScopeSet};
use issuer::jws::{Expect, verify};
use issuer::{Algorithm, Clock};
use ring::rand::{SecureRandom, SystemRandom};
use serde::Serialize;
use storage::{Database, StorageError};
use tracing::instrument;

use super::repo::{self, OpaqueRow};
use crate::clients::{Client, Clients};
use crate::keys::KeyStore;
use crate::signing::SigningPool;

/// A freshly issued access token (RFC 6749 §5.1).
#[derive(Debug)]
pub struct IssuedToken {
    /// The token.
    pub access_token: String,
    /// Lifetime in seconds.
    pub expires_in: i64,
    /// Granted scopes.
    pub scope: ScopeSet,
}

/// An access token made but not yet stored (see [`Tokens::prepare`]).
pub(crate) struct PreparedAccess {
    /// The token.
    pub(crate) token: String,
    /// Its `jti` (also kept for opaque tokens).
    pub(crate) jti: String,
    /// Expiry, Unix seconds.
    pub(crate) expires_at: i64,
    /// Lifetime in seconds.
    pub(crate) expires_in: i64,
    /// For opaque tokens: the row to store before the token is handed out.
    pub(crate) opaque: Option<OpaqueRow>,
}

/// RFC 7662 §2.2 introspection result; `active: false` carries nothing else.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Introspection {
    /// Whether the token is valid now.
    pub active: bool,
    /// Space-separated scopes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The client the token was issued to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Audiences.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aud: Vec<String>,
    /// Issuer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Expiry (Unix seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// Issued at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// `Bearer`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    /// Token id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

/// Token issuance, introspection and revocation.
pub struct Tokens {
    db: Database,
    keys: Arc<KeyStore>,
    /// For introspection: a token is active only while its client is (see
    /// [`Clients::honours`]).
    clients: Arc<Clients>,
    clock: Arc<dyn Clock>,
    issuer: String,
    default_alg: Algorithm,
    signing: SigningPool,
    rng: SystemRandom,
    verified: Mutex<VerifiedCache>,
    writer: super::writer::OpaqueWriter,
}

/// JWT claims.
pub(crate) type Claims = serde_json::Map<String, serde_json::Value>;

/// JWTs whose signature, `typ` and `iss` were already checked against one key ring, by the
/// SHA-256 of the token. A signature never changes its verdict for the same keys, so this
/// skips the public-key operation (about 100 µs for ES256) when resource servers
/// introspect the same token again; expiry and revocation are still checked every time.
/// Emptied whenever the key ring changes (a removed key must stop verifying) and when full.
#[derive(Default)]
struct VerifiedCache {
    /// The ring the entries were verified with (held, so its address cannot be reused).
    ring: Option<Arc<issuer::KeyRing>>,
    entries: HashMap<[u8; 32], Arc<Claims>>,
}

impl VerifiedCache {
    fn is_for(&self, ring: &Arc<issuer::KeyRing>) -> bool {
        self.ring.as_ref().is_some_and(|r| Arc::ptr_eq(r, ring))
    }
}

const VERIFIED_CACHE_LIMIT: usize = 16_384;

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
}

/// Logs `e` and answers `server_error` (never shows the cause to the client).
pub(crate) fn server_error(e: impl std::fmt::Display) -> OAuthError {
    tracing::error!(error = %e, "token operation failed");
    OAuthError::new(ErrorCode::ServerError, "internal error")
}

/// A storage failure as the client sees it: `temporarily_unavailable` when the pool is
/// exhausted, `server_error` otherwise.
pub(crate) fn storage_error(e: StorageError) -> OAuthError {
    if matches!(e, StorageError::Unavailable(_)) {
        tracing::warn!(error = %e, "database busy");
        return OAuthError::new(ErrorCode::TemporarilyUnavailable, "try again later");
    }
    server_error(e)
}

impl Tokens {
    /// The token service.
    pub fn new(
        db: Database,
        keys: Arc<KeyStore>,
        clients: Arc<Clients>,
        clock: Arc<dyn Clock>,
        signing: SigningPool,
        issuer: String,
        default_alg: Algorithm,
    ) -> Self {
        let writer = super::writer::OpaqueWriter::spawn(db.clone());
        Self {
            db,
            keys,
            clients,
            clock,
            issuer,
            default_alg,
            signing,
            rng: SystemRandom::new(),
            verified: Mutex::new(VerifiedCache::default()),
            writer,
        }
    }

    /// A new opaque secret (access token, refresh token, code, challenge, cookie):
    /// [`ORDER_PREFIX_LEN`] hex digits of the issue time in milliseconds, then 256 random
    /// bits (base64url). The prefix is public and only orders storage keys (see
    /// [`lookup_key`]); the random part is what makes the value secret.
    pub(crate) fn opaque_token(&self) -> Result<String, OAuthError> {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let prefix = format!(
            "{:0width$x}",
            millis & 0xffff_ffff_ffff,
            width = ORDER_PREFIX_LEN
        );
        Ok(prefix + &self.random(32)?)
    }

    /// `bytes` random bytes, base64url (ids and `jti`s).
    pub(crate) fn random(&self, bytes: usize) -> Result<String, OAuthError> {
        let mut buf = vec![0u8; bytes];
        self.rng
            .fill(&mut buf)
            .map_err(|_| server_error("no randomness"))?;
        Ok(URL_SAFE_NO_PAD.encode(buf))
    }

    /// The issuer identifier, as configured.
    pub(crate) fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The current time (Unix seconds) of the clock every token is stamped with.
    pub(crate) fn now(&self) -> i64 {
        self.clock.now()
    }

    /// The algorithm that signs `client`'s tokens.
    pub(crate) fn alg_for(&self, client: &Client) -> Algorithm {
        client.signing_alg.unwrap_or(self.default_alg)
    }

    /// Signs `claims` as a compact JWS with `typ`, with the current key of `alg`. RSA
    /// signatures run on the bounded [`SigningPool`] (they take hundreds of microseconds of
    /// CPU); the others are fast enough to compute here.
    #[instrument(skip_all, fields(alg = %alg))]
    pub(crate) async fn sign<T: Serialize>(
        &self,
        alg: Algorithm,
        typ: &'static str,
        claims: &T,
    ) -> Result<String, OAuthError> {
        let signer = self
            .keys
            .ring()
            .signer(alg, self.clock.now())
            .ok_or_else(|| server_error(format!("no current {alg} signing key")))?;
        if alg.is_rsa() {
            let payload = serde_json::to_vec(claims).map_err(server_error)?;
            self.signing
                .run(move || signer.sign_jwt_json(typ, &payload))
                .await
                .map_err(server_error)?
                .map_err(server_error)
        } else {
            signer.sign_jwt(typ, claims).map_err(server_error)
        }
    }

    /// Makes an access token for `client` without storing anything: a signed RFC 9068 JWT,
    /// or an opaque token with the row that must be stored before it is handed out.
    #[instrument(skip_all, fields(client_id = %client.id))]
    pub(crate) async fn prepare(
        &self,
        client: &Client,
        subject: &str,
        scope: &ScopeSet,
        aud: &[String],
    ) -> Result<PreparedAccess, OAuthError> {
        let now = self.clock.now();
        let exp = now + client.access_token_ttl;
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
                    audience: serde_json::to_string(aud).map_err(server_error)?,
                    issued_at: now,
                    expires_at: exp,
                };
                (token, Some(row))
            }
        };
        Ok(PreparedAccess {
            token,
            jti,
            expires_at: exp,
            expires_in: client.access_token_ttl,
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
    ) -> Result<IssuedToken, OAuthError> {
        let prepared = self.prepare(client, subject, &scope, &aud).await?;
        if let Some(row) = prepared.opaque {
            self.writer.insert(row).await.map_err(|e| {
                if matches!(*e, StorageError::Unavailable(_)) {
                    tracing::warn!(error = %e, "database busy");
                    OAuthError::new(ErrorCode::TemporarilyUnavailable, "try again later")
                } else {
                    server_error(e)
                }
            })?;
        }
        Ok(IssuedToken {
            access_token: prepared.token,
            expires_in: prepared.expires_in,
            scope,
        })
    }

    /// RFC 7662 §2.2: what the token is, if it is active now. Unknown, malformed, expired,
    /// revoked and foreign tokens are all just `active: false`.
    pub async fn introspect(&self, token: &str) -> Result<Introspection, OAuthError> {
        Ok(self
            .introspect_many(&[token])
            .await?
            .pop()
            .unwrap_or_default())
    }

    /// [`Tokens::introspect`] for several tokens at once, in order, with one database
    /// query for all JWT denylist checks and one for all opaque look-ups.
    #[instrument(skip_all, fields(count = tokens.len()))]
    pub async fn introspect_many(&self, tokens: &[&str]) -> Result<Vec<Introspection>, OAuthError> {
        let now = self.clock.now();
        let mut out = vec![Introspection::default(); tokens.len()];
        let mut jwts = Vec::new();
        let mut opaque = Vec::new();
        for (i, token) in tokens.iter().enumerate() {
            if looks_like_jwt(token) {
                if let Some(claims) = self.verified_claims(token) {
                    let exp = claims
                        .get("exp")
                        .and_then(serde_json::Value::as_i64)
                        .unwrap_or(0);
                    let has_jti = claims
                        .get("jti")
                        .and_then(serde_json::Value::as_str)
                        .is_some_and(|j| !j.is_empty());
                    if exp > now && has_jti {
                        jwts.push((i, claims));
                    }
                }
            } else {
                opaque.push((i, lookup_key(token)));
            }
        }
        let jtis: Vec<&str> = jwts
            .iter()
            .filter_map(|(_, c)| c.get("jti").and_then(serde_json::Value::as_str))
            .collect();
        let revoked = repo::revoked_among(&self.db, &jtis)
            .await
            .map_err(storage_error)?;
        for (i, claims) in &jwts {
            let text = |k: &str| {
                claims
                    .get(k)
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_owned)
            };
            let jti = text("jti").unwrap_or_default();
            if revoked.contains(&jti) {
                continue;
            }
            let aud = match claims.get("aud") {
                Some(serde_json::Value::String(s)) => vec![s.clone()],
                Some(serde_json::Value::Array(a)) => a
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect(),
                _ => Vec::new(),
            };
            out[*i] = Introspection {
                active: true,
                scope: text("scope"),
                client_id: text("client_id"),
                sub: text("sub"),
                aud,
                iss: text("iss"),
                exp: claims.get("exp").and_then(serde_json::Value::as_i64),
                iat: claims.get("iat").and_then(serde_json::Value::as_i64),
                token_type: Some("Bearer".into()),
                jti: Some(jti),
            };
        }
        let hashes: Vec<&str> = opaque.iter().map(|(_, h)| h.as_str()).collect();
        let rows = repo::find_opaque_many(&self.db, &hashes)
            .await
            .map_err(storage_error)?;
        for (i, h) in &opaque {
            let Some(row) = rows.iter().find(|r| &r.token_hash == h) else {
                continue;
            };
            if row.expires_at <= now {
                continue;
            }
            out[*i] = Introspection {
                active: true,
                scope: Some(row.scope.clone()),
                client_id: Some(row.client_id.clone()),
                sub: Some(row.subject.clone()),
                aud: serde_json::from_str(&row.audience).unwrap_or_default(),
                iss: Some(self.issuer.clone()),
                exp: Some(row.expires_at),
                iat: Some(row.issued_at),
                token_type: Some("Bearer".into()),
                jti: Some(row.jti.clone()),
            };
        }
        // A token outlives neither its client nor the client's re-registration.
        for result in out.iter_mut().filter(|r| r.active) {
            let (Some(client_id), Some(iat)) = (&result.client_id, result.iat) else {
                *result = Introspection::default();
                continue;
            };
            if !self
                .clients
                .honours(client_id, iat)
                .await
                .map_err(storage_error)?
            {
                *result = Introspection::default();
            }
        }
        Ok(out)
    }

    /// RFC 7009 §2.1: revokes `token` if it was issued to `client`; anything else (unknown,
    /// expired, another client's) is left alone and still succeeds.
    #[instrument(skip_all, fields(client_id = %client.id))]
    pub async fn revoke(&self, client: &Client, token: &str) -> Result<(), OAuthError> {
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
                repo::revoke_jti(&self.db, jti, owner, exp)
                    .await
                    .map_err(storage_error)?;
            }
            return Ok(());
        }
        repo::delete_opaque(&self.db, &lookup_key(token), client.id.as_str())
            .await
            .map_err(storage_error)?;
        Ok(())
    }

    /// Deletes expired opaque tokens and denylist entries.
    pub async fn purge_expired(&self) -> Result<usize, StorageError> {
        repo::purge_expired(&self.db, self.clock.now()).await
    }

    /// The claims of an ID token this server issued (OpenID Connect Core §2): a valid
    /// signature by a published key, `typ: JWT` (so an access token is never taken for an
    /// ID token), our `iss`. Expiry is not checked: an expired ID token is still a good
    /// `id_token_hint` (Core §3.1.2.1, RP-Initiated Logout §2).
    pub(crate) fn verified_id_token(&self, token: &str) -> Option<Claims> {
        let ring = self.keys.ring();
        let expect = Expect {
            algorithms: &Algorithm::ALL,
            typ: Some("JWT"),
        };
        match verify(token, ring.verifiers(), &expect) {
            Ok(v)
                if v.claims.get("iss").and_then(serde_json::Value::as_str)
                    == Some(self.issuer.as_str()) =>
            {
                Some(v.claims)
            }
            Ok(_) | Err(_) => None,
        }
    }

    /// The claims of a JWT access token this server issued (valid signature by a published
    /// key, `typ: at+jwt`, our `iss`), or `None`. Expiry is the caller's to check.
    fn verified_claims(&self, token: &str) -> Option<Arc<Claims>> {
        let ring = self.keys.ring();
        let key = domain::secret::digest(token);
        if let Ok(cache) = self.verified.lock()
            && cache.is_for(&ring)
            && let Some(claims) = cache.entries.get(&key)
        {
            return Some(Arc::clone(claims));
        }
        let expect = Expect {
            algorithms: &Algorithm::ALL,
            typ: Some("at+jwt"),
        };
        let claims = match verify(token, ring.verifiers(), &expect) {
            Ok(v)
                if v.claims.get("iss").and_then(serde_json::Value::as_str)
                    == Some(self.issuer.as_str()) =>
            {
                Arc::new(v.claims)
            }
            Ok(_) | Err(_) => return None,
        };
        if let Ok(mut cache) = self.verified.lock() {
            if !cache.is_for(&ring) || cache.entries.len() >= VERIFIED_CACHE_LIMIT {
                cache.entries.clear();
                cache.ring = Some(Arc::clone(&ring));
            }
            cache.entries.insert(key, Arc::clone(&claims));
        }
        Some(claims)
    }
}

fn looks_like_jwt(token: &str) -> bool {
    token.bytes().filter(|b| *b == b'.').count() == 2
}

/// Hex digits of time at the start of an opaque token.
pub(crate) const ORDER_PREFIX_LEN: usize = 12;

/// The database key of an opaque token: its public time prefix followed by the SHA-256 of
/// the whole token, so only a digest is stored (RFC 6819 §5.1.4.1.3) while keys of new
/// tokens sort after older ones. A burst of issuance then appends to one end of the
/// primary-key index instead of dirtying a random index page per token, which is most of
/// the cost of storing a token. Any string maps to some key; a malformed token simply
/// matches nothing.
pub(crate) fn lookup_key(token: &str) -> String {
    let prefix = token.get(..ORDER_PREFIX_LEN).unwrap_or_default();
    prefix.to_owned() + &domain::secret::digest_hex(token)
}
