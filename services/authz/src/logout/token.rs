//! logout: the Logout Token of OpenID Connect Back-Channel Logout 1.0 §2.4.

use serde_json::{Value, json};

/// The `typ` header of a logout token (§2.4: "explicitly typed", RFC 8725 §3.11).
pub(crate) const TYP: &str = "logout+jwt";

/// The member of `events` that makes a JWT a logout token (§2.4).
pub(crate) const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// What one logout token says.
pub(crate) struct LogoutClaims<'a> {
    /// `iss`: authz's issuer identifier.
    pub(crate) issuer: &'a str,
    /// `aud`: the client it is for.
    pub(crate) client_id: &'a str,
    /// `sub`: the End-User.
    pub(crate) subject: &'a str,
    /// `sid`: authz's session id, as in the ID tokens of that session.
    pub(crate) sid: &'a str,
    /// `jti`: unique per logout (kept across retries, so the receiver can spot a repeat).
    pub(crate) jti: &'a str,
    /// `iat` (Unix seconds).
    pub(crate) now: i64,
    /// `exp` - `iat`, seconds.
    pub(crate) ttl: i64,
}

/// The claims of §2.4: `iss`, `aud`, `iat`, `exp`, `jti`, `events` with the back-channel
/// logout event (an empty object), `sub` and `sid` (both always: authz advertises
/// `backchannel_logout_session_supported`), and never `nonce` (§2.4: "A nonce Claim MUST
/// NOT be present").
pub(crate) fn claims(c: &LogoutClaims<'_>) -> Value {
    json!({
        "iss": c.issuer,
        "aud": c.client_id,
        "iat": c.now,
        "exp": c.now.saturating_add(c.ttl),
        "jti": c.jti,
        "sub": c.subject,
        "sid": c.sid,
        "events": { EVENT: {} },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_logout_token_has_the_claims_of_section_2_4_and_no_nonce() {
        let c = claims(&LogoutClaims {
            issuer: "https://id.example.com",
            client_id: "rp",
            subject: "u1",
            sid: "s1",
            jti: "j1",
            now: 100,
            ttl: 120,
        });
        assert_eq!(c["iss"], "https://id.example.com");
        assert_eq!(c["aud"], "rp");
        assert_eq!(c["iat"], 100);
        assert_eq!(c["exp"], 220);
        assert_eq!(c["sub"], "u1");
        assert_eq!(c["sid"], "s1");
        assert_eq!(c["jti"], "j1");
        assert_eq!(c["events"], json!({ EVENT: {} }));
        assert!(c.get("nonce").is_none());
    }
}
