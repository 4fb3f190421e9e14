//! Brute-force protection for the login form: failure counters per account (the login name
//! as typed, normalised) and per client IP (IPv6 by /64), with exponential back-off.
//!
//! After `free_failures` failures, each further failure blocks that key for
//! `base_delay · 2^(n-1)` (n = failures beyond the free ones), at most `max_delay`. While a
//! key is blocked, attempts are refused before any password is checked. A success clears
//! the account's and the IP's counters; a key without failures for `reset_after` is
//! forgotten. Unknown login names are counted exactly like existing ones, so being blocked
//! says nothing about whether an account exists.
//!
//! The counters live in memory, per replica, in a map of at most `max_entries` keys (the
//! stalest are dropped first when it is full). Behind a load balancer an attacker's tries
//! spread over the replicas, so the effective limit is about `replicas ×` the configured one.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use config::{ConfigError, Validate};
use serde::{Deserialize, Serialize};

use crate::clock::Clock;

/// The `login_throttle` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThrottleConfig {
    /// Failures allowed for one login name before back-off starts.
    pub account_free_failures: u32,
    /// Failures allowed from one IP address (IPv6: one /64) before back-off starts; higher,
    /// as many users may share an address.
    pub ip_free_failures: u32,
    /// The first back-off; it doubles with each further failure.
    #[serde(with = "humantime_serde")]
    pub base_delay: Duration,
    /// The longest back-off.
    #[serde(with = "humantime_serde")]
    pub max_delay: Duration,
    /// Counters of a key without failures for this long are forgotten.
    #[serde(with = "humantime_serde")]
    pub reset_after: Duration,
    /// Most keys tracked at once (bounds memory).
    pub max_entries: usize,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            account_free_failures: 5,
            ip_free_failures: 20,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(15 * 60),
            reset_after: Duration::from_secs(3600),
            max_entries: 100_000,
        }
    }
}

impl Validate for ThrottleConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.base_delay.is_zero() {
            return Err(ConfigError::new("base_delay", "must be greater than zero"));
        }
        if self.max_delay < self.base_delay {
            return Err(ConfigError::new("max_delay", "must be at least base_delay"));
        }
        if self.reset_after < self.max_delay {
            return Err(ConfigError::new(
                "reset_after",
                "must be at least max_delay",
            ));
        }
        if !(100..=10_000_000).contains(&self.max_entries) {
            return Err(ConfigError::new(
                "max_entries",
                "must be between 100 and 10000000",
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Account(String),
    Ip(IpAddr),
}

impl Key {
    fn scope(&self) -> &'static str {
        match self {
            Self::Account(_) => "account",
            Self::Ip(_) => "ip",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last_failure: SystemTime,
    blocked_until: SystemTime,
}

/// The failure counters of one replica. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Throttle {
    config: ThrottleConfig,
    clock: Arc<dyn Clock>,
    entries: Arc<Mutex<HashMap<Key, Entry>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Login names longer than this share a key with their prefix (bounds key memory).
const MAX_KEY_LEN: usize = 256;

fn account_key(login: &str) -> Key {
    let mut name = login.trim().to_lowercase();
    if name.len() > MAX_KEY_LEN {
        let mut end = MAX_KEY_LEN;
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        name.truncate(end);
    }
    Key::Account(name)
}

fn ip_key(ip: IpAddr) -> Key {
    match ip {
        IpAddr::V4(_) => Key::Ip(ip),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => Key::Ip(IpAddr::V4(v4)),
            None => {
                let s = v6.segments();
                Key::Ip(IpAddr::V6(std::net::Ipv6Addr::new(
                    s[0], s[1], s[2], s[3], 0, 0, 0, 0,
                )))
            }
        },
    }
}

impl Throttle {
    pub(crate) fn new(config: ThrottleConfig, clock: Arc<dyn Clock>) -> Self {
        Self {
            config,
            clock,
            entries: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn keys(login: &str, ip: Option<IpAddr>) -> Vec<Key> {
        let mut keys = vec![account_key(login)];
        keys.extend(ip.map(ip_key));
        keys
    }

    /// `Some(wait)` when the login name or the address is in back-off (the attempt must be
    /// refused without checking the password), `None` when the attempt may proceed.
    pub(crate) fn blocked(&self, login: &str, ip: Option<IpAddr>) -> Option<Duration> {
        let now = self.clock.now();
        let entries = lock(&self.entries);
        let mut wait: Option<(Duration, &'static str)> = None;
        for key in Self::keys(login, ip) {
            if let Some(left) = entries
                .get(&key)
                .and_then(|e| e.blocked_until.duration_since(now).ok())
                .filter(|d| !d.is_zero())
                && wait.is_none_or(|(w, _)| left > w)
            {
                wait = Some((left, key.scope()));
            }
        }
        drop(entries);
        let (left, scope) = wait?;
        metrics::counter!("idp_login_throttled_total", "scope" => scope).increment(1);
        Some(left)
    }

    /// Counts a failed attempt against the login name and the address.
    pub(crate) fn failure(&self, login: &str, ip: Option<IpAddr>) {
        let now = self.clock.now();
        let mut entries = lock(&self.entries);
        for key in Self::keys(login, ip) {
            let free = match key {
                Key::Account(_) => self.config.account_free_failures,
                Key::Ip(_) => self.config.ip_free_failures,
            };
            if !entries.contains_key(&key) && entries.len() >= self.config.max_entries {
                self.make_room(&mut entries, now);
            }
            let entry = entries.entry(key).or_insert(Entry {
                failures: 0,
                last_failure: now,
                blocked_until: now,
            });
            if self.stale(entry, now) {
                entry.failures = 0;
            }
            entry.failures = entry.failures.saturating_add(1);
            entry.last_failure = now;
            if entry.failures > free {
                entry.blocked_until = now + self.delay(entry.failures - free);
            }
        }
        #[allow(clippy::cast_precision_loss)]
        metrics::gauge!("idp_login_throttle_tracked").set(entries.len() as f64);
    }

    /// Clears the counters of the login name and the address after a successful login.
    pub(crate) fn success(&self, login: &str, ip: Option<IpAddr>) {
        let mut entries = lock(&self.entries);
        for key in Self::keys(login, ip) {
            entries.remove(&key);
        }
        #[allow(clippy::cast_precision_loss)]
        metrics::gauge!("idp_login_throttle_tracked").set(entries.len() as f64);
    }

    /// The back-off after the `n`-th failure beyond the free ones (n ≥ 1).
    fn delay(&self, n: u32) -> Duration {
        let factor = 1u32.checked_shl(n - 1).unwrap_or(u32::MAX);
        self.config
            .base_delay
            .checked_mul(factor)
            .unwrap_or(self.config.max_delay)
            .min(self.config.max_delay)
    }

    fn stale(&self, entry: &Entry, now: SystemTime) -> bool {
        now.duration_since(entry.last_failure)
            .is_ok_and(|d| d >= self.config.reset_after)
    }

    /// Drops forgotten keys; if the map is still full, the tenth with the oldest failures.
    fn make_room(&self, entries: &mut HashMap<Key, Entry>, now: SystemTime) {
        entries.retain(|_, e| !self.stale(e, now));
        if entries.len() < self.config.max_entries {
            return;
        }
        let mut ages: Vec<SystemTime> = entries.values().map(|e| e.last_failure).collect();
        ages.sort_unstable();
        let cut = ages[(ages.len() / 10).min(ages.len() - 1)];
        entries.retain(|_, e| e.last_failure > cut);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    struct Manual(AtomicU64);
    impl Clock for Manual {
        fn now(&self) -> SystemTime {
            SystemTime::UNIX_EPOCH + Duration::from_millis(self.0.load(Ordering::Relaxed))
        }
    }

    fn throttle(config: ThrottleConfig) -> (Throttle, Arc<Manual>) {
        let clock = Arc::new(Manual(AtomicU64::new(1_000_000_000)));
        (Throttle::new(config, clock.clone()), clock)
    }

    fn advance(clock: &Manual, d: Duration) {
        clock
            .0
            .fetch_add(u64::try_from(d.as_millis()).unwrap(), Ordering::Relaxed);
    }

    const IP: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));

    #[test]
    fn exponential_back_off_per_account() {
        let (t, clock) = throttle(ThrottleConfig {
            account_free_failures: 2,
            ip_free_failures: 100,
            ..ThrottleConfig::default()
        });
        t.failure("Alice", IP);
        t.failure("alice ", IP);
        assert_eq!(t.blocked("alice", IP), None, "two free failures");
        t.failure("alice", IP);
        assert_eq!(t.blocked("ALICE", IP), Some(Duration::from_secs(1)));
        assert_eq!(
            t.blocked("bob", IP),
            None,
            "other accounts are not affected"
        );
        advance(&clock, Duration::from_secs(1));
        assert_eq!(t.blocked("alice", IP), None, "the back-off ends");
        t.failure("alice", IP);
        assert_eq!(t.blocked("alice", IP), Some(Duration::from_secs(2)));
        advance(&clock, Duration::from_secs(2));
        t.failure("alice", IP);
        assert_eq!(t.blocked("alice", IP), Some(Duration::from_secs(4)));
        for _ in 0..40 {
            t.failure("alice", IP);
        }
        assert_eq!(
            t.blocked("alice", IP),
            Some(Duration::from_secs(900)),
            "capped"
        );
        t.success("alice", IP);
        assert_eq!(t.blocked("alice", IP), None, "reset on success");
    }

    #[test]
    fn per_ip_and_forgetting() {
        let (t, clock) = throttle(ThrottleConfig {
            account_free_failures: 100,
            ip_free_failures: 3,
            ..ThrottleConfig::default()
        });
        let v6 = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        for name in ["a", "b", "c", "d"] {
            t.failure(name, v6("2001:db8::1"));
        }
        assert!(t.blocked("e", v6("2001:db8::2")).is_some(), "same /64");
        assert!(t.blocked("e", v6("2001:db9::1")).is_none());
        assert!(t.blocked("e", None).is_none());
        advance(&clock, Duration::from_secs(3600));
        t.failure("f", v6("2001:db8::1"));
        assert!(
            t.blocked("g", v6("2001:db8::1")).is_none(),
            "counters are forgotten after reset_after"
        );
    }

    #[test]
    fn a_success_clears_the_address_too() {
        let (t, _clock) = throttle(ThrottleConfig {
            account_free_failures: 100,
            ip_free_failures: 2,
            ..ThrottleConfig::default()
        });
        let v6 = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        for name in ["a", "b", "c"] {
            t.failure(name, v6("2001:db8::1"));
        }
        assert_eq!(
            t.blocked("d", v6("2001:db8::1")),
            Some(Duration::from_secs(1)),
            "the address is in back-off"
        );
        t.success("d", v6("2001:db8::2"));
        assert_eq!(
            t.blocked("e", v6("2001:db8::1")),
            None,
            "a success from the same /64 clears it"
        );
        t.failure("e", v6("2001:db8::1"));
        t.failure("f", v6("2001:db8::1"));
        assert_eq!(
            t.blocked("g", v6("2001:db8::1")),
            None,
            "free failures again"
        );
        t.failure("g", v6("2001:db8::1"));
        assert_eq!(
            t.blocked("h", v6("2001:db8::1")),
            Some(Duration::from_secs(1)),
            "the doubling starts over"
        );
    }

    #[test]
    fn memory_is_bounded() {
        let (t, _clock) = throttle(ThrottleConfig {
            max_entries: 100,
            ..ThrottleConfig::default()
        });
        for i in 0..1000 {
            t.failure(&format!("user{i}"), None);
        }
        assert!(lock(&t.entries).len() <= 100);
        assert!(ThrottleConfig::default().validate().is_ok());
    }
}
