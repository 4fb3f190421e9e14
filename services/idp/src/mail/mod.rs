//! Email (issue 21): the messages idp sends (sign-up verification, password reset,
//! "your password was changed") and the transports that carry them.
//!
//! A message is plain text (RFC 5322 with a `text/plain; charset=utf-8` body), rendered
//! from a template in `templates/mail/` ([`templates`]). [`Mailer::send`] delivers it
//! through the configured transport:
//!
//! - `smtp`: an RFC 5321 relay, with STARTTLS (RFC 3207, required when configured) or
//!   implicit TLS (RFC 8314 §3.3) over rustls, and SMTP AUTH (RFC 4954) with a password
//!   from a secret file;
//! - `file`: one `.eml` file per message in a directory (development, tests, the demo),
//!   written under a temporary name and renamed, so a reader never sees half a message;
//! - `log`: a log line with the recipient and subject only; nothing is delivered.
//!
//! Bodies may hold a link's single-use token, so they are never logged.

mod config;
pub mod templates;
mod transport;

use std::sync::Arc;

use lettre::Message;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Mailbox as To};
use tracing::instrument;

pub use self::config::{MailConfig, MailTls, MailTransport};
use self::transport::Transport;
use crate::IdpError;

/// A message ready to send: recipient, subject and plain-text body.
#[derive(Clone, PartialEq, Eq)]
pub struct Email {
    /// The recipient's address.
    pub to: String,
    /// The `Subject:`.
    pub subject: String,
    /// The plain-text body.
    pub body: String,
}

impl std::fmt::Debug for Email {
    /// Never prints the body (it may hold a link's token).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Email")
            .field("to", &self.to)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// Sends idp's messages through the configured transport. Cheap to clone.
#[derive(Clone)]
pub struct Mailer {
    from: Mailbox,
    transport: Arc<Transport>,
    /// The "forgot password" page, named in notifications when password reset is on.
    reset_page: Option<Arc<str>>,
}

impl Mailer {
    /// The mailer of `config` (already validated): reads `ca_file` and builds the SMTP
    /// client once, so sending parses nothing.
    pub fn new(config: &MailConfig) -> Result<Self, IdpError> {
        let from = config.from.parse::<Mailbox>().map_err(|e| {
            IdpError::Config(::config::ConfigError::new("mail.from", e.to_string()))
        })?;
        Ok(Self {
            from,
            transport: Arc::new(Transport::new(config)?),
            reset_page: None,
        })
    }

    /// The same mailer naming `page` (an absolute URL) as the "forgot password" page in
    /// its notifications.
    pub fn with_reset_page(mut self, page: Option<String>) -> Self {
        self.reset_page = page.map(Into::into);
        self
    }

    /// Tells `user` (in the background, see [`Mailer::send_later`]) that their password was
    /// changed at `at` (Unix seconds), by a reset link (`by_reset`) or otherwise (the
    /// account page, an administrator). Nothing is sent to a user without an email address.
    pub fn notify_password_changed(
        &self,
        user: &crate::users::User,
        at: i64,
        by_reset: bool,
    ) -> Result<(), IdpError> {
        let Some(to) = user.profile.email.as_deref() else {
            return Ok(());
        };
        self.send_later(templates::password_changed(
            to,
            &user.username,
            at,
            by_reset,
            self.reset_page.as_deref(),
        )?);
        Ok(())
    }

    /// Builds the RFC 5322 message of `email` (with `Date` and a `Message-ID`, §3.6.4).
    fn message(&self, email: &Email) -> Result<Message, IdpError> {
        let to: To = email
            .to
            .parse()
            .map_err(|_| IdpError::Invalid(format!("{:?} is not an email address", email.to)))?;
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject.clone())
            .message_id(None)
            .header(ContentType::TEXT_PLAIN)
            .body(email.body.clone())
            .map_err(|e| IdpError::Task(format!("mail: {e}")))
    }

    /// Sends `email` now and waits for the transport (the relay's `250` after `DATA`, or
    /// the file renamed into place). Counted in `idp_mail_sent_total{result}`.
    #[instrument(skip_all)]
    pub async fn send(&self, email: &Email) -> Result<(), IdpError> {
        let message = self.message(email)?;
        let result = self.transport.send(&message, &email.subject).await;
        let label = if result.is_ok() { "sent" } else { "failed" };
        metrics::counter!("idp_mail_sent_total", "result" => label).increment(1);
        result
    }

    /// Sends `email` in the background: the caller's answer neither waits for the relay
    /// nor depends on whether a message was sent at all (the forms answer the same whether
    /// or not an account exists, RFC-free but OWASP's account-enumeration advice). A
    /// failure is logged with the recipient's domain only.
    pub fn send_later(&self, email: Email) {
        let mailer = self.clone();
        tokio::spawn(async move {
            if let Err(e) = mailer.send(&email).await {
                let domain = email.to.rsplit_once('@').map_or("", |(_, d)| d);
                tracing::error!(error = %e, to_domain = domain, subject = %email.subject, "mail not sent");
            }
        });
    }
}
