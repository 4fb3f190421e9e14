//! Redirect URI matching (RFC 6749 §3.1.2, OAuth 2.1 §2.3.1, RFC 9700 §4.1.3) and building
//! the URLs a browser is redirected to (RFC 6749 §3.1.2, §4.1.2).

/// Whether `presented` (the `redirect_uri` of a request) matches `registered` (one of the
/// client's registered redirect URIs).
///
/// Simple string comparison, as RFC 9700 §4.1.3 and OAuth 2.1 §2.3.1 require: no
/// normalisation, no patterns, no prefixes. The single exception is the one OAuth 2.1
/// §8.4.2 and RFC 8252 §7.3 mandate for native apps: for a loopback IP literal
/// (`http://127.0.0.1` or `http://[::1]`) the port may differ, since the app binds an
/// ephemeral one; everything else (scheme, host, path, query) must still be identical.
/// `localhost` gets no such exception (RFC 8252 §8.3).
pub fn redirect_uri_matches(registered: &str, presented: &str) -> bool {
    if registered == presented {
        return true;
    }
    match (loopback_parts(registered), loopback_parts(presented)) {
        (Some((host_a, rest_a)), Some((host_b, rest_b))) => host_a == host_b && rest_a == rest_b,
        _ => false,
    }
}

/// The first registered URI that `presented` matches.
pub fn find_redirect_uri<'a>(registered: &'a [String], presented: &str) -> Option<&'a str> {
    registered
        .iter()
        .map(String::as_str)
        .find(|r| redirect_uri_matches(r, presented))
}

/// `base` with `params` appended to its query, each name and value
/// `application/x-www-form-urlencoded` (RFC 6749 §4.1.2, Appendix B). A query already in
/// `base` is kept and extended (RFC 6749 §3.1.2: the endpoint URI "MAY include" one, which
/// "MUST be retained"); a `base` ending in `?` or `&` gets no second separator.
pub fn with_query(base: &str, params: &[(&str, &str)]) -> String {
    let mut out = base.to_owned();
    let mut sep = if base.contains('?') {
        Some('&')
    } else {
        Some('?')
    };
    if base.ends_with(['?', '&']) {
        sep = None;
    }
    for (k, v) in params {
        if let Some(sep) = sep {
            out.push(sep);
        }
        sep = Some('&');
        out.extend(url::form_urlencoded::byte_serialize(k.as_bytes()));
        out.push('=');
        out.extend(url::form_urlencoded::byte_serialize(v.as_bytes()));
    }
    out
}

/// `http://127.0.0.1[:port]/rest` or `http://[::1][:port]/rest` → (host, "/rest").
fn loopback_parts(uri: &str) -> Option<(&str, &str)> {
    let after = uri.strip_prefix("http://")?;
    let (host, after_host) = if let Some(rest) = after.strip_prefix("127.0.0.1") {
        ("127.0.0.1", rest)
    } else if let Some(rest) = after.strip_prefix("[::1]") {
        ("[::1]", rest)
    } else {
        return None;
    };
    let rest = match after_host.strip_prefix(':') {
        Some(port_and_rest) => {
            let end = port_and_rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(port_and_rest.len());
            if end == 0 || end > 5 {
                return None;
            }
            &port_and_rest[end..]
        }
        None => after_host,
    };
    // The authority must end here: `http://127.0.0.1.evil.example/` is not loopback.
    if !(rest.is_empty() || rest.starts_with(['/', '?'])) {
        return None;
    }
    Some((host, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_string_match() {
        let r = "https://app.example.com/cb";
        assert!(redirect_uri_matches(r, r));
        for other in [
            "https://app.example.com/cb/",
            "https://app.example.com/cb?x=1",
            "https://APP.example.com/cb",
            "https://app.example.com/CB",
            "https://app.example.com:443/cb",
            "https://app.example.com/cb#f",
            "https://app.example.com/c",
            "http://app.example.com/cb",
        ] {
            assert!(!redirect_uri_matches(r, other), "{other}");
        }
    }

    #[test]
    fn loopback_ip_may_change_port_only() {
        let r = "http://127.0.0.1/callback";
        assert!(redirect_uri_matches(r, "http://127.0.0.1:51234/callback"));
        assert!(redirect_uri_matches(
            "http://127.0.0.1:8000/callback",
            "http://127.0.0.1:9/callback"
        ));
        assert!(redirect_uri_matches(
            "http://[::1]:1/cb?a=b",
            "http://[::1]:2/cb?a=b"
        ));
        for other in [
            "http://127.0.0.1:51234/other",
            "http://[::1]:51234/callback",
            "https://127.0.0.1:51234/callback",
            "http://127.0.0.1.evil.example/callback",
            "http://127.0.0.1:/callback",
            "http://127.0.0.1:123456/callback",
            "http://127.0.0.1@evil.example/callback",
        ] {
            assert!(!redirect_uri_matches(r, other), "{other}");
        }
        assert!(
            !redirect_uri_matches("http://localhost:1/cb", "http://localhost:2/cb"),
            "localhost is not a loopback IP literal"
        );
    }

    #[test]
    fn finds_the_registered_uri() {
        let list = vec![
            "https://a.example/cb".to_owned(),
            "http://127.0.0.1/cb".to_owned(),
        ];
        assert_eq!(
            find_redirect_uri(&list, "http://127.0.0.1:7/cb"),
            Some("http://127.0.0.1/cb")
        );
        assert_eq!(find_redirect_uri(&list, "https://b.example/cb"), None);
    }

    #[test]
    fn query_parameters_are_appended_and_encoded() {
        assert_eq!(
            with_query("https://a.example/cb", &[("code", "x y"), ("state", "s&t")]),
            "https://a.example/cb?code=x+y&state=s%26t"
        );
        assert_eq!(
            with_query("https://a.example/cb?k=v", &[("code", "c")]),
            "https://a.example/cb?k=v&code=c"
        );
        assert_eq!(
            with_query("https://a.example/cb?", &[("code", "c")]),
            "https://a.example/cb?code=c"
        );
        assert_eq!(
            with_query("https://a.example/cb", &[]),
            "https://a.example/cb"
        );
    }
}
