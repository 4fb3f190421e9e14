//! The single-use links idp mails (issue 21): password reset and sign-up verification (a
//! generic store: other purposes, such as the account page's email change, add a constant), and the rate limits of the forms that send them.
//!
//! A link carries a random 192-bit token (32 base64url characters, so the link fits a
//! 76-character mail line and the message stays 7-bit on `make demo`); only its SHA-256 is stored, with the
//! link's purpose, the account it acts on, the address it went to and its expiry (OWASP
//! Forgot Password cheat sheet: random, single-use, short-lived, stored hashed). Using a
//! link deletes it in the same transaction as what it does, so it works once however many
//! replicas race; an expired, used or altered link finds nothing.
//!
//! The forms that send mail are limited per client address (IPv4 address, IPv6 /64) and
//! per email address (or typed login name), fixed windows in the database shared by every
//! replica. The limits count every request, whether or not an account exists, so being
//! limited says nothing about that either.

mod config;
pub(crate) mod repo;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use domain::secret::digest_hex;
use storage::Database;
use tracing::instrument;

pub use self::config::LinkFlowConfig;
use self::repo::LinkRow;
use crate::IdpError;
use crate::clock::{Clock, secs};
use crate::crypto::random_b64;

/// `purpose` of a password reset link.
pub(crate) const PURPOSE_RESET: &str = "reset";
/// `purpose` of a sign-up verification link.
pub(crate) const PURPOSE_SIGNUP: &str = "signup";
// account page
/// `purpose` of an email change verification link (the account page's).
pub(crate) const PURPOSE_EMAIL_CHANGE: &str = "email_change";

/// Longest token accepted from a URL (ours are 32 characters).
const MAX_TOKEN: usize = 128;

/// A live link, as [`Links::peek`] finds it.
#[derive(Debug, Clone)]
pub(crate) struct Link {
    /// The account it acts on (none for a sign-up).
    pub(crate) user_id: Option<String>,
    /// The address it was sent to.
    pub(crate) email: String,
    /// The purpose's extra data (a sign-up's JSON).
    pub(crate) payload: Option<String>,
}

/// The link store over the idp database. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Links {
    db: Database,
    clock: Arc<dyn Clock>,
}

/// The stored form of a token taken from a URL, or `None` when it cannot be one of ours.
pub(crate) fn token_hash(token: &str) -> Option<String> {
    let t = token.trim();
    (!t.is_empty()
        && t.len() <= MAX_TOKEN
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    .then(|| digest_hex(t))
}

/// Whether a rate-limited request may go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rate {
    /// Within every limit.
    Allowed,
    /// Over a limit: try again after this long.
    Limited(Duration),
}

impl Links {
    pub(crate) fn new(db: Database, clock: Arc<dyn Clock>) -> Self {
        Self { db, clock }
    }

    /// The database (for the purposes' own transactions in `repo`).
    pub(crate) fn db(&self) -> &Database {
        &self.db
    }

    /// Now, Unix seconds.
    pub(crate) fn now(&self) -> i64 {
        self.clock.unix()
    }

    /// Makes a link of `purpose` for `user_id` (none for a sign-up) sent to `email`, living
    /// `lifetime`; returns the token to put in the URL (never stored). A new reset or
    /// email-change link replaces the user's earlier ones of that purpose.
    #[instrument(skip_all)]
    pub(crate) async fn issue(
        &self,
        purpose: &'static str,
        user_id: Option<&str>,
        email: &str,
        payload: Option<String>,
        lifetime: Duration,
    ) -> Result<String, IdpError> {
        let token = random_b64(24)?;
        let now = self.now();
        let row = LinkRow {
            token_hash: digest_hex(&token),
            purpose: purpose.to_owned(),
            user_id: user_id.map(str::to_owned),
            email: email.to_owned(),
            payload,
            created_at: now,
            expires_at: now.saturating_add(secs(lifetime)),
        };
        repo::insert(&self.db, &row, purpose != PURPOSE_SIGNUP).await?;
        Ok(token)
    }

    /// The live link of `purpose` with `token` (unknown, used, expired, altered: `None`).
    #[instrument(skip_all)]
    pub(crate) async fn peek(
        &self,
        purpose: &'static str,
        token: &str,
    ) -> Result<Option<Link>, IdpError> {
        let Some(hash) = token_hash(token) else {
            return Ok(None);
        };
        Ok(repo::find(&self.db, purpose, &hash, self.now())
            .await?
            .map(|r| Link {
                user_id: r.user_id,
                email: r.email,
                payload: r.payload,
            }))
    }

    /// Counts a request of the form `purpose` from `address` for `email` (normalised
    /// lower-case; a typed login name counts the same way) against `limits`.
    #[instrument(skip_all)]
    pub(crate) async fn rate(
        &self,
        purpose: &'static str,
        address: Option<IpAddr>,
        email: &str,
        limits: &LinkFlowConfig,
    ) -> Result<Rate, IdpError> {
        let now = self.now();
        let window = secs(limits.window).max(1);
        let mut keys = vec![format!(
            "{purpose}:email:{}",
            digest_hex(&email.trim().to_lowercase())
        )];
        let mut caps = vec![i64::from(limits.per_email)];
        if let Some(ip) = address {
            keys.push(format!("{purpose}:{}", crate::throttle::address_key(ip)));
            caps.push(i64::from(limits.per_address));
        }
        let counts = repo::count_requests(&self.db, &keys, now, window).await?;
        let over = counts
            .iter()
            .zip(&caps)
            .filter(|((count, _), cap)| count > cap)
            .map(|((_, start), _)| start.saturating_add(window).saturating_sub(now).max(1))
            .max();
        Ok(match over {
            Some(wait) => {
                metrics::counter!("idp_email_rate_limited_total", "form" => purpose).increment(1);
                Rate::Limited(Duration::from_secs(u64::try_from(wait).unwrap_or(1)))
            }
            None => Rate::Allowed,
        })
    }

    /// Deletes expired links and finished rate windows (`max_window`: the longest
    /// configured window).
    pub(crate) async fn purge(&self, max_window: Duration) -> Result<(), IdpError> {
        let now = self.now();
        repo::purge(&self.db, now).await?;
        repo::purge_rates(&self.db, now.saturating_sub(secs(max_window))).await?;
        Ok(())
    }

    /// Purges every `every` until shutdown.
    pub(crate) fn spawn_upkeep(
        &self,
        every: Duration,
        max_window: Duration,
        stop: impl Future<Output = ()> + Send + 'static,
    ) {
        let links = self.clone();
        runtime::spawn_periodic(
            "email links purge",
            every,
            runtime::FirstRun::AfterInterval,
            stop,
            move || {
                let links = links.clone();
                async move {
                    if let Err(e) = links.purge(max_window).await {
                        tracing::warn!(error = %e, "email links purge failed");
                    }
                }
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tokens_of_our_alphabet_and_size_are_looked_up() {
        assert!(token_hash("abcDEF-_123").is_some());
        assert_eq!(token_hash("abc"), token_hash(" abc "));
        for bad in ["", "a b", "a+b", "a/b", "abc=", &"a".repeat(129)] {
            assert!(token_hash(bad).is_none(), "{bad}");
        }
    }
}
