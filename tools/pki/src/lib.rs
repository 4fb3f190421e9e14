//! A small PKI for dev, demo and tests (issue 16): a CA chain of configurable length
//! (root → intermediates → issuing CA) and leaf certificates for the services' TLS
//! listeners and the mutual TLS on their gRPC links, written as PEM and PKCS#12.
//!
//! Only `make demo`, the compose demo profile and the tests use a generated CA;
//! production mounts certificates from its own PKI (see `docs/guides/tls.md`).
//!
//! Layout of a PKI directory `D`:
//!
//! | path | what |
//! |---|---|
//! | `D/ca.pem` | the root certificate: the trust bundle (`client_ca_file`, clients' `ca_file`) |
//! | `D/ca/root.pem`, `D/ca/intermediate-N.pem`, `D/ca/issuing.pem` | each CA's certificate |
//! | `D/ca/*.key` | each CA's PKCS#8 private key (0600; directory 0700) |
//! | `D/ca/chain.pem` | the intermediate CAs, issuing CA first (what a leaf sends after itself) |
//! | `D/<name>/cert.pem` | the leaf certificate alone |
//! | `D/<name>/fullchain.pem` | leaf + intermediate CAs (`tls.cert_file`) |
//! | `D/<name>/key.pem` | the leaf's PKCS#8 private key, 0600 (`tls.key_file`) |
//! | `D/<name>/<name>.p12` | key + leaf + intermediates as PKCS#12 (PBES2 AES-256, HMAC-SHA-256), 0600 (`tls.pkcs12_file`) |
//! | `D/<name>/<name>.p12.password` | its password when generated here, 0600 (`tls.pkcs12_password_file`) |
//!
//! Certificates follow RFC 5280: CA certificates carry `basicConstraints` (critical) with a
//! path length that admits exactly the levels below them (§4.2.1.9), `keyCertSign` and
//! `cRLSign` (§4.2.1.3); leaves carry `CA:FALSE`, `digitalSignature`, the requested
//! `serverAuth`/`clientAuth` extended key usages (§4.2.1.12), the subject alternative names
//! (§4.2.1.6: DNS names, IP addresses, URIs) and a common name equal to the first DNS name.
//! Every certificate has a random 128-bit serial (§4.1.2.2) and subject/authority key
//! identifiers. Keys are ECDSA P-256 (ring).

use std::fmt;
use std::fs;
use std::io::Write as _;
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType, SerialNumber,
    string::Ia5String,
};
use ring::rand::{SecureRandom as _, SystemRandom};
use time::{Duration, OffsetDateTime};

pub mod cli;

/// The default number of CA levels: root → intermediate → issuing.
pub const DEFAULT_CHAIN_LENGTH: u8 = 3;
/// The most CA levels `init` makes.
pub const MAX_CHAIN_LENGTH: u8 = 8;
/// Default validity of the CA certificates, in days.
pub const DEFAULT_CA_DAYS: u32 = 3650;
/// Default validity of a leaf certificate, in days.
pub const DEFAULT_LEAF_DAYS: u32 = 365;
/// The longest validity accepted, in days (about 30 years).
pub const MAX_DAYS: u32 = 11_000;
/// Certificates start this long before "now", for clocks slightly behind.
const BACKDATE: Duration = Duration::minutes(5);

/// Mode of every private key and PKCS#12 file written.
const PRIVATE_MODE: u32 = 0o600;
/// Mode of certificates (public).
const PUBLIC_MODE: u32 = 0o644;

/// Everything that can go wrong; [`PkiError::exit_code`] tells bad input (2) from failures (1).
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// `--chain-length` outside 1..=[`MAX_CHAIN_LENGTH`].
    #[error("--chain-length must be between 1 and {MAX_CHAIN_LENGTH}, got {0}")]
    ChainLength(u8),
    /// `--days` outside 1..=[`MAX_DAYS`], or a validity that ends before it starts.
    #[error("--days must be between 1 and {MAX_DAYS}, got {0}")]
    Days(i64),
    /// The directory holds no CA made by `init`.
    #[error("no CA in {0}: run `pki init --dir {0}` first")]
    NoCa(String),
    /// A file that would be written exists already.
    #[error("{0} exists: pass --force to overwrite it")]
    Exists(String),
    /// A leaf name that is not a plain file name.
    #[error(
        "--name {0:?} is not valid: use 1 to 64 letters, digits, '-', '_' or '.', not starting with '.', and not \"ca\""
    )]
    Name(String),
    /// A DNS name that is not a valid host name (RFC 1123 §2.1, RFC 5280 §4.2.1.6).
    #[error("--dns {0:?} is not a valid DNS name")]
    Dns(String),
    /// A URI that has no scheme or contains spaces or non-ASCII (RFC 3986 §3, RFC 5280 §4.2.1.6).
    #[error("--uri {0:?} is not a valid URI (scheme:rest, ASCII, no spaces)")]
    Uri(String),
    /// A leaf without any subject alternative name.
    #[error(
        "give at least one --dns, --ip or --uri for the certificate's subject alternative names"
    )]
    NoNames,
    /// The PKCS#12 password file is empty.
    #[error("{0} is empty: a PKCS#12 password is required")]
    EmptyPassword(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A CA file in the directory could not be parsed.
    #[error("{path}: {reason}")]
    Corrupt {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Certificate or key generation failed.
    #[error("certificate generation failed: {0}")]
    Certificate(#[from] rcgen::Error),
    /// Writing the PKCS#12 file failed.
    #[error("PKCS#12 encoding failed: {0}")]
    Pkcs12(String),
    /// The system random number generator failed.
    #[error("the system random number generator failed")]
    Random,
}

impl PkiError {
    /// Process exit status for this error: 2 for bad input, 1 for failures.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::ChainLength(_)
            | Self::Days(_)
            | Self::NoCa(_)
            | Self::Exists(_)
            | Self::Name(_)
            | Self::Dns(_)
            | Self::Uri(_)
            | Self::NoNames
            | Self::EmptyPassword(_) => 2,
            Self::Io { .. }
            | Self::Corrupt { .. }
            | Self::Certificate(_)
            | Self::Pkcs12(_)
            | Self::Random => 1,
        }
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> PkiError + '_ {
    move |source| PkiError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The validity period of a certificate (RFC 5280 §4.1.2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// notBefore.
    pub not_before: OffsetDateTime,
    /// notAfter.
    pub not_after: OffsetDateTime,
}

impl Validity {
    /// From a few minutes ago (clock skew) until `days` days from now.
    pub fn days_from_now(days: u32) -> Result<Self, PkiError> {
        if days == 0 || days > MAX_DAYS {
            return Err(PkiError::Days(i64::from(days)));
        }
        let now = OffsetDateTime::now_utc();
        Ok(Self {
            not_before: now - BACKDATE,
            not_after: now + Duration::days(i64::from(days)),
        })
    }
}

/// What `pki init` makes.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// The PKI directory (created when missing).
    pub dir: PathBuf,
    /// Number of CA levels, root included (1 = the root issues leaves itself).
    pub chain_length: u8,
    /// Validity of the CA certificates, in days.
    pub days: u32,
    /// Organization name in the CAs' subjects.
    pub organization: String,
    /// Overwrite an existing CA.
    pub force: bool,
}

impl InitOptions {
    /// The defaults for `dir`: three levels, ten years.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            chain_length: DEFAULT_CHAIN_LENGTH,
            days: DEFAULT_CA_DAYS,
            organization: "Platform dev PKI".to_owned(),
            force: false,
        }
    }
}

/// The files `pki init` wrote.
#[derive(Debug, Clone)]
pub struct CaFiles {
    /// The root certificate: the trust bundle.
    pub ca_pem: PathBuf,
    /// The intermediate CAs, issuing CA first (empty for a chain of length 1).
    pub chain_pem: PathBuf,
    /// Each level's certificate, root first.
    pub certs: Vec<PathBuf>,
    /// Each level's private key, root first.
    pub keys: Vec<PathBuf>,
}

/// What `pki issue` makes.
#[derive(Clone)]
pub struct IssueOptions {
    /// The PKI directory made by `init`.
    pub dir: PathBuf,
    /// The leaf's name: its subdirectory and PKCS#12 file name.
    pub name: String,
    /// DNS subject alternative names; the first is also the common name.
    pub dns: Vec<String>,
    /// IP address subject alternative names.
    pub ips: Vec<IpAddr>,
    /// URI subject alternative names (e.g. SPIFFE IDs for mTLS identities).
    pub uris: Vec<String>,
    /// Add the `serverAuth` extended key usage.
    pub server: bool,
    /// Add the `clientAuth` extended key usage.
    pub client: bool,
    /// The validity period.
    pub validity: Validity,
    /// Read the PKCS#12 password from this file instead of generating one.
    pub p12_password_file: Option<PathBuf>,
    /// Overwrite an existing leaf of that name.
    pub force: bool,
}

impl fmt::Debug for IssueOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssueOptions")
            .field("dir", &self.dir)
            .field("name", &self.name)
            .field("dns", &self.dns)
            .field("ips", &self.ips)
            .field("uris", &self.uris)
            .field("server", &self.server)
            .field("client", &self.client)
            .field("validity", &self.validity)
            .field("force", &self.force)
            .finish_non_exhaustive()
    }
}

impl IssueOptions {
    /// A server-and-client leaf for `name` valid [`DEFAULT_LEAF_DAYS`] days, no SANs yet.
    pub fn new(dir: impl Into<PathBuf>, name: impl Into<String>) -> Result<Self, PkiError> {
        Ok(Self {
            dir: dir.into(),
            name: name.into(),
            dns: Vec::new(),
            ips: Vec::new(),
            uris: Vec::new(),
            server: true,
            client: true,
            validity: Validity::days_from_now(DEFAULT_LEAF_DAYS)?,
            p12_password_file: None,
            force: false,
        })
    }
}

/// The files `pki issue` wrote.
#[derive(Debug, Clone)]
pub struct LeafFiles {
    /// The leaf certificate alone.
    pub cert: PathBuf,
    /// Leaf + intermediate CAs: what a TLS endpoint presents.
    pub fullchain: PathBuf,
    /// The private key (PKCS#8 PEM, 0600).
    pub key: PathBuf,
    /// Key, leaf and intermediates as PKCS#12 (0600).
    pub p12: PathBuf,
    /// The file holding the PKCS#12 password (generated here, or the one given).
    pub p12_password: PathBuf,
}

/// Paths of a PKI directory.
#[derive(Debug, Clone)]
struct Layout {
    dir: PathBuf,
}

impl Layout {
    fn ca_pem(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
    fn ca_dir(&self) -> PathBuf {
        self.dir.join("ca")
    }
    fn chain_pem(&self) -> PathBuf {
        self.ca_dir().join("chain.pem")
    }
    fn level_name(level: usize, length: usize) -> String {
        if level == 0 {
            "root".to_owned()
        } else if level + 1 == length {
            "issuing".to_owned()
        } else {
            format!("intermediate-{level}")
        }
    }
    fn level_cert(&self, name: &str) -> PathBuf {
        self.ca_dir().join(format!("{name}.pem"))
    }
    fn level_key(&self, name: &str) -> PathBuf {
        self.ca_dir().join(format!("{name}.key"))
    }
    /// The CA that signs leaves: `issuing`, or `root` for a chain of length 1.
    fn signer(&self) -> (PathBuf, PathBuf) {
        let issuing = self.level_cert("issuing");
        if issuing.exists() {
            (issuing, self.level_key("issuing"))
        } else {
            (self.level_cert("root"), self.level_key("root"))
        }
    }
    fn leaf_dir(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// Makes the CA chain in `options.dir`: root (self-signed) → intermediates → issuing CA,
/// each signed by the level above. Refuses to replace an existing CA unless `force`.
pub fn init(options: &InitOptions) -> Result<CaFiles, PkiError> {
    if options.chain_length == 0 || options.chain_length > MAX_CHAIN_LENGTH {
        return Err(PkiError::ChainLength(options.chain_length));
    }
    let validity = Validity::days_from_now(options.days)?;
    let layout = Layout {
        dir: options.dir.clone(),
    };
    let length = usize::from(options.chain_length);
    let names: Vec<String> = (0..length)
        .map(|level| Layout::level_name(level, length))
        .collect();

    let mut outputs: Vec<(PathBuf, Vec<u8>, u32)> = Vec::new();
    let mut chain_pems: Vec<String> = Vec::new();
    let mut parent: Option<Issuer<'static, KeyPair>> = None;
    let mut root_pem = String::new();
    for (level, name) in names.iter().enumerate() {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::default();
        params.not_before = validity.not_before;
        params.not_after = validity.not_after;
        params.serial_number = Some(random_serial()?);
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, options.organization.as_str());
        dn.push(
            DnType::CommonName,
            ca_common_name(&options.organization, name),
        );
        params.distinguished_name = dn;
        // RFC 5280 §4.2.1.9: the path length admits exactly the CA levels below this one.
        let below = u8::try_from(length - level - 1).map_err(|_| PkiError::ChainLength(0))?;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(below));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.use_authority_key_identifier_extension = level > 0;
        let cert = match &parent {
            None => params.self_signed(&key)?,
            Some(issuer) => params.signed_by(&key, issuer)?,
        };
        let cert_pem = cert.pem();
        if level == 0 {
            root_pem = cert_pem.clone();
        } else {
            chain_pems.push(cert_pem.clone());
        }
        outputs.push((layout.level_cert(name), cert_pem.into_bytes(), PUBLIC_MODE));
        outputs.push((
            layout.level_key(name),
            key.serialize_pem().into_bytes(),
            PRIVATE_MODE,
        ));
        parent = Some(Issuer::new(params, key));
    }
    // What a leaf sends after itself: the issuing CA first, up to (not including) the root.
    chain_pems.reverse();
    outputs.push((
        layout.chain_pem(),
        chain_pems.concat().into_bytes(),
        PUBLIC_MODE,
    ));
    outputs.push((layout.ca_pem(), root_pem.into_bytes(), PUBLIC_MODE));

    if !options.force {
        // ca.pem first: it is what names an existing CA best.
        let ca_pem = layout.ca_pem();
        refuse_existing(
            std::iter::once(ca_pem.as_path())
                .chain(outputs.iter().map(|(path, _, _)| path.as_path())),
        )?;
    }
    create_dir(&layout.dir, 0o755)?;
    create_dir(&layout.ca_dir(), 0o700)?;
    for (path, bytes, mode) in &outputs {
        write_file(path, bytes, *mode)?;
    }
    Ok(CaFiles {
        ca_pem: layout.ca_pem(),
        chain_pem: layout.chain_pem(),
        certs: names.iter().map(|name| layout.level_cert(name)).collect(),
        keys: names.iter().map(|name| layout.level_key(name)).collect(),
    })
}

fn ca_common_name(organization: &str, level: &str) -> String {
    match level {
        "root" => format!("{organization} Root CA"),
        "issuing" => format!("{organization} Issuing CA"),
        other => {
            let number = other.trim_start_matches("intermediate-");
            format!("{organization} Intermediate CA {number}")
        }
    }
}

/// Issues a leaf certificate signed by the directory's issuing CA, with the requested
/// SANs and extended key usages, and writes it as PEM and PKCS#12. Refuses to replace an
/// existing leaf of the same name unless `force`.
pub fn issue(options: &IssueOptions) -> Result<LeafFiles, PkiError> {
    validate_name(&options.name)?;
    let dns = options
        .dns
        .iter()
        .map(|name| validate_dns(name))
        .collect::<Result<Vec<_>, _>>()?;
    let uris = options
        .uris
        .iter()
        .map(|uri| validate_uri(uri))
        .collect::<Result<Vec<_>, _>>()?;
    if dns.is_empty() && options.ips.is_empty() && uris.is_empty() {
        return Err(PkiError::NoNames);
    }
    if options.validity.not_after <= options.validity.not_before {
        let days = (options.validity.not_after - options.validity.not_before).whole_days();
        return Err(PkiError::Days(days));
    }
    let layout = Layout {
        dir: options.dir.clone(),
    };
    let (signer_cert_path, signer_key_path) = layout.signer();
    if !layout.ca_pem().is_file() || !signer_cert_path.is_file() {
        return Err(PkiError::NoCa(options.dir.display().to_string()));
    }
    let signer_pem = read_string(&signer_cert_path)?;
    let signer_key =
        KeyPair::from_pem(&read_string(&signer_key_path)?).map_err(|error| PkiError::Corrupt {
            path: signer_key_path.display().to_string(),
            reason: error.to_string(),
        })?;
    let issuer =
        Issuer::from_ca_cert_pem(&signer_pem, signer_key).map_err(|error| PkiError::Corrupt {
            path: signer_cert_path.display().to_string(),
            reason: error.to_string(),
        })?;
    let chain = read_string(&layout.chain_pem())?;

    let password = match &options.p12_password_file {
        Some(path) => {
            let text = read_string(path)?;
            let password = text.trim_end_matches(['\n', '\r']).to_owned();
            if password.is_empty() {
                return Err(PkiError::EmptyPassword(path.display().to_string()));
            }
            password
        }
        None => random_password()?,
    };

    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::default();
    params.not_before = options.validity.not_before;
    params.not_after = options.validity.not_after;
    params.serial_number = Some(random_serial()?);
    let mut dn = DistinguishedName::new();
    let common_name = dns.first().map_or(options.name.as_str(), String::as_str);
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    if options.server {
        params
            .extended_key_usages
            .push(ExtendedKeyUsagePurpose::ServerAuth);
    }
    if options.client {
        params
            .extended_key_usages
            .push(ExtendedKeyUsagePurpose::ClientAuth);
    }
    params.use_authority_key_identifier_extension = true;
    for name in &dns {
        params
            .subject_alt_names
            .push(SanType::DnsName(Ia5String::try_from(name.as_str())?));
    }
    for ip in &options.ips {
        params.subject_alt_names.push(SanType::IpAddress(*ip));
    }
    for uri in &uris {
        params
            .subject_alt_names
            .push(SanType::URI(Ia5String::try_from(uri.as_str())?));
    }
    let cert = params.signed_by(&key, &issuer)?;
    let cert_pem = cert.pem();
    let key_pem = key.serialize_pem();
    let p12 = pkcs12(&options.name, &key, cert.der(), &chain, &password)?;

    let dir = layout.leaf_dir(&options.name);
    let files = LeafFiles {
        cert: dir.join("cert.pem"),
        fullchain: dir.join("fullchain.pem"),
        key: dir.join("key.pem"),
        p12: dir.join(format!("{}.p12", options.name)),
        p12_password: options
            .p12_password_file
            .clone()
            .unwrap_or_else(|| dir.join(format!("{}.p12.password", options.name))),
    };
    let mut outputs = vec![
        (
            files.cert.clone(),
            cert_pem.clone().into_bytes(),
            PUBLIC_MODE,
        ),
        (
            files.fullchain.clone(),
            format!("{cert_pem}{chain}").into_bytes(),
            PUBLIC_MODE,
        ),
        (files.key.clone(), key_pem.into_bytes(), PRIVATE_MODE),
        (files.p12.clone(), p12, PRIVATE_MODE),
    ];
    if options.p12_password_file.is_none() {
        outputs.push((
            files.p12_password.clone(),
            format!("{password}\n").into_bytes(),
            PRIVATE_MODE,
        ));
    }
    if !options.force {
        refuse_existing(outputs.iter().map(|(path, _, _)| path.as_path()))?;
    }
    create_dir(&dir, 0o755)?;
    for (path, bytes, mode) in &outputs {
        write_file(path, bytes, *mode)?;
    }
    Ok(files)
}

/// PKCS#12 (RFC 7292) with the key, the leaf and the intermediates, encrypted with
/// PBES2/AES-256-CBC and MAC'd with HMAC-SHA-256 (p12-keystore's defaults; what
/// OpenSSL 3 writes and reads).
fn pkcs12(
    alias: &str,
    key: &KeyPair,
    leaf: &[u8],
    chain_pem: &str,
    password: &str,
) -> Result<Vec<u8>, PkiError> {
    let p12_error = |error: p12_keystore::error::Error| PkiError::Pkcs12(error.to_string());
    let mut certs = vec![p12_keystore::Certificate::from_der(leaf).map_err(p12_error)?];
    for block in pem_blocks(chain_pem) {
        certs.push(p12_keystore::Certificate::from_der(&block).map_err(p12_error)?);
    }
    let local_key_id = ring::digest::digest(&ring::digest::SHA256, leaf);
    let chain = p12_keystore::PrivateKeyChain::new(key.serialized_der(), local_key_id, certs);
    let mut store = p12_keystore::KeyStore::new();
    store.add_entry(alias, p12_keystore::KeyStoreEntry::PrivateKeyChain(chain));
    store.writer(password).write().map_err(p12_error)
}

/// The DER contents of every `CERTIFICATE` block in `pem`.
fn pem_blocks(pem: &str) -> Vec<Vec<u8>> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in pem.lines() {
        let line = line.trim();
        if line == "-----BEGIN CERTIFICATE-----" {
            current = Some(String::new());
        } else if line == "-----END CERTIFICATE-----" {
            if let Some(body) = current.take()
                && let Ok(der) = base64::engine::general_purpose::STANDARD.decode(body)
            {
                blocks.push(der);
            }
        } else if let Some(body) = current.as_mut() {
            body.push_str(line);
        }
    }
    blocks
}

fn random_serial() -> Result<SerialNumber, PkiError> {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| PkiError::Random)?;
    // A positive INTEGER (RFC 5280 §4.1.2.2), never zero.
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    Ok(SerialNumber::from_slice(&bytes))
}

fn random_password() -> Result<String, PkiError> {
    let mut bytes = [0u8; 24];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| PkiError::Random)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

fn validate_name(name: &str) -> Result<(), PkiError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name != "ca"
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(())
    } else {
        Err(PkiError::Name(name.to_owned()))
    }
}

/// A host name per RFC 1123 §2.1 (letters, digits, hyphens; labels of 1–63, at most 253
/// in all), lower-cased; a leading `*.` wildcard label is allowed (RFC 6125 §6.4.3).
fn validate_dns(name: &str) -> Result<String, PkiError> {
    let lower = name.to_ascii_lowercase();
    let rest = lower.strip_prefix("*.").unwrap_or(&lower);
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if !rest.is_empty() && lower.len() <= 253 && rest.split('.').all(label_ok) {
        Ok(lower)
    } else {
        Err(PkiError::Dns(name.to_owned()))
    }
}

/// An absolute URI: `scheme:` (RFC 3986 §3.1) followed by printable ASCII without spaces.
fn validate_uri(uri: &str) -> Result<String, PkiError> {
    let valid = match uri.split_once(':') {
        Some((scheme, rest)) => {
            scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
                && !rest.is_empty()
                && uri.chars().all(|c| c.is_ascii_graphic())
        }
        None => false,
    };
    if valid {
        Ok(uri.to_owned())
    } else {
        Err(PkiError::Uri(uri.to_owned()))
    }
}

fn refuse_existing<'a>(paths: impl Iterator<Item = &'a Path>) -> Result<(), PkiError> {
    for path in paths {
        if path.exists() {
            return Err(PkiError::Exists(path.display().to_string()));
        }
    }
    Ok(())
}

fn create_dir(dir: &Path, mode: u32) -> Result<(), PkiError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)
        .map_err(io_error(dir))
}

fn read_string(path: &Path) -> Result<String, PkiError> {
    fs::read_to_string(path).map_err(io_error(path))
}

/// Writes `bytes` to a temporary file created with `mode` beside `path`, then renames it
/// over `path`: a reader never sees a half-written file, and a key is never readable by
/// others, not even for a moment.
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), PkiError> {
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = path.with_file_name(format!(".{file_name}.tmp"));
    match fs::remove_file(&temp) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(io_error(&temp)(error)),
    }
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&temp)
        .map_err(io_error(&temp))?;
    file.write_all(bytes).map_err(io_error(&temp))?;
    file.sync_all().map_err(io_error(&temp))?;
    drop(file);
    fs::rename(&temp, path).map_err(io_error(path))
}
