//! What the counters are keyed on, and the network a device cookie is bound to.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Login names longer than this share a key with their prefix (bounds the key's size).
const MAX_NAME: usize = 256;

/// Which limit a key belongs to: the metric label `scope`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// One account (or one unknown login name): the soft limit.
    Account,
    /// One client address: the hard limit.
    Address,
}

impl Scope {
    /// The `scope` label value.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Account => "account",
            Self::Address => "address",
        }
    }
}

/// The account a login attempt is for: resolved to the user's id when the typed name or
/// email belongs to a user (so every spelling shares one counter), else the normalised
/// typed name (so unknown names are throttled exactly like known ones).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Account {
    /// An existing user, by id (the OIDC `sub`).
    User(String),
    /// A name that resolves to no user, trimmed and lower-cased as look-ups do.
    Unknown(String),
    // device grant (RFC 8628 §5.1)
    /// User codes typed at the device verification page by one browser: the digest of its
    /// device cookie, or without one its address key. Never a user, so a block of it is
    /// never lifted by a device cookie.
    UserCodes(String),
}

impl Account {
    /// The account of an attempt: `user_id` when the login resolved to one, else `typed`.
    pub(crate) fn of(user_id: Option<String>, typed: &str) -> Self {
        match user_id {
            Some(id) => Self::User(id),
            None => Self::Unknown(normalise(typed)),
        }
    }

    /// The counter's key.
    pub(crate) fn key(&self) -> String {
        match self {
            Self::User(id) => format!("user:{id}"),
            Self::Unknown(name) => format!("name:{name}"),
            Self::UserCodes(browser) => format!("usercode:{browser}"),
        }
    }

    /// The user's id, when the name resolved to one.
    pub(crate) fn user_id(&self) -> Option<&str> {
        match self {
            Self::User(id) => Some(id),
            Self::Unknown(_) | Self::UserCodes(_) => None,
        }
    }
}

/// A typed login name as look-ups see it: trimmed, lower-case, at most [`MAX_NAME`] bytes.
fn normalise(typed: &str) -> String {
    let mut name = typed.trim().to_lowercase();
    if name.len() > MAX_NAME {
        let mut end = MAX_NAME;
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        name.truncate(end);
    }
    name
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// The first 64 bits of an IPv6 address.
fn slash64(v6: Ipv6Addr) -> Ipv6Addr {
    let s = v6.segments();
    Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0)
}

/// The address counter's key: the IPv4 address, or the IPv6 /64 (one subscriber usually
/// holds a whole /64, so counting single IPv6 addresses would let one client rotate freely).
pub(crate) fn address_key(ip: IpAddr) -> String {
    match canonical(ip) {
        IpAddr::V4(v4) => format!("addr:{v4}"),
        IpAddr::V6(v6) => format!("addr:{}/64", slash64(v6)),
    }
}

/// The network a device cookie is bound to: the IPv4 /24 or the IPv6 /64 of the login.
/// Wider than one address, so a browser whose address changes within its home or office
/// network (DHCP, privacy extensions, carrier NAT pools) keeps its standing; narrow enough
/// that a stolen cookie is of no use from elsewhere.
pub(crate) fn network(ip: IpAddr) -> String {
    match canonical(ip) {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{}/24", Ipv4Addr::new(a, b, c, 0))
        }
        IpAddr::V6(v6) => format!("{}/64", slash64(v6)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn accounts_resolve_and_unknown_names_normalise() {
        assert_eq!(
            Account::of(Some("u1".into()), "Demo@Example.com").key(),
            "user:u1"
        );
        assert_eq!(Account::of(None, "  NoBody ").key(), "name:nobody");
        let long = Account::of(None, &"é".repeat(200)).key();
        assert!(long.len() <= "name:".len() + MAX_NAME, "{}", long.len());
    }

    #[test]
    fn addresses_and_networks() {
        assert_eq!(address_key(ip("127.0.0.1")), "addr:127.0.0.1");
        assert_eq!(address_key(ip("::ffff:10.1.2.3")), "addr:10.1.2.3");
        assert_eq!(
            address_key(ip("2001:db8:1:2:3:4:5:6")),
            address_key(ip("2001:db8:1:2::9"))
        );
        assert_ne!(
            address_key(ip("2001:db8:1:2::1")),
            address_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(network(ip("127.0.0.1")), "127.0.0.0/24");
        assert_eq!(network(ip("127.0.0.2")), network(ip("127.0.0.200")));
        assert_ne!(network(ip("127.0.0.2")), network(ip("127.0.1.2")));
        assert_eq!(network(ip("::ffff:192.0.2.7")), "192.0.2.0/24");
        assert_eq!(network(ip("2001:db8::1")), "2001:db8::/64");
    }
}
