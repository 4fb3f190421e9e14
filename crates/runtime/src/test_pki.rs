//! Certificates for tests (feature `test-pki`): a throw-away CA in a temporary directory
//! that issues server and client certificates, current, expired or not yet valid, as PEM
//! files the `tls` sections point at. Never used by a service at run time.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};

use crate::{TlsClientConfig, TlsConfig};

/// When an issued certificate is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// From 2020 to 2090.
    Current,
    /// Expired in 2021.
    Expired,
    /// Valid from 2099 on.
    NotYetValid,
}

/// A test CA with its files in a temporary directory (removed on drop).
pub struct TestPki {
    dir: tempfile::TempDir,
    ca: CertifiedIssuer<'static, KeyPair>,
    ca_file: PathBuf,
}

/// A certificate and key written by [`TestPki`].
#[derive(Debug, Clone)]
pub struct Issued {
    /// PEM certificate chain (leaf, then the CA).
    pub cert_file: PathBuf,
    /// PEM PKCS#8 private key.
    pub key_file: PathBuf,
    /// The leaf in DER.
    pub der: Vec<u8>,
}

fn fail(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl TestPki {
    /// A new CA named `name`, its certificate written to `ca.pem`.
    pub fn new(name: &str) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(fail)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().map_err(fail)?;
        let ca = CertifiedIssuer::self_signed(params, key).map_err(fail)?;
        let ca_file = dir.path().join(format!("{name}-ca.pem"));
        std::fs::write(&ca_file, ca.pem()).map_err(fail)?;
        Ok(Self { dir, ca, ca_file })
    }

    /// The CA certificate (PEM) to trust.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// The temporary directory holding every file.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Issues a certificate for `names` (DNS names or IP addresses; `scheme://…` names
    /// become URI SANs) usable for servers and clients, written as `<file>.pem` and
    /// `<file>.key`.
    pub fn issue(&self, file: &str, names: &[&str], validity: Validity) -> Result<Issued, String> {
        let (uris, others): (Vec<&str>, Vec<&str>) = names.iter().partition(|n| n.contains("://"));
        let mut params =
            CertificateParams::new(others.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .map_err(fail)?;
        for uri in uris {
            params
                .subject_alt_names
                .push(SanType::URI(uri.try_into().map_err(fail)?));
        }
        params
            .distinguished_name
            .push(DnType::CommonName, names.first().copied().unwrap_or(file));
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        match validity {
            Validity::Current => {
                params.not_before = rcgen::date_time_ymd(2020, 1, 1);
                params.not_after = rcgen::date_time_ymd(2090, 1, 1);
            }
            Validity::Expired => {
                params.not_before = rcgen::date_time_ymd(2020, 1, 1);
                params.not_after = rcgen::date_time_ymd(2021, 1, 1);
            }
            Validity::NotYetValid => {
                params.not_before = rcgen::date_time_ymd(2099, 1, 1);
                params.not_after = rcgen::date_time_ymd(2100, 1, 1);
            }
        }
        let key = KeyPair::generate().map_err(fail)?;
        let cert = params.signed_by(&key, &self.ca).map_err(fail)?;
        let cert_file = self.dir.path().join(format!("{file}.pem"));
        let key_file = self.dir.path().join(format!("{file}.key"));
        std::fs::write(&cert_file, format!("{}{}", cert.pem(), self.ca.pem())).map_err(fail)?;
        std::fs::write(&key_file, key.serialize_pem()).map_err(fail)?;
        Ok(Issued {
            cert_file,
            key_file,
            der: cert.der().to_vec(),
        })
    }

    /// A current server certificate for `localhost` and `127.0.0.1` as a listener's `tls`
    /// section (TLS 1.3 only, no client certificates).
    pub fn server_tls(&self, file: &str) -> Result<TlsConfig, String> {
        let issued = self.issue(file, &["localhost", "127.0.0.1"], Validity::Current)?;
        Ok(TlsConfig {
            cert_file: Some(issued.cert_file),
            key_file: Some(issued.key_file),
            ..TlsConfig::default()
        })
    }

    /// The client side of a link to a server of this CA, presenting `client` when given.
    pub fn client_tls(&self, client: Option<&Issued>) -> TlsClientConfig {
        TlsClientConfig {
            ca_file: Some(self.ca_file.clone()),
            cert_file: client.map(|c| c.cert_file.clone()),
            key_file: client.map(|c| c.key_file.clone()),
            server_name: Some("localhost".to_owned()),
        }
    }

    /// A rustls server configuration (TLS 1.3, ring) presenting a current certificate for
    /// `localhost` and `127.0.0.1`, for test servers built outside the runtime's listeners
    /// (an actix `listen_rustls_0_23`, a fake issuer).
    pub fn rustls_server_config(&self, file: &str) -> Result<rustls::ServerConfig, String> {
        let tls = self.server_tls(file)?;
        let key = crate::tls::load_identity(&tls).map_err(fail)?;
        let mut config = rustls::ServerConfig::builder_with_provider(crate::tls::provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(fail)?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(key)));
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}

/// A call whose TLS handshake the other side refused: the channel reports it as
/// `UNAVAILABLE` (refused before the client finished), or, under TLS 1.3 where the client
/// learns of the refusal of its certificate only after sending its request, as `CANCELLED`
/// (connection closed) or `UNKNOWN` carrying the server's fatal alert, or the broken pipe
/// of writing the request to a connection the server already closed after that alert.
///
/// Panics (it is a test assertion) when the status is anything else.
pub fn assert_handshake_refused(status: &tonic::Status) {
    let alert = format!("{status:?}");
    let refused = match status.code() {
        tonic::Code::Unavailable | tonic::Code::Cancelled => true,
        tonic::Code::Unknown => {
            alert.contains("received fatal alert") || alert.contains("broken pipe")
        }
        _ => false,
    };
    assert!(refused, "{alert}");
}
