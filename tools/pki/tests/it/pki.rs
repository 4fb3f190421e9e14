//! `pki init` / `pki issue`: the chain verifies (rustls-webpki, the verifier rustls uses,
//! and `openssl verify` where installed), usages, names, file modes, PKCS#12 round trip,
//! overwrite protection and the bad-input errors of the command.

use std::fs;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;

use pki::{InitOptions, IssueOptions, PkiError, Validity};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use time::{Duration, OffsetDateTime};
use webpki::{EndEntityCert, KeyUsage};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer as _, X509Certificate};

fn certs(path: &Path) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(path)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn leaf(dir: &Path, name: &str) -> IssueOptions {
    let mut options = IssueOptions::new(dir, name).unwrap();
    options.dns = vec![name.to_owned(), "localhost".to_owned()];
    options.ips = vec!["127.0.0.1".parse().unwrap()];
    options
}

/// Verifies `leaf` (with `fullchain`'s intermediates) against `ca` for `usage` at `at`.
fn verify(
    ca: &Path,
    fullchain: &Path,
    usage: KeyUsage,
    at: OffsetDateTime,
) -> Result<(), webpki::Error> {
    let roots = certs(ca);
    let anchors: Vec<_> = roots
        .iter()
        .map(|root| webpki::anchor_from_trusted_cert(root).unwrap())
        .collect();
    let chain = certs(fullchain);
    let end_entity = EndEntityCert::try_from(&chain[0]).unwrap();
    let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        u64::try_from(at.unix_timestamp()).unwrap(),
    ));
    end_entity
        .verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors,
            &chain[1..],
            time,
            usage,
            None,
            None,
        )
        .map(|_| ())
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

#[test]
fn default_chain_has_three_levels_and_a_server_client_leaf_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let ca = pki::init(&InitOptions::new(dir.path())).unwrap();
    assert_eq!(ca.certs.len(), 3);
    assert_eq!(certs(&ca.chain_pem).len(), 2, "intermediate + issuing");
    let files = pki::issue(&leaf(dir.path(), "authz")).unwrap();
    assert_eq!(
        certs(&files.fullchain).len(),
        3,
        "leaf + intermediate + issuing"
    );

    verify(&ca.ca_pem, &files.fullchain, KeyUsage::server_auth(), now()).unwrap();
    verify(&ca.ca_pem, &files.fullchain, KeyUsage::client_auth(), now()).unwrap();
    let chain = certs(&files.fullchain);
    let end_entity = EndEntityCert::try_from(&chain[0]).unwrap();
    for name in ["authz", "localhost", "127.0.0.1"] {
        end_entity
            .verify_is_valid_for_subject_name(&ServerName::try_from(name).unwrap())
            .unwrap();
    }
    assert!(
        end_entity
            .verify_is_valid_for_subject_name(&ServerName::try_from("idp").unwrap())
            .is_err(),
        "a name not in the SANs must not match"
    );
    // Without the intermediates the leaf does not chain to the root.
    let leaf_only = verify(&ca.ca_pem, &files.cert, KeyUsage::server_auth(), now());
    assert!(
        matches!(leaf_only, Err(webpki::Error::UnknownIssuer)),
        "{leaf_only:?}"
    );
}

#[test]
fn openssl_verifies_the_chain_where_installed() {
    if Command::new("openssl").arg("version").output().is_err() {
        eprintln!("openssl is not installed: only rustls-webpki verified the chain");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ca = pki::init(&InitOptions::new(dir.path())).unwrap();
    let files = pki::issue(&leaf(dir.path(), "idp")).unwrap();
    for purpose in ["sslserver", "sslclient"] {
        let output = Command::new("openssl")
            .args(["verify", "-purpose", purpose, "-CAfile"])
            .arg(&ca.ca_pem)
            .arg("-untrusted")
            .arg(&ca.chain_pem)
            .arg(&files.cert)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{purpose}: {}",
            String::from_utf8_lossy(&output.stdout)
        );
    }
}

#[test]
fn chain_length_is_configurable_and_path_lengths_admit_exactly_it() {
    for length in [1u8, 2, 5] {
        let dir = tempfile::tempdir().unwrap();
        let mut options = InitOptions::new(dir.path());
        options.chain_length = length;
        let ca = pki::init(&options).unwrap();
        assert_eq!(ca.certs.len(), usize::from(length));
        assert_eq!(certs(&ca.chain_pem).len(), usize::from(length) - 1);
        for (level, path) in ca.certs.iter().enumerate() {
            let der = certs(path).remove(0);
            let (_, cert) = X509Certificate::from_der(&der).unwrap();
            let constraints = cert.basic_constraints().unwrap().unwrap();
            assert!(constraints.critical);
            assert!(constraints.value.ca);
            assert_eq!(
                constraints.value.path_len_constraint,
                Some(u32::from(length) - 1 - level as u32)
            );
            let usage = cert.key_usage().unwrap().unwrap().value;
            assert!(usage.key_cert_sign() && usage.crl_sign());
        }
        let files = pki::issue(&leaf(dir.path(), "rs")).unwrap();
        verify(&ca.ca_pem, &files.fullchain, KeyUsage::server_auth(), now()).unwrap();
    }
}

#[test]
fn leaf_has_the_requested_names_usages_and_common_name() {
    let dir = tempfile::tempdir().unwrap();
    let ca = pki::init(&InitOptions::new(dir.path())).unwrap();
    let mut options = leaf(dir.path(), "authz");
    options.dns = vec!["authz.platform.test".to_owned(), "LocalHost".to_owned()];
    options.ips.push("::1".parse().unwrap());
    options.uris = vec!["spiffe://platform.test/authz".to_owned()];
    options.client = false;
    let files = pki::issue(&options).unwrap();
    let der = certs(&files.cert).remove(0);
    let (_, cert) = X509Certificate::from_der(&der).unwrap();

    let common_names: Vec<_> = cert
        .subject()
        .iter_common_name()
        .map(|cn| cn.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(common_names, ["authz.platform.test"]);
    let sans = &cert
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names;
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    let mut uris = Vec::new();
    for san in sans {
        match san {
            GeneralName::DNSName(name) => dns.push(name.to_string()),
            GeneralName::IPAddress(bytes) => ips.push(match bytes.len() {
                4 => IpAddr::from(<[u8; 4]>::try_from(*bytes).unwrap()),
                _ => IpAddr::from(<[u8; 16]>::try_from(*bytes).unwrap()),
            }),
            GeneralName::URI(uri) => uris.push(uri.to_string()),
            other => panic!("unexpected SAN {other:?}"),
        }
    }
    assert_eq!(dns, ["authz.platform.test", "localhost"]);
    assert_eq!(
        ips,
        [
            "127.0.0.1".parse::<IpAddr>().unwrap(),
            "::1".parse().unwrap()
        ]
    );
    assert_eq!(uris, ["spiffe://platform.test/authz"]);

    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth);
    assert!(!eku.client_auth);
    let constraints = cert.basic_constraints().unwrap().unwrap().value;
    assert!(!constraints.ca);
    assert!(cert.key_usage().unwrap().unwrap().value.digital_signature());
    // A server-only certificate is refused for client authentication (mTLS).
    assert!(matches!(
        verify(&ca.ca_pem, &files.fullchain, KeyUsage::client_auth(), now()),
        Err(webpki::Error::RequiredEkuNotFoundContext(_))
    ));

    let mut client_only = leaf(dir.path(), "rs");
    client_only.server = false;
    let files = pki::issue(&client_only).unwrap();
    verify(&ca.ca_pem, &files.fullchain, KeyUsage::client_auth(), now()).unwrap();
    assert!(matches!(
        verify(&ca.ca_pem, &files.fullchain, KeyUsage::server_auth(), now()),
        Err(webpki::Error::RequiredEkuNotFoundContext(_))
    ));
}

#[test]
fn private_keys_and_pkcs12_are_0600_and_the_ca_directory_0700() {
    let dir = tempfile::tempdir().unwrap();
    let ca = pki::init(&InitOptions::new(dir.path())).unwrap();
    for key in &ca.keys {
        assert_eq!(mode(key), 0o600, "{}", key.display());
    }
    assert_eq!(mode(&dir.path().join("ca")), 0o700);
    assert_eq!(mode(&ca.ca_pem), 0o644);
    let files = pki::issue(&leaf(dir.path(), "authz")).unwrap();
    assert_eq!(mode(&files.key), 0o600);
    assert_eq!(mode(&files.p12), 0o600);
    assert_eq!(mode(&files.p12_password), 0o600);
    assert_eq!(mode(&files.cert), 0o644);
    let leftovers: Vec<_> = fs::read_dir(files.key.parent().unwrap())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn pkcs12_round_trips_with_its_password_and_refuses_another() {
    let dir = tempfile::tempdir().unwrap();
    pki::init(&InitOptions::new(dir.path())).unwrap();
    let files = pki::issue(&leaf(dir.path(), "idp")).unwrap();
    let password = fs::read_to_string(&files.p12_password).unwrap();
    let password = password.trim_end();
    assert!(
        password.len() >= 32,
        "a generated password has at least 192 bits"
    );
    let data = fs::read(&files.p12).unwrap();

    let store = p12_keystore::KeyStore::from_pkcs12(&data, password).unwrap();
    let (alias, chain) = store.private_key_chain().unwrap();
    assert_eq!(alias, "idp");
    let PrivateKeyDer::Pkcs8(key) = PrivateKeyDer::from_pem_file(&files.key).unwrap() else {
        panic!("key.pem is not PKCS#8");
    };
    assert_eq!(chain.key(), key.secret_pkcs8_der());
    let pem_chain = certs(&files.fullchain);
    let p12_chain: Vec<&[u8]> = chain.chain().iter().map(|cert| cert.as_der()).collect();
    let pem_chain: Vec<&[u8]> = pem_chain.iter().map(|cert| cert.as_ref()).collect();
    assert_eq!(p12_chain, pem_chain);

    assert!(p12_keystore::KeyStore::from_pkcs12(&data, "not the password").is_err());
}

#[test]
fn pkcs12_password_can_come_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    pki::init(&InitOptions::new(dir.path())).unwrap();
    let password_file = dir.path().join("p12-password");
    fs::write(&password_file, "correct horse battery staple\n").unwrap();
    let mut options = leaf(dir.path(), "rs");
    options.p12_password_file = Some(password_file.clone());
    let files = pki::issue(&options).unwrap();
    assert_eq!(files.p12_password, password_file);
    assert!(!dir.path().join("rs/rs.p12.password").exists());
    let data = fs::read(&files.p12).unwrap();
    p12_keystore::KeyStore::from_pkcs12(&data, "correct horse battery staple").unwrap();

    fs::write(&password_file, "\n").unwrap();
    options.force = true;
    let error = pki::issue(&options).unwrap_err();
    assert!(matches!(error, PkiError::EmptyPassword(_)), "{error}");
}

#[test]
fn existing_files_are_not_overwritten_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let ca = pki::init(&InitOptions::new(dir.path())).unwrap();
    let root_before = fs::read(&ca.ca_pem).unwrap();
    let error = pki::init(&InitOptions::new(dir.path())).unwrap_err();
    assert!(error.to_string().contains("pass --force"), "{error}");
    assert_eq!(error.exit_code(), 2);
    assert_eq!(fs::read(&ca.ca_pem).unwrap(), root_before, "untouched");

    let files = pki::issue(&leaf(dir.path(), "authz")).unwrap();
    let cert_before = fs::read(&files.cert).unwrap();
    let key_before = fs::read(&files.key).unwrap();
    let error = pki::issue(&leaf(dir.path(), "authz")).unwrap_err();
    assert!(matches!(error, PkiError::Exists(_)), "{error}");
    assert_eq!(fs::read(&files.key).unwrap(), key_before, "untouched");

    let mut again = leaf(dir.path(), "authz");
    again.force = true;
    pki::issue(&again).unwrap();
    assert_ne!(fs::read(&files.cert).unwrap(), cert_before);
    assert_ne!(fs::read(&files.key).unwrap(), key_before);
    assert_eq!(mode(&files.key), 0o600);

    let mut init_again = InitOptions::new(dir.path());
    init_again.force = true;
    pki::init(&init_again).unwrap();
    assert_ne!(fs::read(&ca.ca_pem).unwrap(), root_before);
    // The old leaf no longer chains to the new root.
    assert!(verify(&ca.ca_pem, &files.fullchain, KeyUsage::server_auth(), now()).is_err());
}

#[test]
fn validity_is_enforced_by_the_verifier() {
    let dir = tempfile::tempdir().unwrap();
    let ca = pki::init(&InitOptions::new(dir.path())).unwrap();
    let mut expired = leaf(dir.path(), "expired");
    expired.validity = Validity {
        not_before: now() - Duration::days(10),
        not_after: now() - Duration::days(1),
    };
    let files = pki::issue(&expired).unwrap();
    assert!(matches!(
        verify(&ca.ca_pem, &files.fullchain, KeyUsage::server_auth(), now()),
        Err(webpki::Error::CertExpired { .. })
    ));
    let der = certs(&files.cert).remove(0);
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    assert_eq!(
        cert.validity().not_after.timestamp(),
        expired.validity.not_after.unix_timestamp()
    );

    let mut future = leaf(dir.path(), "future");
    future.validity = Validity {
        not_before: now() + Duration::days(1),
        not_after: now() + Duration::days(10),
    };
    let files = pki::issue(&future).unwrap();
    assert!(matches!(
        verify(&ca.ca_pem, &files.fullchain, KeyUsage::server_auth(), now()),
        Err(webpki::Error::CertNotValidYet { .. })
    ));

    let mut backwards = leaf(dir.path(), "backwards");
    backwards.validity = Validity {
        not_before: now(),
        not_after: now() - Duration::days(1),
    };
    assert!(matches!(pki::issue(&backwards), Err(PkiError::Days(_))));
    assert!(matches!(Validity::days_from_now(0), Err(PkiError::Days(0))));
}

#[test]
fn bad_leaf_input_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    pki::init(&InitOptions::new(dir.path())).unwrap();
    for name in ["", "../escape", "a/b", ".hidden", "ca"] {
        let error = pki::issue(&leaf(dir.path(), name)).unwrap_err();
        assert!(matches!(error, PkiError::Name(_)), "{name:?}: {error}");
    }
    for dns in ["-authz", "authz..test", "auth z", "authz_", "ä.test"] {
        let mut options = leaf(dir.path(), "x");
        options.dns = vec![dns.to_owned()];
        let error = pki::issue(&options).unwrap_err();
        assert!(matches!(error, PkiError::Dns(_)), "{dns:?}: {error}");
    }
    for uri in ["no-scheme", "spiffe://a b", "1http://x"] {
        let mut options = leaf(dir.path(), "x");
        options.uris = vec![uri.to_owned()];
        let error = pki::issue(&options).unwrap_err();
        assert!(matches!(error, PkiError::Uri(_)), "{uri:?}: {error}");
    }
    let mut nameless = IssueOptions::new(dir.path(), "x").unwrap();
    nameless.dns.clear();
    assert!(matches!(pki::issue(&nameless), Err(PkiError::NoNames)));
    assert!(
        !dir.path().join("x").exists(),
        "nothing written for refused input"
    );
}

fn pki_command(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pki"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn command_reports_bad_input_in_one_line_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let missing = missing.to_str().unwrap();
    let output = pki_command(&[
        "issue", "--dir", missing, "--name", "authz", "--dns", "authz",
    ]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(&format!("no CA in {missing}")), "{stderr}");
    assert!(stderr.contains("pki init"), "{stderr}");

    let target = dir.path().join("pki");
    let target = target.to_str().unwrap();
    let output = pki_command(&["init", "--dir", target, "--chain-length", "0"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.trim(),
        "pki: --chain-length must be between 1 and 8, got 0"
    );
    assert!(!dir.path().join("pki").exists());

    let output = pki_command(&["init", "--dir", target, "--chain-length", "2"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("ca.pem"));
    let output = pki_command(&[
        "issue",
        "--dir",
        target,
        "--name",
        "rs",
        "--dns",
        "rs",
        "--ip",
        "127.0.0.1",
        "--client",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let cert = certs(&dir.path().join("pki/rs/cert.pem")).remove(0);
    let (_, cert) = X509Certificate::from_der(&cert).unwrap();
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(
        eku.client_auth && !eku.server_auth,
        "--client alone: client usage only"
    );

    let output = pki_command(&["issue", "--dir", target, "--name", "rs", "--dns", "rs"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("pass --force"));

    let output = pki_command(&["issue", "--dir", target, "--name", "x", "--ip", "not-an-ip"]);
    assert_eq!(output.status.code(), Some(2), "clap rejects a bad --ip");
}
