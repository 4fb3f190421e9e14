//! ID token claims (OpenID Connect Core §2, §3.1.3.6) and the scope-dependent standard
//! claims shared by ID tokens and userinfo (Core §5.1, §5.4).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::ScopeSet;
use issuer::Algorithm;
use proto::idp::v1::UserClaims;
use serde_json::{Map, Value};

/// Every claim this server can put in an ID token or a userinfo response
/// (`claims_supported`).
pub(crate) const SUPPORTED: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "sid",
    "at_hash",
    "name",
    "given_name",
    "family_name",
    "preferred_username",
    "picture",
    "locale",
    "updated_at",
    "email",
    "email_verified",
];

/// The scopes this server gives meaning to (`scopes_supported`); clients may be allowed
/// others (API scopes) as well.
pub(crate) const SCOPES: &[&str] = &["openid", "profile", "email", "offline_access"];

/// The standard claims of `user` that `scope` allows (Core §5.4): `profile` → name,
/// given_name, family_name, preferred_username, picture, locale, updated_at; `email` →
/// email, email_verified. idp already filters by scope; this filters again, so a claim
/// never leaks through a scope that was not granted.
pub(crate) fn scoped_claims(user: &UserClaims, scope: &ScopeSet) -> Map<String, Value> {
    let mut out = Map::new();
    let mut put = |name: &str, value: Option<Value>| {
        if let Some(v) = value {
            out.insert(name.to_owned(), v);
        }
    };
    if scope.contains("profile") {
        put("name", user.name.clone().map(Value::from));
        put("given_name", user.given_name.clone().map(Value::from));
        put("family_name", user.family_name.clone().map(Value::from));
        put(
            "preferred_username",
            user.preferred_username.clone().map(Value::from),
        );
        put("picture", user.picture.clone().map(Value::from));
        put("locale", user.locale.clone().map(Value::from));
        put("updated_at", user.updated_at.map(Value::from));
    }
    if scope.contains("email") {
        put("email", user.email.clone().map(Value::from));
        put("email_verified", user.email_verified.map(Value::from));
    }
    out
}

/// `at_hash` (Core §3.1.3.6): the base64url encoding of the left half of the hash of the
/// access token's ASCII octets, with the hash of the ID token's `alg`: SHA-256 for RS256,
/// PS256 and ES256; SHA-512 for EdDSA with Ed25519 (whose signature hashes with SHA-512).
pub(crate) fn at_hash(alg: Algorithm, access_token: &str) -> String {
    let digest_alg = match alg {
        Algorithm::EdDSA => &ring::digest::SHA512,
        Algorithm::RS256 | Algorithm::PS256 | Algorithm::ES256 => &ring::digest::SHA256,
    };
    let digest = ring::digest::digest(digest_alg, access_token.as_bytes());
    let bytes = digest.as_ref();
    URL_SAFE_NO_PAD.encode(&bytes[..bytes.len() / 2])
}

/// The facts of the authentication an ID token asserts.
pub(crate) struct Authentication<'a> {
    /// `sub`.
    pub(crate) subject: &'a str,
    /// `auth_time`: when the End-User actually authenticated (kept across refreshes).
    pub(crate) auth_time: i64,
    /// `amr`, space-separated.
    pub(crate) amr: &'a str,
    /// `acr`; omitted when empty.
    pub(crate) acr: &'a str,
    /// `sid`: authz's browser session.
    pub(crate) sid: &'a str,
    /// `nonce` of the authentication request (first ID token only).
    pub(crate) nonce: Option<&'a str>,
}

/// Who issues an ID token to whom, and when.
pub(crate) struct Issue<'a> {
    /// `iss`.
    pub(crate) issuer: &'a str,
    /// `aud`: the client.
    pub(crate) client_id: &'a str,
    /// `iat`.
    pub(crate) now: i64,
    /// Lifetime; `exp` = `iat` + `ttl`.
    pub(crate) ttl: i64,
}

/// The claims of an ID token (Core §2): `iss`, `sub`, `aud` (the client), `exp`, `iat`,
/// `auth_time`, `nonce` (when the request had one), `acr` and `amr` (when known), `sid`,
/// `at_hash`, then the standard claims `scope` allows.
pub(crate) fn id_token(
    issue: &Issue<'_>,
    auth: &Authentication<'_>,
    at_hash: String,
    user: &UserClaims,
    scope: &ScopeSet,
) -> Map<String, Value> {
    let mut claims = scoped_claims(user, scope);
    claims.insert("iss".into(), issue.issuer.into());
    claims.insert("sub".into(), auth.subject.into());
    claims.insert("aud".into(), issue.client_id.into());
    claims.insert("exp".into(), (issue.now + issue.ttl).into());
    claims.insert("iat".into(), issue.now.into());
    claims.insert("auth_time".into(), auth.auth_time.into());
    if let Some(nonce) = auth.nonce {
        claims.insert("nonce".into(), nonce.into());
    }
    if !auth.acr.is_empty() {
        claims.insert("acr".into(), auth.acr.into());
    }
    let amr: Vec<Value> = auth
        .amr
        .split(' ')
        .filter(|m| !m.is_empty())
        .map(Value::from)
        .collect();
    if !amr.is_empty() {
        claims.insert("amr".into(), Value::Array(amr));
    }
    claims.insert("sid".into(), auth.sid.into());
    claims.insert("at_hash".into(), at_hash.into());
    claims
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_is_the_left_half_of_the_alg_hash() {
        // OpenID Connect Core §A.3 example (RS256): access token → at_hash.
        assert_eq!(
            at_hash(
                Algorithm::RS256,
                "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"
            ),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
        assert_eq!(
            at_hash(Algorithm::EdDSA, "token").len(),
            43,
            "32 of 64 bytes"
        );
    }

    #[test]
    fn claims_follow_the_granted_scopes() {
        let user = UserClaims {
            sub: "u1".into(),
            name: Some("Ada".into()),
            email: Some("ada@example.com".into()),
            email_verified: Some(true),
            ..UserClaims::default()
        };
        let only_openid = ScopeSet::parse("openid").unwrap();
        assert!(scoped_claims(&user, &only_openid).is_empty());
        let email = scoped_claims(&user, &ScopeSet::parse("openid email").unwrap());
        assert_eq!(email.len(), 2);
        assert_eq!(email["email_verified"], true);
        let profile = scoped_claims(&user, &ScopeSet::parse("profile").unwrap());
        assert_eq!(profile["name"], "Ada");
        assert!(!profile.contains_key("email"));
    }

    #[test]
    fn id_token_claims() {
        let auth = Authentication {
            subject: "u1",
            auth_time: 100,
            amr: "pwd",
            acr: "",
            sid: "s1",
            nonce: Some("n"),
        };
        let issue = Issue {
            issuer: "https://id.example",
            client_id: "app",
            now: 150,
            ttl: 600,
        };
        let c = id_token(
            &issue,
            &auth,
            "h".into(),
            &UserClaims::default(),
            &ScopeSet::parse("openid").unwrap(),
        );
        assert_eq!(c["aud"], "app");
        assert_eq!(c["exp"], 750);
        assert_eq!(c["auth_time"], 100);
        assert_eq!(c["amr"], serde_json::json!(["pwd"]));
        assert_eq!(c["nonce"], "n");
        assert!(!c.contains_key("acr"));
    }
}
