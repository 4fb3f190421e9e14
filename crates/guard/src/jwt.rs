//! Local validation of RFC 9068 JWT access tokens (RFC 9068 §4): signature with a key of
//! the issuer's JWKS and an allowed algorithm, `typ: at+jwt`, `iss`, `aud`, `exp` and `nbf`
//! (with leeway), and the required claims.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use issuer::Algorithm;
use issuer::jws::{Expect, Verifiers, VerifyError};
use serde_json::{Map, Value};
use tracing::instrument;

use crate::error::{GuardError, TokenProblem};
use crate::jwks::{Jwks, KeySet};
use crate::principal::{Identity, Principal, actors, audiences, numeric_date, parse_scopes};

/// What every token must match.
#[derive(Debug, Clone)]
pub(crate) struct Expectations {
    pub(crate) issuer: String,
    pub(crate) audience: String,
    pub(crate) leeway: i64,
}

/// Verifies JWTs against the JWKS cache.
pub(crate) struct LocalVerifier {
    pub(crate) jwks: Arc<Jwks>,
    pub(crate) algorithms: Vec<Algorithm>,
    pub(crate) expect: Arc<Expectations>,
    pub(crate) verified: VerifiedCache,
}

/// Most tokens remembered; the cache is emptied when full.
const VERIFIED_CACHE_LIMIT: usize = 16_384;

/// Principals of tokens that already passed every check but time against one key set, by
/// the SHA-256 of the token. A client sends the same access token with many requests, and
/// the verdict on the same bytes with the same keys and expectations never changes, so a
/// repeat skips the public-key operation and the claim parsing (most of a request's cost).
/// `exp` and `nbf` are still checked on every request; the cache is emptied whenever the
/// key set changes, so a key dropped from the JWKS stops verifying at once.
#[derive(Default)]
pub(crate) struct VerifiedCache {
    inner: Mutex<VerifiedEntries>,
}

#[derive(Default)]
struct VerifiedEntries {
    /// The key set the entries were verified with (held, so its address is not reused).
    keys: Option<Arc<KeySet>>,
    principals: HashMap<[u8; 32], Remembered>,
}

#[derive(Clone)]
struct Remembered {
    principal: Principal,
    nbf: Option<i64>,
}

impl VerifiedCache {
    fn get(&self, keys: &Arc<KeySet>, digest: &[u8; 32]) -> Option<Remembered> {
        let inner = self.inner.lock().ok()?;
        let same = inner.keys.as_ref().is_some_and(|k| Arc::ptr_eq(k, keys));
        same.then(|| inner.principals.get(digest).cloned())
            .flatten()
    }

    fn insert(&self, keys: &Arc<KeySet>, digest: [u8; 32], entry: Remembered) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let same = inner.keys.as_ref().is_some_and(|k| Arc::ptr_eq(k, keys));
        if !same || inner.principals.len() >= VERIFIED_CACHE_LIMIT {
            inner.principals.clear();
            inner.keys = Some(Arc::clone(keys));
        }
        inner.principals.insert(digest, entry);
    }
}

fn problem(e: VerifyError) -> GuardError {
    GuardError::InvalidToken(match e {
        VerifyError::Malformed | VerifyError::MissingKid | VerifyError::UnsupportedCritical => {
            TokenProblem::Malformed
        }
        VerifyError::AlgorithmNotAllowed => TokenProblem::Algorithm,
        VerifyError::UnknownKid => TokenProblem::UnknownKey,
        VerifyError::KeyAlgorithmMismatch | VerifyError::BadSignature => TokenProblem::Signature,
        VerifyError::WrongType => TokenProblem::Type,
    })
}

impl LocalVerifier {
    /// The principal of `token` if it is a valid access token for this resource now.
    #[instrument(skip_all)]
    pub(crate) async fn verify(&self, token: &str, now: i64) -> Result<Principal, GuardError> {
        let digest = domain::secret::digest(token);
        let current = self.jwks.current();
        if let Some(keys) = &current
            && let Some(hit) = self.verified.get(keys, &digest)
        {
            check_time(hit.principal.exp, hit.nbf, self.expect.leeway, now)?;
            return Ok(hit.principal);
        }
        let expect = Expect {
            algorithms: &self.algorithms,
            typ: Some("at+jwt"),
        };
        let empty = Verifiers::new();
        let first = match &current {
            Some(keys) => issuer::jws::verify(token, keys.verifiers(), &expect),
            None => issuer::jws::verify(token, &empty, &expect),
        };
        let (verified, keys) = match first {
            Err(VerifyError::UnknownKid) => {
                // Perhaps a key published since the last fetch (rotation): refetch, rate-limited.
                let loaded = self.jwks.loaded();
                match self.jwks.refetch_for_unknown_kid().await {
                    Some(keys) => (
                        issuer::jws::verify(token, keys.verifiers(), &expect),
                        Some(keys),
                    ),
                    None if !loaded => return Err(GuardError::Unavailable),
                    None => (Err(VerifyError::UnknownKid), None),
                }
            }
            other => (other, current),
        };
        let claims = verified.map_err(problem)?.claims;
        let nbf = numeric_date(claims.get("nbf"));
        let principal = check_claims(claims, &self.expect, now)?;
        if let Some(keys) = &keys {
            let entry = Remembered {
                principal: principal.clone(),
                nbf,
            };
            self.verified.insert(keys, digest, entry);
        }
        Ok(principal)
    }
}

/// RFC 7519 §4.1.4 and §4.1.5: not accepted on or after `exp`, nor before `nbf`, give or
/// take `leeway` seconds.
fn check_time(exp: i64, nbf: Option<i64>, leeway: i64, now: i64) -> Result<(), GuardError> {
    if now >= exp.saturating_add(leeway) {
        return Err(GuardError::InvalidToken(TokenProblem::Expired));
    }
    if nbf.is_some_and(|nbf| now.saturating_add(leeway) < nbf) {
        return Err(GuardError::InvalidToken(TokenProblem::NotYetValid));
    }
    Ok(())
}

/// RFC 9068 §4 claim checks on verified claims, and the principal they describe.
pub(crate) fn check_claims(
    claims: Map<String, Value>,
    expect: &Expectations,
    now: i64,
) -> Result<Principal, GuardError> {
    let invalid = |p| GuardError::InvalidToken(p);
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    let (Some(iss), Some(sub), Some(client_id), Some(exp)) = (
        text("iss"),
        text("sub"),
        text("client_id"),
        numeric_date(claims.get("exp")),
    ) else {
        return Err(invalid(TokenProblem::Claims));
    };
    if iss != expect.issuer {
        return Err(invalid(TokenProblem::Issuer));
    }
    check_time(exp, numeric_date(claims.get("nbf")), expect.leeway, now)?;
    let aud = audiences(claims.get("aud"));
    if !aud.contains(&expect.audience) {
        return Err(invalid(TokenProblem::Audience));
    }
    Ok(Principal::new(Identity {
        sub: sub.to_owned(),
        client_id: client_id.to_owned(),
        scopes: parse_scopes(text("scope").unwrap_or_default()),
        aud,
        exp,
        act: actors(claims.get("act")),
        claims,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn expect() -> Expectations {
        Expectations {
            issuer: "https://id.example.com".into(),
            audience: "https://api.example.com".into(),
            leeway: 5,
        }
    }

    fn claims(extra: Value) -> Map<String, Value> {
        let mut base = json!({
            "iss": "https://id.example.com",
            "sub": "alice",
            "client_id": "app",
            "aud": ["https://other.example.com", "https://api.example.com"],
            "exp": 1_000,
            "iat": 900,
            "scope": "items:read items:write",
        });
        for (k, v) in extra.as_object().into_iter().flatten() {
            if v.is_null() {
                base.as_object_mut().map(|o| o.remove(k));
            } else {
                base[k] = v.clone();
            }
        }
        base.as_object().cloned().unwrap_or_default()
    }

    fn problem_of(extra: Value, now: i64) -> Option<TokenProblem> {
        match check_claims(claims(extra), &expect(), now) {
            Ok(_) => None,
            Err(GuardError::InvalidToken(p)) => Some(p),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_valid_token_describes_its_principal() {
        let p = check_claims(claims(json!({})), &expect(), 950).unwrap();
        assert_eq!(p.sub, "alice");
        assert_eq!(p.client_id, "app");
        assert!(p.has_scopes(&["items:read", "items:write"]));
        assert_eq!(p.aud.len(), 2);
        assert_eq!(p.exp, 1_000);
        assert_eq!(p.claims["iat"], 900);
        assert!(p.act.is_empty());
        let p = check_claims(
            claims(json!({"act": {"sub": "rs", "act": {"sub": "gateway"}}})),
            &expect(),
            950,
        )
        .unwrap();
        let chain: Vec<&str> = p.act.iter().map(|a| a.sub.as_str()).collect();
        assert_eq!(chain, ["rs", "gateway"]);
    }

    #[test]
    fn every_rfc_9068_check() {
        use TokenProblem::*;
        assert_eq!(problem_of(json!({}), 950), None);
        assert_eq!(problem_of(json!({}), 1_004), None, "within the leeway");
        assert_eq!(problem_of(json!({}), 1_005), Some(Expired));
        assert_eq!(problem_of(json!({"nbf": 960}), 950), Some(NotYetValid));
        assert_eq!(
            problem_of(json!({"nbf": 954}), 950),
            None,
            "within the leeway"
        );
        assert_eq!(
            problem_of(json!({"iss": "https://evil.example"}), 950),
            Some(Issuer)
        );
        assert_eq!(
            problem_of(json!({"aud": "https://other.example.com"}), 950),
            Some(Audience)
        );
        assert_eq!(problem_of(json!({"aud": null}), 950), Some(Audience));
        for missing in ["iss", "sub", "client_id", "exp"] {
            assert_eq!(
                problem_of(json!({ missing: null }), 950),
                Some(Claims),
                "{missing}"
            );
        }
        assert_eq!(problem_of(json!({"exp": "1000"}), 950), Some(Claims));
    }
}
