//! What the walk and the app share: response decoding, randomness, PKCE, URL arguments.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::Value;

/// The status and JSON body of `res`; an error naming the status when it is not JSON.
pub(crate) async fn json_of(res: reqwest::Response) -> Result<(StatusCode, Value), String> {
    let status = res.status();
    let body = res.text().await.map_err(|e| format!("read body: {e}"))?;
    let value = serde_json::from_str(&body)
        .map_err(|e| format!("HTTP {status}, not JSON ({e}): {body:.200}"))?;
    Ok((status, value))
}

/// `e` and its causes on one line (`error sending request …: … Connection refused`).
pub(crate) fn causes(e: &dyn std::error::Error) -> String {
    let mut line = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line
}

/// The string member `name` of `doc`.
pub(crate) fn str_field(doc: &Value, name: &str) -> Result<String, String> {
    doc.get(name)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("no {name} in the response"))
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The S256 challenge of a PKCE verifier (RFC 7636 §4.2).
pub(crate) fn verifier_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        verifier.as_bytes(),
    ))
}

/// 256 random bits, base64url: a `state`, `nonce`, PKCE verifier (RFC 7636 §4.1), session
/// id or CSRF token.
pub(crate) fn random() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| "no randomness".to_owned())?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The HTTP client of the walk and the app: no redirects followed, a 10 s timeout, and
/// https through rustls (ring) trusting exactly the CA certificates of `ca_file` (`--ca-file`,
/// a PEM bundle such as the compose demo CA `secrets/pki/ca.pem`); without it no https
/// server is trusted, since the demo only ever talks to the platform's own services.
/// The one line to print when the bundle cannot be read or holds no certificate.
pub(crate) fn http_client(ca_file: Option<&std::path::Path>) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(10));
    if let Some(path) = ca_file {
        let refuse = |why: String| format!("error: --ca-file {}: {why}", path.display());
        let pem = std::fs::read(path).map_err(|e| refuse(format!("cannot read it: {e}")))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| refuse(format!("not a PEM certificate bundle: {e}")))?;
        if certs.is_empty() {
            return Err(refuse("holds no PEM certificate".to_owned()));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder
        .build()
        .map_err(|e| format!("error: HTTP client: {}", causes(&e)))
}

/// The URL argument `--name` `value` without a trailing `/`, when it is an absolute http(s)
/// URL with a host and no query or fragment; otherwise the one line to print.
pub(crate) fn base_url(name: &str, value: &str) -> Result<String, String> {
    let refuse = |why: String| format!("error: --{name} {value:?}: {why}");
    let url = url::Url::parse(value).map_err(|e| refuse(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(refuse("not an http(s) URL with a host".to_owned()));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(refuse("no query or fragment allowed".to_owned()));
    }
    Ok(value.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn pkce_s256_of_rfc_7636_appendix_b() {
        assert_eq!(
            verifier_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn ca_file_must_hold_certificates() {
        let dir = std::env::temp_dir().join(format!("demo-ca-{}", random().unwrap()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.pem");
        let err = http_client(Some(&missing)).unwrap_err();
        assert!(
            err.starts_with(&format!(
                "error: --ca-file {}: cannot read it",
                missing.display()
            )),
            "{err}"
        );
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "no certificate here\n").unwrap();
        let err = http_client(Some(&empty)).unwrap_err();
        assert!(err.contains("holds no PEM certificate"), "{err}");
        assert!(http_client(None).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn url_arguments() {
        assert_eq!(
            base_url("issuer", "http://localhost:8080/").unwrap(),
            "http://localhost:8080"
        );
        assert_eq!(
            base_url("issuer", "https://id.example.com/tenant").unwrap(),
            "https://id.example.com/tenant"
        );
        for bad in [
            "localhost:8080",
            "not a url",
            "ftp://x",
            "http://x/?a=b",
            "http://x/#f",
        ] {
            let err = base_url("issuer", bad).unwrap_err();
            assert!(err.starts_with("error: --issuer "), "{err}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
    }
}
