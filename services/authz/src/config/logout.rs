//! logout: the `logout` section, how authz propagates the end of a session to relying
//! parties (OpenID Connect Back-Channel Logout 1.0 §2.5, §2.8).

use std::time::Duration;

use config::{ConfigError, Validate};
use serde::{Deserialize, Serialize};

/// The `logout` section: the stored queue of back-channel logout deliveries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogoutConfig {
    /// Lifetime (`exp` - `iat`) of a logout token (Back-Channel Logout 1.0 §2.4); each
    /// attempt signs a fresh one. 10s..10m.
    #[serde(with = "humantime_serde")]
    pub token_ttl: Duration,
    /// Deadline of one POST to a `backchannel_logout_uri` (connect to answer). 1s..60s.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Attempts per logout token before it is dropped (1..50).
    pub max_attempts: u32,
    /// Wait before the first retry; each further retry waits twice as long (up to
    /// `max_backoff`). 1s..`max_backoff`.
    #[serde(with = "humantime_serde")]
    pub initial_backoff: Duration,
    /// Longest wait between two attempts. Up to 1h.
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
    /// A delivery not done this long after the logout is dropped. 1m..7days.
    #[serde(with = "humantime_serde")]
    pub max_age: Duration,
    /// Cap on queued deliveries (all replicas); logouts beyond it are not propagated (and
    /// counted in `backchannel_logout_total{result="dropped"}`), the logout itself still
    /// succeeds. 1..1000000.
    pub max_queued: u32,
    /// How often each replica looks for due deliveries queued by other replicas (a logout
    /// or a scheduled retry on this replica wakes it at its time). 100ms..1m.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// Deliveries in flight at once per replica (1..1000).
    pub concurrency: u32,
}

impl Default for LogoutConfig {
    fn default() -> Self {
        Self {
            token_ttl: Duration::from_secs(120),
            timeout: Duration::from_secs(5),
            max_attempts: 8,
            initial_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(300),
            max_age: Duration::from_secs(3600),
            max_queued: 10_000,
            poll_interval: Duration::from_secs(10),
            concurrency: 32,
        }
    }
}

fn within(key: &str, value: Duration, min: Duration, max: Duration) -> Result<(), ConfigError> {
    if value < min || value > max {
        return Err(ConfigError::new(
            key,
            format!(
                "must be between {} and {}",
                humantime::format_duration(min),
                humantime::format_duration(max)
            ),
        ));
    }
    Ok(())
}

impl Validate for LogoutConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let s = Duration::from_secs;
        within("token_ttl", self.token_ttl, s(10), s(600))?;
        within("timeout", self.timeout, s(1), s(60))?;
        if !(1..=50).contains(&self.max_attempts) {
            return Err(ConfigError::new("max_attempts", "must be between 1 and 50"));
        }
        within("max_backoff", self.max_backoff, s(1), s(3600))?;
        within(
            "initial_backoff",
            self.initial_backoff,
            s(1),
            self.max_backoff,
        )?;
        within("max_age", self.max_age, s(60), s(7 * 86_400))?;
        if !(1..=1_000_000).contains(&self.max_queued) {
            return Err(ConfigError::new(
                "max_queued",
                "must be between 1 and 1000000",
            ));
        }
        within(
            "poll_interval",
            self.poll_interval,
            Duration::from_millis(100),
            s(60),
        )?;
        if !(1..=1000).contains(&self.concurrency) {
            return Err(ConfigError::new(
                "concurrency",
                "must be between 1 and 1000",
            ));
        }
        Ok(())
    }
}
