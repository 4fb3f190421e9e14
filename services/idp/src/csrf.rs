//! Cross-site request forgery protection for every form (OWASP's "signed double-submit
//! cookie"): the browser holds a random pre-session value in an `HttpOnly` cookie, and each
//! form carries `HMAC-SHA256(key, purpose ‖ challenge ‖ cookie value)`. A forged request
//! from another site can neither read the cookie nor compute the HMAC, so its token does not
//! verify; binding the purpose and challenge keeps a token from being replayed on another
//! form or flow.
//!
//! A form token may also carry a time it is good until ([`Csrf::token_until`]): the login
//! form's says until when the flow it was served for stays pending, so its POST need not ask
//! authz again before the password work (see `http::login`). That time is part of the HMAC
//! input, under its own prefix, so it cannot be changed or stripped.
//!
//! The key comes from `csrf.key` (base64, at least 32 bytes). Without one, a random key is
//! made at start: fine for one replica, but forms rendered by one replica then fail (403) on
//! another, and every form open during a restart must be reloaded. Configure the same key on
//! every replica.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use config::{ConfigError, Secret, Validate};
use ring::hmac;
use serde::{Deserialize, Serialize};

use crate::IdpError;

/// The `csrf` section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsrfConfig {
    /// HMAC key of the form tokens: base64 of at least 32 random bytes, the same on every
    /// replica. Secret: give it as `key_file`. Random per process when absent.
    pub key: Option<Secret<String>>,
}

const MIN_KEY: usize = 32;

fn decode(key: &str) -> Result<Vec<u8>, String> {
    let key = key.trim();
    let bytes = STANDARD
        .decode(key)
        .or_else(|_| URL_SAFE_NO_PAD.decode(key.trim_end_matches('=')))
        .map_err(|_| "must be base64".to_owned())?;
    if bytes.len() < MIN_KEY {
        return Err(format!("must hold at least {MIN_KEY} bytes"));
    }
    Ok(bytes)
}

impl Validate for CsrfConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(key) = &self.key {
            decode(key.expose()).map_err(|m| ConfigError::new("key", m))?;
        }
        Ok(())
    }
}

/// What a token protects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// The login form.
    Login,
    /// The consent form.
    Consent,
    /// The logout confirmation.
    Logout,
    /// The device verification page (RFC 8628 §3.3).
    Device,
    // account page
    /// The account page's forms (the challenge names the form and the session).
    Account,
    // email, sign-up and password reset (issue 21)
    /// The "forgot password" form.
    Forgot,
    /// The new password form of a reset link.
    Reset,
    /// The sign-up form.
    Signup,
    /// The confirmation of a sign-up link.
    SignupVerify,
    /// upstream sign-in: a provider button of the login page.
    UpstreamStart,
    /// upstream sign-in: the first-login setup step.
    UpstreamSetup,
    /// upstream sign-in: the linked providers page.
    Providers,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::Consent => "consent",
            Self::Logout => "logout",
            Self::Device => "device",
            // account page
            Self::Account => "account",
            // email, sign-up and password reset (issue 21)
            Self::Forgot => "forgot",
            Self::Reset => "reset",
            Self::Signup => "signup",
            Self::SignupVerify => "signup_verify",
            Self::UpstreamStart => "upstream-start",
            Self::UpstreamSetup => "upstream-setup",
            Self::Providers => "providers",
        }
    }
}

/// Issues and checks form tokens.
#[derive(Clone)]
pub(crate) struct Csrf {
    key: hmac::Key,
}

impl Csrf {
    /// The configured key, or a random one (logged as a warning: see the module docs).
    pub(crate) fn new(config: &CsrfConfig) -> Result<Self, IdpError> {
        let key = match &config.key {
            Some(key) => {
                let bytes = decode(key.expose())
                    .map_err(|m| IdpError::Config(ConfigError::new("csrf.key", m)))?;
                hmac::Key::new(hmac::HMAC_SHA256, &bytes)
            }
            None => {
                tracing::warn!(
                    "csrf.key is not set: using a random key; forms only work on this replica and until it restarts"
                );
                hmac::Key::generate(hmac::HMAC_SHA256, &ring::rand::SystemRandom::new())
                    .map_err(|_| IdpError::Task("no randomness available".into()))?
            }
        };
        Ok(Self { key })
    }

    fn message(cookie: &str, purpose: Purpose, challenge: &str) -> Vec<u8> {
        let mut m = Vec::with_capacity(16 + challenge.len() + cookie.len());
        m.extend_from_slice(b"idp-csrf-v1\0");
        m.extend_from_slice(purpose.as_str().as_bytes());
        m.push(0);
        m.extend_from_slice(challenge.as_bytes());
        m.push(0);
        m.extend_from_slice(cookie.as_bytes());
        m
    }

    /// The message of a token good until `until` (Unix seconds): the time first, under a
    /// prefix of its own, so no token without a time has the same message.
    fn message_until(cookie: &str, purpose: Purpose, challenge: &str, until: i64) -> Vec<u8> {
        let mut m = b"idp-csrf-until-v1\0".to_vec();
        m.extend_from_slice(until.to_string().as_bytes());
        m.push(0);
        m.extend_from_slice(&Self::message(cookie, purpose, challenge));
        m
    }

    /// Like [`Csrf::token`], and also vouching that the flow was good until `until` (Unix
    /// seconds) when the form was served: `until.HMAC`, read back by [`Csrf::verify_until`].
    pub(crate) fn token_until(
        &self,
        cookie: &str,
        purpose: Purpose,
        challenge: &str,
        until: i64,
    ) -> String {
        let tag = hmac::sign(
            &self.key,
            &Self::message_until(cookie, purpose, challenge, until),
        );
        format!("{until}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    /// The time a [`Csrf::token_until`] token vouches for, when it was issued for this
    /// cookie, purpose and challenge (HMAC checked in constant time); `None` for any other
    /// token, including a plain [`Csrf::token`].
    pub(crate) fn verify_until(
        &self,
        cookie: Option<&str>,
        purpose: Purpose,
        challenge: &str,
        token: Option<&str>,
    ) -> Option<i64> {
        let cookie = cookie.filter(|c| !c.is_empty())?;
        let (text, tag) = token?.split_once('.')?;
        // Only the canonical spelling (no sign, no leading zeros): one token per time.
        let until: i64 = text.parse().ok().filter(|t: &i64| t.to_string() == text)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        hmac::verify(
            &self.key,
            &Self::message_until(cookie, purpose, challenge, until),
            &tag,
        )
        .ok()?;
        Some(until)
    }

    /// The token for a form of `purpose` in the flow `challenge`, for the browser whose CSRF
    /// cookie holds `cookie`.
    pub(crate) fn token(&self, cookie: &str, purpose: Purpose, challenge: &str) -> String {
        URL_SAFE_NO_PAD.encode(hmac::sign(
            &self.key,
            &Self::message(cookie, purpose, challenge),
        ))
    }

    /// Whether `token` was issued for this cookie, purpose and challenge (constant time).
    pub(crate) fn verify(
        &self,
        cookie: Option<&str>,
        purpose: Purpose,
        challenge: &str,
        token: Option<&str>,
    ) -> bool {
        let (Some(cookie), Some(token)) = (cookie, token) else {
            return false;
        };
        if cookie.is_empty() {
            return false;
        }
        let Ok(tag) = URL_SAFE_NO_PAD.decode(token) else {
            return false;
        };
        hmac::verify(&self.key, &Self::message(cookie, purpose, challenge), &tag).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_bound_to_cookie_purpose_and_challenge() {
        let csrf = Csrf::new(&CsrfConfig::default()).unwrap();
        let t = csrf.token("cookie", Purpose::Login, "ch1");
        assert!(csrf.verify(Some("cookie"), Purpose::Login, "ch1", Some(&t)));
        assert!(!csrf.verify(Some("other"), Purpose::Login, "ch1", Some(&t)));
        assert!(!csrf.verify(Some("cookie"), Purpose::Consent, "ch1", Some(&t)));
        assert!(!csrf.verify(Some("cookie"), Purpose::Login, "ch2", Some(&t)));
        assert!(!csrf.verify(None, Purpose::Login, "ch1", Some(&t)));
        assert!(!csrf.verify(Some("cookie"), Purpose::Login, "ch1", None));
        assert!(!csrf.verify(Some("cookie"), Purpose::Login, "ch1", Some("garbage!")));
        // Another replica with the same configured key accepts the token; a random key not.
        let key = STANDARD.encode([7u8; 32]);
        let config = CsrfConfig {
            key: Some(Secret::new(key)),
        };
        let a = Csrf::new(&config).unwrap();
        let b = Csrf::new(&config).unwrap();
        let t = a.token("c", Purpose::Logout, "");
        assert!(b.verify(Some("c"), Purpose::Logout, "", Some(&t)));
        assert!(!csrf.verify(Some("c"), Purpose::Logout, "", Some(&t)));
    }

    #[test]
    fn tokens_until_vouch_for_their_time_only() {
        let csrf = Csrf::new(&CsrfConfig::default()).unwrap();
        let t = csrf.token_until("cookie", Purpose::Login, "ch1", 1_700_000_600);
        let check = |cookie, purpose, challenge, token: &str| {
            csrf.verify_until(Some(cookie), purpose, challenge, Some(token))
        };
        assert_eq!(
            check("cookie", Purpose::Login, "ch1", &t),
            Some(1_700_000_600)
        );
        assert_eq!(check("other", Purpose::Login, "ch1", &t), None);
        assert_eq!(check("cookie", Purpose::Consent, "ch1", &t), None);
        assert_eq!(check("cookie", Purpose::Login, "ch2", &t), None);
        assert_eq!(
            csrf.verify_until(None, Purpose::Login, "ch1", Some(&t)),
            None
        );
        assert_eq!(
            csrf.verify_until(Some(""), Purpose::Login, "ch1", Some(&t)),
            None
        );
        // The time cannot be moved: neither later nor earlier.
        let (_, tag) = t.split_once('.').unwrap();
        for moved in ["1700000601", "1700000599", "-1", "99999999999"] {
            assert_eq!(
                check("cookie", Purpose::Login, "ch1", &format!("{moved}.{tag}")),
                None
            );
        }
        // A plain token is not one with a time, and the reverse.
        let plain = csrf.token("cookie", Purpose::Login, "ch1");
        assert_eq!(check("cookie", Purpose::Login, "ch1", &plain), None);
        assert_eq!(
            check("cookie", Purpose::Login, "ch1", &format!("0.{plain}")),
            None
        );
        assert!(!csrf.verify(Some("cookie"), Purpose::Login, "ch1", Some(&t)));
        assert!(!csrf.verify(Some("cookie"), Purpose::Login, "ch1", Some(tag)));
        for respelled in ["+1700000600", "01700000600"] {
            assert_eq!(
                check(
                    "cookie",
                    Purpose::Login,
                    "ch1",
                    &format!("{respelled}.{tag}")
                ),
                None
            );
        }
        for garbage in ["", ".", "x.y", "12", "12.", "12.!!"] {
            assert_eq!(check("cookie", Purpose::Login, "ch1", garbage), None);
        }
    }

    #[test]
    fn key_must_be_long_base64() {
        let short = CsrfConfig {
            key: Some(Secret::new(STANDARD.encode([1u8; 16]))),
        };
        assert_eq!(short.validate().unwrap_err().key, "key");
        let bad = CsrfConfig {
            key: Some(Secret::new("not base64 !".into())),
        };
        assert!(bad.validate().is_err());
    }
}
