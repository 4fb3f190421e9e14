//! clientauth: mutual-TLS client authentication (RFC 8705 §2) on the certificate of
//! authz's own TLS handshake or the one a trusted TLS-terminating proxy forwards. The
//! handshake proved the client holds the certificate's key; whether its chain verified
//! against a trusted CA travels with it ([`Presented::chain_verified`], needed by
//! `tls_client_auth`); this module matches the leaf to the registration.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::Value;
use x509_parser::extensions::GeneralName;
use x509_parser::public_key::PublicKey;

use super::keys::KeySet;
use super::model::TlsClientAuthSubject;

/// A client certificate presented for RFC 8705 §2 client authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presented {
    /// The leaf certificate (DER).
    pub der: std::sync::Arc<[u8]>,
    /// Whether its chain verified against a trusted CA: by the trusted proxy that forwarded
    /// it (the proxy's job), or by authz against `http.tls.client_ca_file` after its own
    /// handshake. `tls_client_auth` (RFC 8705 §2.1) needs it; `self_signed_tls_client_auth`
    /// (§2.2) does not.
    pub chain_verified: bool,
}

/// The DER of the leaf certificate in a forwarding header's value: URL-encoded PEM (nginx
/// `$ssl_client_escaped_cert`, Envoy and Traefik alike), plain PEM, or base64 DER (RFC 9440
/// `Client-Cert: :…:` byte sequence). `None` when it is none of these.
pub fn from_header(value: &str) -> Option<Vec<u8>> {
    let value = value.trim();
    let decoded: String = if value.contains('%') {
        url::form_urlencoded::parse(format!("v={}", value.replace('+', "%2B")).as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())?
    } else {
        value.to_owned()
    };
    let decoded = decoded.trim();
    if let Some(rest) = decoded.strip_prefix("-----BEGIN CERTIFICATE-----") {
        let body = rest.split("-----END CERTIFICATE-----").next()?;
        let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
        return STANDARD.decode(b64).ok();
    }
    let b64 = decoded.trim_matches(':');
    STANDARD.decode(b64).ok()
}

/// Why a certificate does not authenticate the client; safe to show to it.
pub type Mismatch = &'static str;

fn parse(der: &[u8], now: i64) -> Result<x509_parser::certificate::X509Certificate<'_>, Mismatch> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|_| "malformed client certificate")?;
    let validity = cert.validity();
    if now < validity.not_before.timestamp() || now > validity.not_after.timestamp() {
        return Err("the client certificate is outside its validity period");
    }
    Ok(cert)
}

/// RFC 4514 attribute pairs of a distinguished name, attribute types upper-cased, in a
/// canonical order (so `CN=a, O=b` and `O=b,CN=a` compare equal).
fn dn_pairs(dn: &str) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = dn
        .split([',', '+'])
        .filter_map(|part| {
            let (k, v) = part.split_once('=')?;
            Some((k.trim().to_ascii_uppercase(), v.trim().to_owned()))
        })
        .collect();
    pairs.sort();
    pairs
}

/// `tls_client_auth` (RFC 8705 §2.1.2): the leaf, within its validity period at `now`,
/// carries the registered subject DN or subjectAltName entry.
pub fn matches_subject(
    der: &[u8],
    subject: &TlsClientAuthSubject,
    now: i64,
) -> Result<(), Mismatch> {
    let cert = parse(der, now)?;
    let wanted = subject.value();
    let ok = match subject {
        TlsClientAuthSubject::SubjectDn(dn) => {
            dn_pairs(&cert.subject().to_string()) == dn_pairs(dn)
        }
        other => {
            let names = cert
                .subject_alternative_name()
                .ok()
                .flatten()
                .map(|san| san.value.general_names.clone())
                .unwrap_or_default();
            names.iter().any(|name| match (other, name) {
                (TlsClientAuthSubject::SanDns(_), GeneralName::DNSName(d)) => {
                    d.eq_ignore_ascii_case(wanted)
                }
                (TlsClientAuthSubject::SanUri(_), GeneralName::URI(u)) => *u == wanted,
                (TlsClientAuthSubject::SanEmail(_), GeneralName::RFC822Name(e)) => *e == wanted,
                (TlsClientAuthSubject::SanIp(_), GeneralName::IPAddress(ip)) => {
                    ip_of(ip).is_some_and(|ip| wanted.parse::<std::net::IpAddr>() == Ok(ip))
                }
                _ => false,
            })
        }
    };
    if ok {
        Ok(())
    } else {
        Err("the client certificate does not match the registered subject")
    }
}

fn ip_of(raw: &[u8]) -> Option<std::net::IpAddr> {
    match raw.len() {
        4 => <[u8; 4]>::try_from(raw).ok().map(std::net::IpAddr::from),
        16 => <[u8; 16]>::try_from(raw).ok().map(std::net::IpAddr::from),
        _ => None,
    }
}

/// `self_signed_tls_client_auth` (RFC 8705 §2.2): the leaf's public key is one of the
/// client's JWKS keys (its `x5c` leaf, or the same RSA `n`/`e`, EC P-256 `x`/`y` or
/// Ed25519 `x`), and the leaf is within its validity period at `now`.
pub fn matches_jwks(der: &[u8], keys: &KeySet, now: i64) -> Result<(), Mismatch> {
    let cert = parse(der, now)?;
    let spki = cert.public_key();
    let raw = spki.subject_public_key.data.as_ref();
    let member = |jwk: &serde_json::Map<String, Value>, k: &str| {
        jwk.get(k)
            .and_then(Value::as_str)
            .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
    };
    let strip = |b: &[u8]| {
        let i = b.iter().position(|x| *x != 0).unwrap_or(b.len());
        b[i..].to_vec()
    };
    let found = keys.keys.iter().any(|key| {
        let jwk = &key.jwk;
        if let Some(x5c) = jwk
            .get("x5c")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(Value::as_str)
            .and_then(|c| STANDARD.decode(c).ok())
        {
            return x5c == der;
        }
        match (jwk.get("kty").and_then(Value::as_str), spki.parsed()) {
            (Some("RSA"), Ok(PublicKey::RSA(rsa))) => {
                member(jwk, "n").is_some_and(|n| strip(&n) == strip(rsa.modulus))
                    && member(jwk, "e").is_some_and(|e| strip(&e) == strip(rsa.exponent))
            }
            (Some("EC"), Ok(PublicKey::EC(point))) => {
                let data = point.data();
                match (member(jwk, "x"), member(jwk, "y")) {
                    (Some(x), Some(y)) if data.len() == 1 + x.len() + y.len() => {
                        data[0] == 4 && data[1..=x.len()] == x[..] && data[1 + x.len()..] == y[..]
                    }
                    _ => false,
                }
            }
            (Some("OKP"), _) => member(jwk, "x").is_some_and(|x| x == raw),
            _ => false,
        }
    });
    if found {
        Ok(())
    } else {
        Err("the client certificate's key is not in the client's jwks")
    }
}
