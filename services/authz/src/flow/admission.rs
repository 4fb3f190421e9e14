//! Admission of new pending authorization requests (issue 14): a per-address rate limit,
//! so that one address cannot fill the `authorization_requests` table with requests that
//! are never resumed. The total is bounded separately by `authorize.max_pending_requests`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Addresses tracked before stale windows are dropped.
const MAX_TRACKED: usize = 100_000;

/// A fixed one-minute window per client address, in the memory of this process: with
/// several replicas an address may create up to `limit` per replica per minute (each
/// replica's table writes are bounded the same way, and the global cap bounds the total).
pub(super) struct PerAddress {
    limit: u32,
    windows: Mutex<HashMap<IpAddr, (i64, u32)>>,
}

impl PerAddress {
    /// At most `limit` admissions per address and minute.
    pub(super) fn new(limit: u32) -> Self {
        Self {
            limit,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `addr` may create another pending request at `now` (Unix seconds); counts
    /// the admission when it may.
    pub(super) fn admit(&self, addr: IpAddr, now: i64) -> bool {
        let minute = now.div_euclid(60);
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if windows.len() >= MAX_TRACKED && !windows.contains_key(&addr) {
            windows.retain(|_, (at, _)| *at == minute);
        }
        let entry = windows.entry(addr).or_insert((minute, 0));
        if entry.0 != minute {
            *entry = (minute, 0);
        }
        if entry.1 >= self.limit {
            return false;
        }
        entry.1 += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_address_is_limited_per_minute_and_others_are_not() {
        let limiter = PerAddress::new(2);
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        assert!(limiter.admit(a, 120));
        assert!(limiter.admit(a, 130));
        assert!(!limiter.admit(a, 179));
        assert!(limiter.admit(b, 179));
        assert!(limiter.admit(a, 180), "a new minute");
    }
}
