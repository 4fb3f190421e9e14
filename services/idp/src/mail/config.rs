use std::path::PathBuf;
use std::time::Duration;

use config::{ConfigError, Secret, Validate};
use serde::{Deserialize, Serialize};

/// Where messages go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTransport {
    /// Only a log line per message (recipient and subject; never the body, which may hold
    /// a link's token). Nothing is delivered.
    Log,
    /// One RFC 5322 file per message in `mail.file_dir` (development, tests, the demo).
    File,
    /// An SMTP relay (RFC 5321) at `mail.relay`:`mail.port`.
    Smtp,
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTls {
    /// Plain text. Only allowed without credentials, or to a loopback relay.
    None,
    /// STARTTLS (RFC 3207), required: a relay that does not offer it is refused.
    Starttls,
    /// TLS from the first byte ("implicit TLS", RFC 8314 §3.3, usually port 465).
    Tls,
}

/// The `mail` section: how idp sends its messages (verification, reset, notifications).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailConfig {
    /// `log`, `file` or `smtp`.
    pub transport: MailTransport,
    /// The `From:` mailbox, e.g. `Example <no-reply@example.com>` (RFC 5322 §3.4).
    pub from: String,
    /// `file`: the directory messages are written to (created when missing).
    pub file_dir: PathBuf,
    /// `smtp`: the relay's host name (also the name its certificate must carry).
    pub relay: Option<String>,
    /// `smtp`: the relay's port (587 submission with STARTTLS, 465 implicit TLS, 25).
    pub port: u16,
    /// `smtp`: `none`, `starttls` or `tls`.
    pub tls: MailTls,
    /// `smtp`: a PEM bundle of extra trust anchors for the relay's certificate (the
    /// system's trust store is always used).
    pub ca_file: Option<PathBuf>,
    /// `smtp`: the user name of SMTP AUTH (RFC 4954); no AUTH when absent.
    pub username: Option<String>,
    /// `smtp`: its password. Secret: give it as `password_file`.
    pub password: Option<Secret<String>>,
    /// `smtp`: how long connecting and each command may take.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            transport: MailTransport::Log,
            from: "idp <no-reply@localhost>".to_owned(),
            file_dir: PathBuf::from("data/mail"),
            relay: None,
            port: 587,
            tls: MailTls::Starttls,
            ca_file: None,
            username: None,
            password: None,
            timeout: Duration::from_secs(10),
        }
    }
}

/// Whether `host` is a loopback name or address.
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl Validate for MailConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(ConfigError::new(
                "from",
                "must be a mailbox such as `Example <no-reply@example.com>`",
            ));
        }
        if self.transport == MailTransport::File && self.file_dir.as_os_str().is_empty() {
            return Err(ConfigError::new("file_dir", "must not be empty"));
        }
        if self.timeout < Duration::from_millis(100) || self.timeout > Duration::from_secs(300) {
            return Err(ConfigError::new("timeout", "must be between 100ms and 5m"));
        }
        if self.transport != MailTransport::Smtp {
            return Ok(());
        }
        let Some(relay) = self.relay.as_deref().map(str::trim) else {
            return Err(ConfigError::new(
                "relay",
                "is required when transport is smtp",
            ));
        };
        if relay.is_empty() || relay.contains(['/', ' ', ':']) && !relay.starts_with('[') {
            return Err(ConfigError::new("relay", "must be a host name or address"));
        }
        if self.port == 0 {
            return Err(ConfigError::new("port", "must be between 1 and 65535"));
        }
        if self.username.is_some() != self.password.is_some() {
            return Err(ConfigError::new(
                "password",
                "username and password (password_file) go together",
            ));
        }
        if self.tls == MailTls::None && self.username.is_some() && !is_loopback(relay) {
            return Err(ConfigError::new(
                "tls",
                "must be starttls or tls when credentials are sent to a relay that is not on this host",
            ));
        }
        if let Some(ca) = &self.ca_file
            && !ca.is_file()
        {
            return Err(ConfigError::new(
                "ca_file",
                format!("{}: no such file", ca.display()),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_name_their_key() {
        assert!(MailConfig::default().validate().is_ok());
        let key = |c: MailConfig| c.validate().unwrap_err().key;
        let smtp = MailConfig {
            transport: MailTransport::Smtp,
            relay: Some("smtp.example.com".into()),
            ..MailConfig::default()
        };
        assert!(smtp.validate().is_ok());
        assert_eq!(
            key(MailConfig {
                from: "not a mailbox".into(),
                ..MailConfig::default()
            }),
            "from"
        );
        assert_eq!(
            key(MailConfig {
                relay: None,
                ..smtp.clone()
            }),
            "relay"
        );
        assert_eq!(
            key(MailConfig {
                username: Some("u".into()),
                ..smtp.clone()
            }),
            "password"
        );
        assert_eq!(
            key(MailConfig {
                tls: MailTls::None,
                username: Some("u".into()),
                password: Some(Secret::new("p".into())),
                ..smtp.clone()
            }),
            "tls"
        );
        assert!(
            MailConfig {
                tls: MailTls::None,
                relay: Some("127.0.0.1".into()),
                username: Some("u".into()),
                password: Some(Secret::new("p".into())),
                ..smtp.clone()
            }
            .validate()
            .is_ok()
        );
        assert_eq!(
            key(MailConfig {
                ca_file: Some("/nonexistent/ca.pem".into()),
                ..smtp
            }),
            "ca_file"
        );
    }
}
