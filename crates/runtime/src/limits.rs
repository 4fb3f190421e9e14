use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use config::{ConfigError, Validate};
use serde::{Deserialize, Serialize};

/// Counter: requests (HTTP) or calls (gRPC) answered 503 / `UNAVAILABLE` because a
/// connection or concurrency cap was reached, per `listener` (`http`, `admin`, `grpc`).
pub const SHED_METRIC: &str = "http_requests_shed_total";
/// Counter: requests answered 408 because they were not received and answered within
/// `limits.request_timeout`, and gRPC connections closed because the peer stalled, per
/// `listener`.
pub const TIMEOUT_METRIC: &str = "http_request_timeouts_total";
/// Counter: gRPC connections closed on accept because `limits.grpc_max_connections` or
/// `limits.max_connections_per_peer` was reached, per `listener`.
pub const REFUSED_METRIC: &str = "http_connections_refused_total";
/// Gauge: connections open on a listener right now, admitted or not, per `listener`.
pub const OPEN_METRIC: &str = "http_connections_open";

/// The `limits` section: deadlines and caps on every listener of the process (public HTTP,
/// admin HTTP, gRPC), so slow or stalled clients and connection floods cannot exhaust the
/// process's file descriptors or hold requests forever (issue 14). When a cap is reached
/// the listener sheds load at once: HTTP answers `503 Service Unavailable` with
/// `Retry-After` (RFC 9110 §10.2.3) and `Connection: close`, gRPC answers `UNAVAILABLE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// HTTP: how long a client may take to send a request's head (request line and
    /// headers) after connecting or after its previous request; slower clients get 408
    /// and are disconnected.
    #[serde(with = "humantime_serde")]
    pub header_timeout: Duration,
    /// HTTP: how long a request may take from the end of its head until its answer is
    /// ready, reading the body included; past it the client gets 408 with
    /// `Connection: close`. gRPC: the longest any call may run before it is ended with
    /// `CANCELLED` (a client's shorter `grpc-timeout` still applies).
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// HTTP: how long an idle keep-alive connection stays open.
    #[serde(with = "humantime_serde")]
    pub keep_alive: Duration,
    /// HTTP: how long the server waits for a client to take the end of a connection before
    /// dropping it.
    #[serde(with = "humantime_serde")]
    pub disconnect_timeout: Duration,
    /// The `Retry-After` sent with a 503 when a cap is reached (whole seconds).
    #[serde(with = "humantime_serde")]
    pub retry_after: Duration,
    /// Public HTTP listener: most open connections. Connections beyond it are answered
    /// 503 and closed; a hard ceiling a quarter above it stops accepting altogether.
    pub max_connections: usize,
    /// Public HTTP and gRPC listeners: most open connections from one client address (an
    /// IPv6 client by its /64). Behind a reverse proxy every connection comes from the
    /// proxy: raise it to `max_connections` there.
    pub max_connections_per_peer: usize,
    /// Admin listener (`/metrics`, `/healthz`, `/readyz`): most open connections. It has
    /// its own worker and count, so it answers while the public listener is saturated.
    pub admin_max_connections: usize,
    /// gRPC listener: most open connections; more are closed on accept.
    pub grpc_max_connections: usize,
    /// gRPC listener: most calls in flight at once over all connections; more are
    /// answered `UNAVAILABLE` at once.
    pub grpc_max_concurrent_requests: usize,
    /// gRPC listener: most concurrent streams (calls) per connection, announced to the
    /// client as `SETTINGS_MAX_CONCURRENT_STREAMS` (RFC 9113 §6.5.2).
    pub grpc_max_streams_per_connection: u32,
    /// gRPC listener: the server sends an HTTP/2 PING (RFC 9113 §6.7) after this long
    /// without hearing from the client.
    #[serde(with = "humantime_serde")]
    pub grpc_keepalive_interval: Duration,
    /// gRPC listener: a connection whose client answers no PING and sends nothing within
    /// this long after `grpc_keepalive_interval` is closed (stalled or vanished client,
    /// half-sent handshake or frame).
    #[serde(with = "humantime_serde")]
    pub grpc_keepalive_timeout: Duration,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(15),
            keep_alive: Duration::from_secs(30),
            disconnect_timeout: Duration::from_secs(2),
            retry_after: Duration::from_secs(1),
            max_connections: 10_000,
            max_connections_per_peer: 256,
            admin_max_connections: 64,
            grpc_max_connections: 1_000,
            grpc_max_concurrent_requests: 1_000,
            grpc_max_streams_per_connection: 100,
            grpc_keepalive_interval: Duration::from_secs(20),
            grpc_keepalive_timeout: Duration::from_secs(10),
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

fn count(key: &str, value: usize, max: usize) -> Result<(), ConfigError> {
    if value == 0 || value > max {
        return Err(ConfigError::new(
            key,
            format!("must be between 1 and {max}"),
        ));
    }
    Ok(())
}

impl Validate for LimitsConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let ms = Duration::from_millis;
        let s = Duration::from_secs;
        within("header_timeout", self.header_timeout, ms(100), s(300))?;
        within("request_timeout", self.request_timeout, ms(100), s(600))?;
        within("keep_alive", self.keep_alive, ms(100), s(3600))?;
        within(
            "disconnect_timeout",
            self.disconnect_timeout,
            ms(100),
            s(60),
        )?;
        within("retry_after", self.retry_after, s(1), s(3600))?;
        count("max_connections", self.max_connections, 1_000_000)?;
        count(
            "max_connections_per_peer",
            self.max_connections_per_peer,
            self.max_connections.max(self.grpc_max_connections),
        )
        .map_err(|_| {
            ConfigError::new(
                "max_connections_per_peer",
                "must be between 1 and the larger of max_connections and grpc_max_connections",
            )
        })?;
        count("admin_max_connections", self.admin_max_connections, 10_000)?;
        count("grpc_max_connections", self.grpc_max_connections, 1_000_000)?;
        count(
            "grpc_max_concurrent_requests",
            self.grpc_max_concurrent_requests,
            1_000_000,
        )?;
        count(
            "grpc_max_streams_per_connection",
            self.grpc_max_streams_per_connection as usize,
            10_000,
        )?;
        within(
            "grpc_keepalive_interval",
            self.grpc_keepalive_interval,
            ms(100),
            s(3600),
        )?;
        within(
            "grpc_keepalive_timeout",
            self.grpc_keepalive_timeout,
            ms(100),
            s(600),
        )?;
        Ok(())
    }
}

impl LimitsConfig {
    /// The `Retry-After` value in whole seconds (at least 1).
    pub(crate) fn retry_after_secs(&self) -> u64 {
        self.retry_after.as_secs().max(1)
    }

    /// The hard ceiling of public HTTP connections (a quarter above `max_connections`, so
    /// connections beyond the soft cap can still be answered 503).
    pub(crate) fn http_hard_ceiling(&self) -> usize {
        self.max_connections
            .saturating_add(self.max_connections / 4)
    }

    /// How long a gRPC connection may stay silent before it is closed: a healthy client
    /// answers the PING sent after `grpc_keepalive_interval` well within the timeout.
    pub(crate) fn grpc_idle_deadline(&self) -> Duration {
        self.grpc_keepalive_interval + self.grpc_keepalive_timeout
    }

    /// File descriptors the listeners may hold at most, plus a margin for the database
    /// pool, log files and outgoing connections.
    pub(crate) fn descriptors_needed(&self, grpc: bool) -> u64 {
        let grpc = if grpc { self.grpc_max_connections } else { 0 };
        (self.http_hard_ceiling() + self.admin_max_connections + grpc) as u64 + 256
    }
}

/// Raises the soft `RLIMIT_NOFILE` of the process to its hard limit and checks that the
/// connection caps of `limits` fit below it, so a connection flood meets the caps (and is
/// shed) before the process runs out of file descriptors; otherwise the start stops with
/// one line naming `limits.max_connections`.
pub(crate) fn ensure_descriptors(limits: &LimitsConfig, grpc: bool) -> Result<(), String> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let needed = limits.descriptors_needed(grpc);
    let mut nofile = getrlimit(Resource::Nofile);
    // The hard limit, or (when it is unlimited) what the caps need.
    let target = nofile
        .maximum
        .unwrap_or(needed.max(nofile.current.unwrap_or(0)));
    if nofile.current.is_some_and(|current| current < target) {
        nofile.current = Some(target);
        if setrlimit(Resource::Nofile, nofile).is_err() {
            nofile = getrlimit(Resource::Nofile);
        }
    }
    match nofile.current {
        Some(available) if available < needed => Err(format!(
            "limits.max_connections: the connection caps need about {needed} file descriptors \
             but RLIMIT_NOFILE allows {available}; lower limits.max_connections, \
             limits.admin_max_connections or limits.grpc_max_connections, or raise the limit"
        )),
        _ => Ok(()),
    }
}

/// A client address as the per-peer cap counts it: an IPv4 address, or the /64 prefix
/// of an IPv6 address (one subscriber's or host's usual allocation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum PeerKey {
    V4(u32),
    V6Prefix(u64),
    Unknown,
}

impl PeerKey {
    fn of(ip: Option<IpAddr>) -> Self {
        match ip.map(|ip| ip.to_canonical()) {
            Some(IpAddr::V4(v4)) => Self::V4(u32::from(v4)),
            Some(IpAddr::V6(v6)) => Self::V6Prefix((u128::from(v6) >> 64) as u64),
            None => Self::Unknown,
        }
    }
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    peers: HashMap<PeerKey, usize>,
}

/// The open connections of one listener, in total and per client address.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionTable {
    listener: &'static str,
    max: usize,
    per_peer: usize,
    counts: Arc<Mutex<Counts>>,
}

/// One open connection, counted in its [`ConnectionTable`] until dropped.
#[derive(Debug)]
pub(crate) struct ConnectionSlot {
    table: ConnectionTable,
    key: PeerKey,
    /// Whether the connection fit within the caps when it was opened.
    pub(crate) admitted: bool,
}

impl ConnectionTable {
    /// At most `max` connections, `per_peer` of them from one address, on `listener`
    /// (the label of its [`OPEN_METRIC`] gauge).
    pub(crate) fn new(listener: &'static str, max: usize, per_peer: usize) -> Self {
        Self {
            listener,
            max,
            per_peer,
            counts: Arc::new(Mutex::new(Counts::default())),
        }
    }

    /// Counts a new connection from `peer`; the slot says whether it fits the caps.
    /// Refused connections are counted too while they stay open, so a flood of them keeps
    /// the listener saturated rather than letting every other one in.
    pub(crate) fn open(&self, peer: Option<IpAddr>) -> ConnectionSlot {
        let key = PeerKey::of(peer);
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts.total += 1;
        let total = counts.total;
        let from_peer = counts.peers.entry(key).or_insert(0);
        *from_peer += 1;
        let admitted =
            total <= self.max && (key == PeerKey::Unknown || *from_peer <= self.per_peer);
        metrics::gauge!(OPEN_METRIC, "listener" => self.listener).set(total as f64);
        ConnectionSlot {
            table: self.clone(),
            key,
            admitted,
        }
    }

    /// Open connections in total.
    #[cfg(test)]
    pub(crate) fn total(&self) -> usize {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .total
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut counts = self
            .table
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        counts.total = counts.total.saturating_sub(1);
        metrics::gauge!(OPEN_METRIC, "listener" => self.table.listener).set(counts.total as f64);
        if let Some(n) = counts.peers.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                counts.peers.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_key(change: impl FnOnce(&mut LimitsConfig)) -> Option<String> {
        let mut limits = LimitsConfig::default();
        change(&mut limits);
        limits.validate().err().map(|e| e.key)
    }

    #[test]
    fn defaults_are_valid_and_fit_a_common_descriptor_limit() {
        assert_eq!(
            LimitsConfig::default().validate().map_err(|e| e.key),
            Ok(())
        );
        assert!(LimitsConfig::default().descriptors_needed(true) < 16_384);
    }

    #[test]
    fn zero_or_absurd_values_name_their_key() {
        type Change = fn(&mut LimitsConfig);
        let cases: [(&str, Change); 14] = [
            ("header_timeout", |l| l.header_timeout = Duration::ZERO),
            ("request_timeout", |l| l.request_timeout = Duration::ZERO),
            ("request_timeout", |l| {
                l.request_timeout = Duration::from_secs(86_400);
            }),
            ("keep_alive", |l| l.keep_alive = Duration::ZERO),
            ("disconnect_timeout", |l| {
                l.disconnect_timeout = Duration::ZERO;
            }),
            ("retry_after", |l| l.retry_after = Duration::from_millis(10)),
            ("max_connections", |l| l.max_connections = 0),
            ("max_connections", |l| l.max_connections = 10_000_000),
            ("max_connections_per_peer", |l| {
                l.max_connections_per_peer = 0;
            }),
            ("max_connections_per_peer", |l| {
                l.max_connections_per_peer = 20_000;
            }),
            ("admin_max_connections", |l| l.admin_max_connections = 0),
            ("grpc_max_concurrent_requests", |l| {
                l.grpc_max_concurrent_requests = 0;
            }),
            ("grpc_max_streams_per_connection", |l| {
                l.grpc_max_streams_per_connection = 0;
            }),
            ("grpc_keepalive_timeout", |l| {
                l.grpc_keepalive_timeout = Duration::ZERO;
            }),
        ];
        for (key, change) in cases {
            assert_eq!(error_key(change).as_deref(), Some(key));
        }
    }

    #[test]
    fn limits_load_from_the_environment_and_bad_ones_stop_with_the_key() {
        #[derive(Debug, Default, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Service {
            limits: LimitsConfig,
        }
        impl Validate for Service {
            fn validate(&self) -> Result<(), ConfigError> {
                config::validate_sections(&[("limits", &self.limits)])
            }
        }
        let load = |key: &str, value: &str| {
            config::load_with_env::<Service, _>(
                "svc",
                &config::ConfigSource::None,
                [(key.to_owned(), value.to_owned())],
            )
        };
        let loaded = load("SVC__LIMITS__REQUEST_TIMEOUT", "2s").unwrap();
        assert_eq!(loaded.limits.request_timeout, Duration::from_secs(2));
        let err = load("SVC__LIMITS__MAX_CONNECTIONS_PER_PEER", "0").unwrap_err();
        assert_eq!(err.key, "limits.max_connections_per_peer");
        let err = load("SVC__LIMITS__KEEP_ALIVE", "0s").unwrap_err();
        assert_eq!(err.key, "limits.keep_alive");
    }

    #[test]
    fn caps_beyond_the_descriptor_limit_stop_the_start_naming_the_key() {
        let limits = LimitsConfig {
            max_connections: 1_000_000,
            ..LimitsConfig::default()
        };
        let err = ensure_descriptors(&limits, true).unwrap_err();
        assert!(err.starts_with("limits.max_connections: "), "{err}");
        assert!(!err.contains('\n'), "one line: {err}");
    }

    #[test]
    fn peers_are_counted_by_address_and_ipv6_by_its_64() {
        let table = ConnectionTable::new("http", 5, 2);
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let a_neighbour: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let b: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        let first = table.open(Some(a));
        let second = table.open(Some(a_neighbour));
        let third = table.open(Some(a));
        assert!(first.admitted && second.admitted);
        assert!(!third.admitted, "a third connection from the same /64");
        assert!(table.open(Some(b)).admitted, "another /64 is another peer");
        drop(third);
        drop(first);
        assert!(
            table.open(Some(a)).admitted,
            "a closed connection frees its place"
        );
        assert_eq!(table.total(), 1, "dropped slots are uncounted");
    }

    #[test]
    fn the_total_cap_holds_across_peers_and_ipv4_mapped_is_ipv4() {
        let table = ConnectionTable::new("http", 2, 2);
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        let _one = table.open(Some(v4));
        let _two = table.open(Some("192.0.2.2".parse().unwrap()));
        assert!(!table.open(Some("192.0.2.3".parse().unwrap())).admitted);
        let table = ConnectionTable::new("http", 10, 1);
        let _v4 = table.open(Some(v4));
        assert!(!table.open(Some(mapped)).admitted);
    }
}
