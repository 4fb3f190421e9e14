use std::net::{IpAddr, SocketAddr, TcpListener};

use config::{ConfigError, Validate};
use serde::{Deserialize, Serialize};

use crate::{RuntimeError, TlsConfig};

/// A listener section (`http`, `grpc`, `admin`): the address and port to bind, and its TLS.
///
/// Port 0 asks the OS for a free port; the bound address is announced on stdout at start
/// (see [`crate::announce`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenConfig {
    /// IP address to bind (`127.0.0.1`, `0.0.0.0`, `::`).
    pub host: IpAddr,
    /// TCP port, 0 for any free port.
    pub port: u16,
    /// TLS of the listener (plaintext unless `cert_file` or `pkcs12_file` is set).
    #[serde(default)]
    pub tls: TlsConfig,
}

impl ListenConfig {
    /// Loopback on `port`: the safe default for every listener.
    pub fn loopback(port: u16) -> Self {
        Self {
            host: IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            port,
            tls: TlsConfig::default(),
        }
    }

    /// The same listener serving TLS as `tls` says.
    #[must_use]
    pub fn with_tls(mut self, tls: TlsConfig) -> Self {
        self.tls = tls;
        self
    }

    /// The socket address to bind.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }
}

impl Validate for ListenConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.host.is_multicast() {
            return Err(ConfigError::new(
                "host",
                "a multicast address cannot be bound",
            ));
        }
        self.tls.validate().map_err(|e| e.within("tls"))
    }
}

/// Binds a non-blocking listener for `section` and returns it with the address actually
/// bound (the real port when the configuration asked for port 0).
pub fn bind(
    section: &'static str,
    config: &ListenConfig,
) -> Result<(TcpListener, SocketAddr), RuntimeError> {
    let addr = config.addr();
    let listener = TcpListener::bind(addr).map_err(|source| RuntimeError::Bind {
        section,
        addr,
        source,
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|source| RuntimeError::Bind {
            section,
            addr,
            source,
        })?;
    let bound = listener.local_addr().map_err(|source| RuntimeError::Bind {
        section,
        addr,
        source,
    })?;
    Ok((listener, bound))
}
