//! The mailer's transports: SMTP against a local RFC 5321 server (AUTH PLAIN, envelope,
//! message text), STARTTLS required means no mail over plain text, and the file sink.

use std::time::Duration;

use idp::mail::{Email, MailConfig, MailTls, MailTransport, Mailer};

use crate::smtp_server::SmtpServer;

fn email() -> Email {
    Email {
        to: "Alice@Example.com".into(),
        subject: "Reset your password".into(),
        body: "Hello alice,\n.a line starting with a dot\nhttps://id.example/reset?token=T\n"
            .into(),
    }
}

fn smtp(port: u16, tls: MailTls) -> MailConfig {
    MailConfig {
        transport: MailTransport::Smtp,
        from: "Example ID <no-reply@id.example>".into(),
        relay: Some("127.0.0.1".into()),
        port,
        tls,
        username: Some("mailer".into()),
        password: Some(config::Secret::new("relay-password".into())),
        timeout: Duration::from_secs(5),
        ..MailConfig::default()
    }
}

#[tokio::test]
async fn smtp_delivers_through_the_relay_with_auth_plain() {
    let server = SmtpServer::start().await;
    let mailer = Mailer::new(&smtp(server.port, MailTls::None)).unwrap();
    mailer.send(&email()).await.unwrap();
    let got = server.messages();
    assert_eq!(got.len(), 1, "{got:?}");
    let m = &got[0];
    assert_eq!(
        m.auth,
        Some(("mailer".to_owned(), "relay-password".to_owned()))
    );
    assert_eq!(m.mail_from, "<no-reply@id.example>");
    assert_eq!(m.rcpt_to, vec!["<Alice@Example.com>".to_owned()]);
    assert!(
        m.data
            .contains("From: \"Example ID\" <no-reply@id.example>\r\n"),
        "{}",
        m.data
    );
    assert!(m.data.contains("To: Alice@Example.com\r\n"), "{}", m.data);
    assert!(
        m.data.contains("Subject: Reset your password\r\n"),
        "{}",
        m.data
    );
    assert!(
        m.data
            .contains("Content-Type: text/plain; charset=utf-8\r\n"),
        "{}",
        m.data
    );
    assert!(m.data.contains("Message-ID: <"), "{}", m.data);
    assert!(m.data.contains("Date: "), "{}", m.data);
    assert!(
        m.data.contains("\r\n.a line starting with a dot\r\n"),
        "{}",
        m.data
    );
    assert!(
        m.data.contains("https://id.example/reset?token=T"),
        "{}",
        m.data
    );
}

#[tokio::test]
async fn required_starttls_never_sends_over_plain_text() {
    let server = SmtpServer::start().await;
    let mailer = Mailer::new(&smtp(server.port, MailTls::Starttls)).unwrap();
    let err = mailer.send(&email()).await.unwrap_err();
    assert!(err.to_string().contains("mail relay"), "{err}");
    assert!(server.messages().is_empty());
    let commands = server.commands.lock().unwrap().clone();
    assert!(
        commands
            .iter()
            .all(|c| !c.starts_with("AUTH") && !c.starts_with("MAIL")),
        "credentials or mail went out in clear: {commands:?}"
    );
}

#[tokio::test]
async fn an_unreachable_relay_is_an_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mailer = Mailer::new(&smtp(port, MailTls::None)).unwrap();
    assert!(mailer.send(&email()).await.is_err());
}

#[tokio::test]
async fn the_file_sink_writes_one_rfc5322_file_per_message() {
    let dir = tempfile::tempdir().unwrap();
    let mailer = Mailer::new(&MailConfig {
        transport: MailTransport::File,
        file_dir: dir.path().join("mail"),
        ..MailConfig::default()
    })
    .unwrap();
    mailer.send(&email()).await.unwrap();
    mailer.send(&email()).await.unwrap();
    let files = crate::mailbox::messages(&dir.path().join("mail"));
    assert_eq!(files.len(), 2, "{files:?}");
    for text in files {
        assert!(
            text.contains("From: idp <no-reply@localhost>\r\n"),
            "{text}"
        );
        assert!(text.contains("To: Alice@Example.com\r\n"), "{text}");
        assert!(text.contains("Subject: Reset your password\r\n"), "{text}");
        assert!(text.contains("https://id.example/reset?token=T"), "{text}");
    }
}

#[tokio::test]
async fn a_bad_recipient_is_refused_before_any_transport() {
    let mailer = Mailer::new(&MailConfig::default()).unwrap();
    let mut bad = email();
    bad.to = "not an address".into();
    assert!(mailer.send(&bad).await.is_err());
}
