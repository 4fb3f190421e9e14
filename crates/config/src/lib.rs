//! Layered, typed configuration shared by every service.
//!
//! Layers, lowest precedence first:
//! 1. compiled defaults (the service config type's `Default`),
//! 2. one YAML file: `--config FILE` if given (it must exist), otherwise
//!    `configs/<service>.yaml` when present,
//! 3. environment variables `<PREFIX>__SECTION__KEY` (for example `AUTHZ__HTTP__PORT=8081`).
//!
//! Any key may instead be given as `<key>_file` naming a file whose contents (without a
//! trailing newline) become the value; it is meant for secrets mounted by an orchestrator
//! (`database.url_file: /run/secrets/authz_db_url`). A `_file` key overrides the plain key.
//! The contents are read as the key's type: `8099` for a port, `true` for a flag, `30s` for
//! a duration; a string key keeps the text exactly (a secret `0123` stays `0123`). Contents
//! that do not fit are reported under the `_file` key (`http.port_file: …`).
//!
//! Every problem (unknown key, wrong type, invalid value, unreadable file) is reported as one
//! [`ConfigError`] naming the dotted key, so a start fails with one clear line.

mod error;
mod keys;
mod loader;
mod secret;

pub use error::ConfigError;
pub use keys::{default_key_paths, yaml_key_paths};
pub use loader::{ConfigSource, load, load_with_env};
pub use secret::Secret;

/// Checks of a configuration value that types alone cannot express (ranges, URL schemes,
/// consistency between keys). Called by [`load`] after deserialisation.
pub trait Validate {
    /// Returns the first problem found, naming its key relative to this value; callers nest
    /// keys with [`ConfigError::within`].
    fn validate(&self) -> Result<(), ConfigError>;
}

/// Validates each `(key, section)` in order, naming the failing key with its section
/// (`port` in `http` → `http.port`).
pub fn validate_sections(sections: &[(&str, &dyn Validate)]) -> Result<(), ConfigError> {
    for (key, section) in sections {
        section.validate().map_err(|e| e.within(key))?;
    }
    Ok(())
}

/// Whether `raw` is an `http` or `https` URL whose host is `localhost` or a loopback IP
/// address (`127.0.0.0/8`, `::1`): a URL that only this machine can reach. Anything else,
/// including an unparseable URL, is `false`.
pub fn is_local_http_url(raw: &str) -> bool {
    let Ok(url) = url::Url::parse(raw) else {
        return false;
    };
    let local = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    local && matches!(url.scheme(), "http" | "https")
}

/// `url` as a server reaches it through a back channel: a URL below `issuer` (the public
/// issuer identifier) moved below `backchannel` when one is set (an internal address such
/// as `http://authz:8080` in a container network), anything else unchanged. Only whole
/// path segments match: `http://a:80801/x` is not below `http://a:8080`.
pub fn via_backchannel(issuer: &str, backchannel: Option<&str>, url: &str) -> String {
    let issuer = issuer.trim_end_matches('/');
    match (backchannel, url.strip_prefix(issuer)) {
        (Some(back), Some(rest)) if rest.is_empty() || rest.starts_with('/') => {
            format!("{}{rest}", back.trim_end_matches('/'))
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::is_local_http_url;

    #[test]
    fn local_http_urls() {
        for local in [
            "http://localhost:8080",
            "https://LOCALHOST/tenant",
            "http://127.0.0.1:8080",
            "http://127.8.9.10",
            "http://[::1]:8081/",
        ] {
            assert!(is_local_http_url(local), "{local}");
        }
        for remote in [
            "https://id.example.com",
            "http://localhost.example.com",
            "http://10.0.0.1:8080",
            "http://[::2]",
            "http://0.0.0.0:8080",
            "ftp://localhost",
            "file:///tmp/x",
            "localhost:8080",
            "not a url",
            "",
        ] {
            assert!(!is_local_http_url(remote), "{remote}");
        }
    }
}
