//! TLS on every listener and mutual TLS on the gRPC links (issue 16), with rustls and its
//! ring provider only.
//!
//! - [`TlsConfig`]: the `tls` section of a listener (`http`, `admin`, `grpc`). TLS is on when
//!   `cert_file` or `pkcs12_file` is set. Validation loads the files, so a missing,
//!   unreadable, mismatched, expired or not-yet-valid certificate stops the start with one
//!   line naming the key (exit code 2).
//! - The certificate and key are reloaded when the files change: checked every
//!   `reload_interval`, a changed pair serves the next handshakes (open connections keep
//!   theirs), with one log line and `tls_certificate_reloads_total{listener,outcome}`; a bad
//!   new pair keeps the old one and says why.
//! - [`TlsClientConfig`]: the client side of a gRPC link (`ca_file`, `cert_file`,
//!   `key_file`, `server_name`); there is no switch that skips verifying the server.
//! - [`peer_identities`]: the SAN DNS names and URIs of a client certificate, which the gRPC
//!   servers map to client ids ([`GrpcListenConfig::identities`]).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use config::{ConfigError, Validate};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use serde::{Deserialize, Serialize};

use crate::{ListenConfig, RuntimeError};

/// The counter of certificate reloads, labelled `listener` and `outcome` (`reloaded`,
/// `failed`).
pub const RELOAD_METRIC: &str = "tls_certificate_reloads_total";

/// The lowest TLS version a listener accepts: `"1.2"` or `"1.3"` (an unquoted `1.2`, as
/// an environment variable gives it, reads the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum TlsVersion {
    /// TLS 1.2 (RFC 5246) and TLS 1.3.
    #[serde(rename = "1.2")]
    Tls12,
    /// TLS 1.3 only (RFC 8446): the default.
    #[default]
    #[serde(rename = "1.3")]
    Tls13,
}

impl<'de> Deserialize<'de> for TlsVersion {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Number(f64),
        }
        let text = match Raw::deserialize(deserializer)? {
            Raw::Text(text) => text,
            Raw::Number(number) => number.to_string(),
        };
        match text.as_str() {
            "1.2" => Ok(Self::Tls12),
            "1.3" => Ok(Self::Tls13),
            other => Err(serde::de::Error::custom(format!(
                "unsupported TLS version {other}: expected \"1.2\" or \"1.3\""
            ))),
        }
    }
}

/// The `tls` section of a listener. TLS is on when `cert_file` or `pkcs12_file` is set;
/// otherwise the listener is plaintext (the development default).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert_file: Option<PathBuf>,
    /// PEM private key of the leaf (PKCS#8, SEC1 or PKCS#1).
    pub key_file: Option<PathBuf>,
    /// A PKCS#12 file with the key and its chain, instead of `cert_file` + `key_file`.
    pub pkcs12_file: Option<PathBuf>,
    /// File holding the PKCS#12 password (a trailing newline is ignored); none: empty
    /// password.
    pub pkcs12_password_file: Option<PathBuf>,
    /// Lowest accepted version: `"1.3"` (default) or `"1.2"`.
    pub min_version: TlsVersion,
    /// How often the files are checked for a new certificate/key pair.
    #[serde(with = "humantime_serde")]
    pub reload_interval: Duration,
    /// PEM bundle of the CAs whose client certificates are accepted (mutual TLS). On an HTTP
    /// listener a client certificate is then required; on a gRPC listener a caller without
    /// one reaches the authentication layer, which answers `UNAUTHENTICATED`.
    pub client_ca_file: Option<PathBuf>,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            cert_file: None,
            key_file: None,
            pkcs12_file: None,
            pkcs12_password_file: None,
            min_version: TlsVersion::Tls13,
            reload_interval: Duration::from_secs(30),
            client_ca_file: None,
        }
    }
}

impl TlsConfig {
    /// Whether the listener serves TLS.
    pub fn enabled(&self) -> bool {
        self.cert_file.is_some() || self.pkcs12_file.is_some()
    }
}

impl Validate for TlsConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        match (&self.cert_file, &self.key_file, &self.pkcs12_file) {
            (Some(_), _, Some(_)) => {
                return Err(ConfigError::new(
                    "pkcs12_file",
                    "set either cert_file + key_file or pkcs12_file, not both",
                ));
            }
            (Some(_), None, None) => {
                return Err(ConfigError::new("key_file", "required with cert_file"));
            }
            (None, Some(_), None) => {
                return Err(ConfigError::new("cert_file", "required with key_file"));
            }
            (None, Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    "key_file",
                    "not used with pkcs12_file (the key is inside it)",
                ));
            }
            _ => {}
        }
        if self.pkcs12_password_file.is_some() && self.pkcs12_file.is_none() {
            return Err(ConfigError::new(
                "pkcs12_password_file",
                "needs pkcs12_file",
            ));
        }
        if !self.enabled() {
            if self.client_ca_file.is_some() {
                return Err(ConfigError::new(
                    "client_ca_file",
                    "needs TLS on the listener (cert_file or pkcs12_file)",
                ));
            }
            return Ok(());
        }
        if self.reload_interval < Duration::from_secs(1) {
            return Err(ConfigError::new("reload_interval", "must be at least 1s"));
        }
        load_identity(self)?;
        if let Some(ca) = &self.client_ca_file {
            load_roots("client_ca_file", ca)?;
        }
        Ok(())
    }
}

/// The gRPC listener of a service that authenticates its callers (authz, idp): the
/// address, its TLS, how a client certificate maps to a client id, and whether
/// `authorization: Basic` credentials in the metadata are still accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrpcListenConfig {
    /// IP address to bind.
    pub host: IpAddr,
    /// TCP port, 0 for any free port.
    pub port: u16,
    /// TLS of the listener; with `client_ca_file` callers can authenticate by certificate.
    #[serde(default)]
    pub tls: TlsConfig,
    /// Client certificate identity (a SAN DNS name or URI) → client id, e.g.
    /// `{idp.internal: idp}`: a caller presenting a certificate from `tls.client_ca_file`
    /// with that identity is that client, without a secret.
    #[serde(default)]
    pub identities: BTreeMap<String, String>,
    /// Accept client id and secret in `authorization: Basic` metadata (development);
    /// `false`: mutual TLS only.
    #[serde(default = "yes")]
    pub basic_auth: bool,
}

fn yes() -> bool {
    true
}

impl GrpcListenConfig {
    /// Loopback on `port`, plaintext, Basic credentials accepted: the development default.
    pub fn loopback(port: u16) -> Self {
        let listen = ListenConfig::loopback(port);
        Self {
            host: listen.host,
            port: listen.port,
            tls: TlsConfig::default(),
            identities: BTreeMap::new(),
            basic_auth: true,
        }
    }

    /// The listener part (address and TLS) for [`crate::Launch`].
    pub fn listen(&self) -> ListenConfig {
        ListenConfig {
            host: self.host,
            port: self.port,
            tls: self.tls.clone(),
        }
    }
}

impl Validate for GrpcListenConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        self.listen().validate()?;
        if !self.identities.is_empty() && self.tls.client_ca_file.is_none() {
            return Err(ConfigError::new(
                "identities",
                "need tls.client_ca_file (client certificates are verified against it)",
            ));
        }
        for (identity, client) in &self.identities {
            if identity.is_empty() || client.is_empty() {
                return Err(ConfigError::new(
                    "identities",
                    "identities and client ids must not be empty",
                ));
            }
        }
        if !self.basic_auth && self.tls.client_ca_file.is_none() {
            return Err(ConfigError::new(
                "basic_auth",
                "false needs tls.client_ca_file and identities, or no caller could authenticate",
            ));
        }
        Ok(())
    }
}

/// A PEM certificate chain and its private key, as read from their files.
type PemPair = (Vec<u8>, Vec<u8>);

/// The client side of a gRPC link, used when its URL is `https://`: the CA bundle the
/// server's certificate must chain to (required: there is no switch that skips
/// verification), the name expected in it, and the client certificate for mutual TLS.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsClientConfig {
    /// PEM bundle of the CAs the server's certificate must chain to.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate chain for mutual TLS, leaf first.
    pub cert_file: Option<PathBuf>,
    /// PEM private key of the client certificate.
    pub key_file: Option<PathBuf>,
    /// The name the server's certificate must carry; none: the URL's host.
    pub server_name: Option<String>,
}

impl TlsClientConfig {
    /// Checks the section for a link to `url`: with an `https` URL `ca_file` is required and
    /// every file must load (certificate and key matching, certificate within its validity).
    pub fn validate_for(&self, url: &str) -> Result<(), ConfigError> {
        let https = url.starts_with("https://");
        if !https {
            if self.ca_file.is_some() || self.cert_file.is_some() || self.key_file.is_some() {
                return Err(ConfigError::new(
                    "ca_file",
                    "TLS settings need an https:// URL",
                ));
            }
            return Ok(());
        }
        let Some(ca) = &self.ca_file else {
            return Err(ConfigError::new(
                "ca_file",
                "required for an https:// URL (the server's certificate is always verified)",
            ));
        };
        load_roots("ca_file", ca)?;
        self.client_identity()?;
        if let Some(name) = &self.server_name
            && rustls_pki_types::ServerName::try_from(name.as_str()).is_err()
        {
            return Err(ConfigError::new(
                "server_name",
                "not a DNS name or IP address",
            ));
        }
        Ok(())
    }

    /// The client certificate and key as PEM (both or neither), checked like a server's.
    fn client_identity(&self) -> Result<Option<PemPair>, ConfigError> {
        match (&self.cert_file, &self.key_file) {
            (None, None) => Ok(None),
            (Some(_), None) => Err(ConfigError::new("key_file", "required with cert_file")),
            (None, Some(_)) => Err(ConfigError::new("cert_file", "required with key_file")),
            (Some(cert), Some(key)) => {
                let pem = TlsConfig {
                    cert_file: Some(cert.clone()),
                    key_file: Some(key.clone()),
                    ..TlsConfig::default()
                };
                load_identity(&pem)?;
                let cert = read("cert_file", cert)?;
                let key = read("key_file", key)?;
                Ok(Some((cert, key)))
            }
        }
    }

    /// A tonic endpoint for `url` (named `url_key` in errors), with TLS as this section says
    /// when the URL is `https://`. Errors name the key relative to the enclosing section
    /// (`grpc_url`, `tls.ca_file`).
    pub fn endpoint(
        &self,
        url_key: &str,
        url: &str,
    ) -> Result<tonic::transport::Endpoint, ConfigError> {
        let endpoint = tonic::transport::Endpoint::from_shared(url.to_owned())
            .map_err(|e| ConfigError::new(url_key, e.to_string()))?;
        match self.tonic(url).map_err(|e| e.within("tls"))? {
            Some(tls) => endpoint
                .tls_config(tls)
                .map_err(|e| ConfigError::new("ca_file", e.to_string()).within("tls")),
            None => Ok(endpoint),
        }
    }

    /// Whether calls over `url` present a client certificate (mutual TLS).
    pub fn presents_certificate(&self, url: &str) -> bool {
        url.starts_with("https://") && self.cert_file.is_some()
    }

    /// The tonic client TLS settings for `url`, or `None` for a plaintext `http://` URL.
    pub fn tonic(
        &self,
        url: &str,
    ) -> Result<Option<tonic::transport::ClientTlsConfig>, ConfigError> {
        if !url.starts_with("https://") {
            return Ok(None);
        }
        self.validate_for(url)?;
        let Some(ca) = &self.ca_file else {
            return Err(ConfigError::new("ca_file", "required for an https:// URL"));
        };
        let mut tls = tonic::transport::ClientTlsConfig::new().ca_certificate(
            tonic::transport::Certificate::from_pem(read("ca_file", ca)?),
        );
        if let Some((cert, key)) = self.client_identity()? {
            tls = tls.identity(tonic::transport::Identity::from_pem(cert, key));
        }
        if let Some(name) = &self.server_name {
            tls = tls.domain_name(name.clone());
        }
        Ok(Some(tls))
    }
}

/// The identities a client certificate (DER) claims: its SAN DNS names and URIs, in order.
/// Empty when the certificate does not parse or has no such SAN.
pub fn peer_identities(cert: &[u8]) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let Ok((_, parsed)) = x509_parser::parse_x509_certificate(cert) else {
        return Vec::new();
    };
    let Ok(Some(san)) = parsed.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some((*dns).to_owned()),
            GeneralName::URI(uri) => Some((*uri).to_owned()),
            _ => None,
        })
        .collect()
}

/// The client id a gRPC caller's verified certificate maps to through `identities` (the
/// first SAN DNS name or URI of its leaf that is mapped), or `None` when the call came
/// without a client certificate (plaintext, or TLS without one) or with an unmapped one.
/// The certificate was verified against `tls.client_ca_file` in the handshake.
pub fn mtls_client_id<T>(
    request: &tonic::Request<T>,
    identities: &BTreeMap<String, String>,
) -> Option<String> {
    let certs = request.peer_certs()?;
    let leaf = certs.first()?;
    peer_identities(leaf)
        .into_iter()
        .find_map(|identity| identities.get(&identity).cloned())
}

/// The crypto of every TLS endpoint: rustls's ring provider (ring is the platform's crypto;
/// aws-lc is kept out of the build, and with it the post-quantum key exchange it offers).
#[allow(deprecated)]
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(key: &str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path)
        .map_err(|e| ConfigError::new(key, format!("cannot read {}: {e}", path.display())))
}

/// The raw bytes of the files behind a server identity, to notice a change.
fn identity_files(tls: &TlsConfig) -> Vec<u8> {
    let mut all = Vec::new();
    for path in [
        &tls.cert_file,
        &tls.key_file,
        &tls.pkcs12_file,
        &tls.pkcs12_password_file,
    ]
    .into_iter()
    .flatten()
    {
        let content = std::fs::read(path).unwrap_or_default();
        all.extend_from_slice(&(content.len() as u64).to_le_bytes());
        all.extend_from_slice(&content);
    }
    all
}

/// Loads the certificate chain and key of `tls` (PEM pair or PKCS#12) and checks that the
/// key belongs to the leaf and that the leaf is within its validity period now. Errors name
/// the key of the file at fault.
pub(crate) fn load_identity(tls: &TlsConfig) -> Result<Arc<CertifiedKey>, ConfigError> {
    let (chain, key, cert_key, key_key) = if let Some(p12) = &tls.pkcs12_file {
        let data = read("pkcs12_file", p12)?;
        let password = match &tls.pkcs12_password_file {
            Some(path) => {
                let raw = read("pkcs12_password_file", path)?;
                let text = String::from_utf8(raw).map_err(|_| {
                    ConfigError::new("pkcs12_password_file", "the password is not UTF-8")
                })?;
                text.trim_end_matches(['\n', '\r']).to_owned()
            }
            None => String::new(),
        };
        let store = p12_keystore::KeyStore::from_pkcs12(&data, &password).map_err(|e| {
            ConfigError::new(
                "pkcs12_file",
                format!("cannot open {} (wrong password?): {e}", p12.display()),
            )
        })?;
        let Some((_, entry)) = store.private_key_chain() else {
            return Err(ConfigError::new(
                "pkcs12_file",
                format!(
                    "{} holds no private key with its certificate",
                    p12.display()
                ),
            ));
        };
        let chain: Vec<CertificateDer<'static>> = entry
            .chain()
            .iter()
            .map(|c| CertificateDer::from(c.as_der().to_vec()))
            .collect();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(entry.key().to_vec()));
        (chain, key, "pkcs12_file", "pkcs12_file")
    } else {
        let (Some(cert_path), Some(key_path)) = (&tls.cert_file, &tls.key_file) else {
            return Err(ConfigError::new(
                "cert_file",
                "cert_file and key_file (or pkcs12_file) are required for TLS",
            ));
        };
        let pem = read("cert_file", cert_path)?;
        let chain = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                ConfigError::new(
                    "cert_file",
                    format!("{}: not a PEM certificate chain: {e}", cert_path.display()),
                )
            })?;
        let key_pem = read("key_file", key_path)?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
            ConfigError::new(
                "key_file",
                format!("{}: no PEM private key: {e}", key_path.display()),
            )
        })?;
        (chain, key, "cert_file", "key_file")
    };
    let Some(leaf) = chain.first() else {
        return Err(ConfigError::new(cert_key, "no certificate found"));
    };
    check_validity(cert_key, leaf)?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| ConfigError::new(key_key, format!("unusable private key: {e}")))?;
    let certified = CertifiedKey::new(chain, signer);
    certified.keys_match().map_err(|_| {
        ConfigError::new(
            key_key,
            "the private key does not belong to the certificate",
        )
    })?;
    Ok(Arc::new(certified))
}

/// Refuses a certificate that is expired or not yet valid (RFC 5280 §4.1.2.5).
fn check_validity(key: &str, cert: &CertificateDer<'_>) -> Result<(), ConfigError> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert)
        .map_err(|e| ConfigError::new(key, format!("the certificate does not parse: {e}")))?;
    let validity = parsed.validity();
    let now = x509_parser::time::ASN1Time::now();
    if now < validity.not_before {
        return Err(ConfigError::new(
            key,
            format!(
                "the certificate is not valid before {}",
                validity.not_before
            ),
        ));
    }
    if now > validity.not_after {
        return Err(ConfigError::new(
            key,
            format!("the certificate expired on {}", validity.not_after),
        ));
    }
    Ok(())
}

/// A PEM CA bundle as trust anchors; errors name `key`.
pub(crate) fn load_roots(key: &str, path: &Path) -> Result<RootCertStore, ConfigError> {
    let pem = read(key, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ConfigError::new(key, format!("{}: not a PEM bundle: {e}", path.display())))?;
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| ConfigError::new(key, format!("{}: unusable CA: {e}", path.display())))?;
    }
    if roots.is_empty() {
        return Err(ConfigError::new(
            key,
            format!("{}: no CA certificate", path.display()),
        ));
    }
    Ok(roots)
}

/// The server certificate of one listener, swapped when its files change.
#[derive(Debug)]
pub(crate) struct ReloadingCert {
    listener: &'static str,
    config: TlsConfig,
    current: ArcSwap<CertifiedKey>,
    /// The file contents last looked at (loaded or refused), so a change is acted on once.
    seen: Mutex<Vec<u8>>,
}

impl ReloadingCert {
    fn new(listener: &'static str, config: &TlsConfig) -> Result<Self, ConfigError> {
        let seen = identity_files(config);
        let current = load_identity(config)?;
        Ok(Self {
            listener,
            config: config.clone(),
            current: ArcSwap::new(current),
            seen: Mutex::new(seen),
        })
    }

    /// Re-reads the files; when they changed, loads the new pair and serves it from the next
    /// handshake on, or keeps the old one when the new pair is unusable. One log line and
    /// one count of `tls_certificate_reloads_total` per change.
    pub(crate) fn check(&self) {
        let now = identity_files(&self.config);
        {
            let Ok(mut seen) = self.seen.lock() else {
                return;
            };
            if *seen == now {
                return;
            }
            *seen = now;
        }
        match load_identity(&self.config) {
            Ok(key) => {
                self.current.store(key);
                metrics::counter!(RELOAD_METRIC, "listener" => self.listener, "outcome" => "reloaded")
                    .increment(1);
                tracing::info!(listener = self.listener, "TLS certificate reloaded");
            }
            Err(e) => {
                metrics::counter!(RELOAD_METRIC, "listener" => self.listener, "outcome" => "failed")
                    .increment(1);
                tracing::warn!(
                    listener = self.listener,
                    error = %e.within("tls").within(self.listener),
                    "new TLS certificate refused; the previous one stays in use"
                );
            }
        }
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// How a listener treats clients without a certificate when `client_ca_file` is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientAuth {
    /// A certificate from the CA is required in the handshake (HTTP listeners).
    Required,
    /// A certificate, when presented, must chain to the CA; without one the call reaches
    /// the authentication layer, which refuses it with `UNAUTHENTICATED` (gRPC).
    Optional,
    /// Every handshake asks for a certificate and none is required (a browser is never made
    /// to present one). Any certificate whose private key the client proves it holds (the
    /// handshake's `CertificateVerify`) is accepted, self-signed ones included (RFC 8705 §2.2
    /// needs them); whether it chains to `client_ca_file` (when set) is checked after the
    /// handshake and handed to the application with it ([`PeerCertificate`]). The handshake
    /// alone authenticates nobody: the application matches the certificate to a client.
    Request,
}

/// The client certificate of a connection on a listener that requests them
/// ([`crate::Launch::request_client_certificates`]), in the connection's data
/// (`HttpRequest::conn_data::<PeerCertificate>()`); absent when the client sent none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCertificate {
    /// The leaf certificate (DER). Its key is the one the client proved it holds.
    pub der: Arc<[u8]>,
    /// Whether the chain the client sent verifies against the listener's `client_ca_file`
    /// (RFC 5280 path validation, client-auth usage, at connection time); always `false`
    /// without a `client_ca_file`.
    pub chain_verified: bool,
}

/// What the HTTP server records about client certificates after the handshake, in
/// [`ClientAuth::Request`] mode: the verifier of `client_ca_file`, if any.
#[derive(Clone)]
pub(crate) struct CertificateReport {
    ca: Option<Arc<dyn ClientCertVerifier>>,
}

impl CertificateReport {
    /// The certificate of a connection whose peer sent `chain` (leaf first).
    pub(crate) fn peer_certificate(
        &self,
        chain: &[CertificateDer<'static>],
    ) -> Option<PeerCertificate> {
        let (leaf, intermediates) = chain.split_first()?;
        let chain_verified = self.ca.as_ref().is_some_and(|ca| {
            ca.verify_client_cert(leaf, intermediates, UnixTime::now())
                .is_ok()
        });
        Some(PeerCertificate {
            der: Arc::from(leaf.as_ref()),
            chain_verified,
        })
    }
}

/// The handshake verifier of [`ClientAuth::Request`]: asks for a certificate, requires
/// none, accepts any well-formed one and checks only the client's proof of possession of
/// its key (the TLS 1.2/1.3 `CertificateVerify` signature).
#[derive(Debug)]
struct AnyClientCertificate {
    provider: Arc<CryptoProvider>,
}

impl ClientCertVerifier for AnyClientCertificate {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // No CA names: a self-signed certificate is as welcome as a CA-issued one.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        x509_parser::parse_x509_certificate(end_entity).map_err(|_| {
            rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding)
        })?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The TLS side of one listener: its rustls configuration and the reloading certificate.
pub(crate) struct ServerTls {
    pub(crate) config: Arc<ServerConfig>,
    /// Set in [`ClientAuth::Request`] mode: how connections' certificates are reported.
    pub(crate) report: Option<CertificateReport>,
    cert: Arc<ReloadingCert>,
    interval: Duration,
}

impl ServerTls {
    /// Builds the TLS configuration of `listener` from its section, or `None` when the
    /// listener is plaintext. Errors name the key (`grpc.tls.cert_file: …`).
    pub(crate) fn new(
        listener: &'static str,
        tls: &TlsConfig,
        alpn: &[&[u8]],
        client_auth: ClientAuth,
    ) -> Result<Option<Self>, RuntimeError> {
        if !tls.enabled() {
            return Ok(None);
        }
        let named =
            |e: ConfigError| RuntimeError::Tls(e.within("tls").within(listener).to_string());
        let cert = Arc::new(ReloadingCert::new(listener, tls).map_err(named)?);
        let provider = provider();
        let versions: &[&'static rustls::SupportedProtocolVersion] = match tls.min_version {
            TlsVersion::Tls13 => &[&rustls::version::TLS13],
            TlsVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        };
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(versions)
            .map_err(|e| RuntimeError::Tls(format!("{listener}.tls: {e}")))?;
        let roots = match &tls.client_ca_file {
            None => None,
            Some(ca) => Some(Arc::new(load_roots("client_ca_file", ca).map_err(named)?)),
        };
        let ca_verifier = |roots: Arc<RootCertStore>, optional: bool| {
            let verifier =
                WebPkiClientVerifier::builder_with_provider(roots, Arc::clone(&provider));
            let verifier = if optional {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            verifier
                .build()
                .map_err(|e| RuntimeError::Tls(format!("{listener}.tls.client_ca_file: {e}")))
        };
        let mut report = None;
        let builder = match (client_auth, roots) {
            (ClientAuth::Request, roots) => {
                report = Some(CertificateReport {
                    ca: match roots {
                        Some(roots) => {
                            Some(ca_verifier(roots, true)? as Arc<dyn ClientCertVerifier>)
                        }
                        None => None,
                    },
                });
                builder.with_client_cert_verifier(Arc::new(AnyClientCertificate {
                    provider: Arc::clone(&provider),
                }))
            }
            (_, None) => builder.with_no_client_auth(),
            (ClientAuth::Required, Some(roots)) => {
                builder.with_client_cert_verifier(ca_verifier(roots, false)?)
            }
            (ClientAuth::Optional, Some(roots)) => {
                builder.with_client_cert_verifier(ca_verifier(roots, true)?)
            }
        };
        let mut config =
            builder.with_cert_resolver(Arc::clone(&cert) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Some(Self {
            config: Arc::new(config),
            report,
            cert,
            interval: tls.reload_interval,
        }))
    }

    /// Checks the files every `reload_interval` until `stop` (see [`ReloadingCert::check`]).
    pub(crate) fn spawn_reload(&self, stop: impl Future<Output = ()> + Send + 'static) {
        let cert = Arc::clone(&self.cert);
        crate::spawn_periodic(
            "tls certificate reload",
            self.interval,
            crate::FirstRun::AfterInterval,
            stop,
            move || {
                cert.check();
                std::future::ready(())
            },
        );
    }
}
