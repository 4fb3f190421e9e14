//! The transports of [`super::Mailer`].

use std::path::PathBuf;

use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::config::{MailConfig, MailTls, MailTransport};
use crate::IdpError;
use crate::crypto::random_b64;

/// A configured transport.
pub(super) enum Transport {
    Log,
    File(PathBuf),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

fn config_error(key: &str, message: impl std::fmt::Display) -> IdpError {
    IdpError::Config(config::ConfigError::new(key, message.to_string()))
}

impl Transport {
    pub(super) fn new(config: &MailConfig) -> Result<Self, IdpError> {
        match config.transport {
            MailTransport::Log => Ok(Self::Log),
            MailTransport::File => Ok(Self::File(config.file_dir.clone())),
            MailTransport::Smtp => Ok(Self::Smtp(smtp(config)?)),
        }
    }

    /// Delivers `message`; `subject` is only for the log line.
    pub(super) async fn send(&self, message: &Message, subject: &str) -> Result<(), IdpError> {
        match self {
            Self::Log => {
                let to = message
                    .envelope()
                    .to()
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ");
                tracing::info!(%to, subject, "mail (transport log: not delivered)");
                Ok(())
            }
            Self::File(dir) => write_file(dir, &message.formatted()).await,
            Self::Smtp(smtp) => smtp
                .send(message.clone())
                .await
                .map(|_| ())
                .map_err(|e| IdpError::Unavailable(format!("mail relay: {e}"))),
        }
    }
}

/// The SMTP client: relay, port, TLS mode (rustls; system roots plus `ca_file`), AUTH
/// PLAIN/LOGIN with the configured credentials, timeout.
fn smtp(config: &MailConfig) -> Result<AsyncSmtpTransport<Tokio1Executor>, IdpError> {
    let relay = config
        .relay
        .as_deref()
        .map(str::trim)
        .ok_or_else(|| config_error("mail.relay", "is required when transport is smtp"))?;
    let tls = || -> Result<TlsParameters, IdpError> {
        let mut params = TlsParameters::builder(relay.trim_matches(['[', ']']).to_owned());
        if let Some(ca) = &config.ca_file {
            let pem = std::fs::read(ca)
                .map_err(|e| config_error("mail.ca_file", format!("{}: {e}", ca.display())))?;
            let cert = Certificate::from_pem(&pem)
                .map_err(|e| config_error("mail.ca_file", format!("{}: {e}", ca.display())))?;
            params = params.add_root_certificate(cert);
        }
        params
            .build_rustls()
            .map_err(|e| config_error("mail.tls", e))
    };
    let tls = match config.tls {
        MailTls::None => Tls::None,
        MailTls::Starttls => Tls::Required(tls()?),
        MailTls::Tls => Tls::Wrapper(tls()?),
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(relay)
        .port(config.port)
        .tls(tls)
        .timeout(Some(config.timeout));
    if let (Some(user), Some(password)) = (&config.username, &config.password) {
        builder = builder
            .credentials(Credentials::new(user.clone(), password.expose().clone()))
            .authentication(vec![Mechanism::Plain, Mechanism::Login]);
    }
    Ok(builder.build())
}

/// Writes one message as `<unix millis>-<random>.eml` in `dir`: first under a `.tmp` name,
/// then renamed, so whoever watches the directory only sees whole messages.
async fn write_file(dir: &std::path::Path, bytes: &[u8]) -> Result<(), IdpError> {
    let io = |e: std::io::Error| IdpError::Task(format!("mail file in {}: {e}", dir.display()));
    tokio::fs::create_dir_all(dir).await.map_err(io)?;
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let name = format!("{millis:013}-{}", random_b64(9)?);
    let tmp = dir.join(format!(".{name}.tmp"));
    let path = dir.join(format!("{name}.eml"));
    tokio::fs::write(&tmp, bytes).await.map_err(io)?;
    tokio::fs::rename(&tmp, &path).await.map_err(io)?;
    Ok(())
}
