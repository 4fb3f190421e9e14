//! Token introspection (RFC 7662 §2.2) and the verification of the JWTs this server
//! issued: access tokens (with a cache of verified signatures) and ID tokens given back as
//! hints.

use std::collections::HashMap;
use std::sync::Arc;

use issuer::Algorithm;
use issuer::jws::{Expect, verify};
use tracing::instrument;

use super::model::{Claims, Introspection};
use super::service::{Tokens, looks_like_jwt, lookup_key};
use crate::error::Failure;

/// JWTs whose signature, `typ` and `iss` were already checked against one key ring, by the
/// SHA-256 of the token. A signature never changes its verdict for the same keys, so this
/// skips the public-key operation (about 100 µs for ES256) when resource servers
/// introspect the same token again; expiry and revocation are still checked every time.
/// Emptied whenever the key ring changes (a removed key must stop verifying) and when full.
#[derive(Default)]
pub(super) struct VerifiedCache {
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

impl Tokens {
    /// RFC 7662 §2.2: what the token is, if it is active now. Unknown, malformed, expired,
    /// revoked and foreign tokens are all just `active: false`.
    pub async fn introspect(&self, token: &str) -> Result<Introspection, Failure> {
        Ok(self
            .introspect_many(&[token])
            .await?
            .pop()
            .unwrap_or_default())
    }

    /// [`Tokens::introspect`] for several tokens at once, in order, with one database
    /// query for all JWT denylist checks and one for all opaque look-ups (each shared with
    /// concurrent introspections on PostgreSQL, see [`super::lookups::Coalesced`]).
    #[instrument(skip_all, fields(count = tokens.len()))]
    pub async fn introspect_many(&self, tokens: &[&str]) -> Result<Vec<Introspection>, Failure> {
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
        let revoked = self.revoked.find(&jtis).await?;
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
                act: claims.get("act").cloned(),
            };
        }
        let hashes: Vec<&str> = opaque.iter().map(|(_, h)| h.as_str()).collect();
        let rows = self.opaque.find(&hashes).await?;
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
                act: row
                    .act
                    .as_deref()
                    .and_then(|a| serde_json::from_str(a).ok()),
            };
        }
        // A token outlives neither its client nor the client's re-registration.
        for result in out.iter_mut().filter(|r| r.active) {
            let (Some(client_id), Some(iat)) = (&result.client_id, result.iat) else {
                *result = Introspection::default();
                continue;
            };
            if !self.clients.honours(client_id, iat).await? {
                *result = Introspection::default();
            }
        }
        Ok(out)
    }

    /// Whether a token issued to `client_id` at `iat` may still be honoured (see
    /// [`crate::clients::Clients::honours`]): for introspection of tokens kept elsewhere
    /// (refresh tokens).
    pub(crate) async fn honours(&self, client_id: &str, iat: i64) -> Result<bool, Failure> {
        Ok(self.clients.honours(client_id, iat).await?)
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
    pub(super) fn verified_claims(&self, token: &str) -> Option<Arc<Claims>> {
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
