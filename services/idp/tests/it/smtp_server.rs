//! A small local SMTP server (RFC 5321) the mail tests send to: it speaks EHLO, AUTH PLAIN
//! (RFC 4954), MAIL FROM, RCPT TO, DATA (with dot-unstuffing), RSET, NOOP and QUIT, records
//! what each session sent, and can leave STARTTLS out to test that a client requiring it
//! refuses to go on.

use std::sync::{Arc, Mutex};

use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// What one message's transaction carried.
#[derive(Debug, Clone, Default)]
pub struct Received {
    /// The decoded AUTH PLAIN credentials (`authcid`, `password`), if the client sent AUTH.
    pub auth: Option<(String, String)>,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The message text after DATA, dot-unstuffed, CRLF line ends.
    pub data: String,
}

/// A running server: its port and the messages received so far.
pub struct SmtpServer {
    pub port: u16,
    pub received: Arc<Mutex<Vec<Received>>>,
    /// Every command line received, in order (to check what a refusing client sent).
    pub commands: Arc<Mutex<Vec<String>>>,
}

impl SmtpServer {
    /// Listens on 127.0.0.1:0; advertises `AUTH PLAIN` and never STARTTLS.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let commands = Arc::new(Mutex::new(Vec::new()));
        let (r, c) = (received.clone(), commands.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (r, c) = (r.clone(), c.clone());
                tokio::spawn(async move {
                    let _ = session(stream, r, c).await;
                });
            }
        });
        Self {
            port,
            received,
            commands,
        }
    }

    pub fn messages(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

async fn session(
    stream: tokio::net::TcpStream,
    received: Arc<Mutex<Vec<Received>>>,
    commands: Arc<Mutex<Vec<String>>>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 test.local ESMTP ready\r\n").await?;
    let mut current = Received::default();
    let mut auth = None;
    loop {
        let mut line = String::new();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let line = line.trim_end_matches(['\r', '\n']).to_owned();
        commands.lock().unwrap().push(line.clone());
        let upper = line.to_ascii_uppercase();
        if upper.starts_with("EHLO") {
            write
                .write_all(b"250-test.local\r\n250-8BITMIME\r\n250 AUTH PLAIN\r\n")
                .await?;
        } else if upper.starts_with("HELO") {
            write.write_all(b"250 test.local\r\n").await?;
        } else if let Some(initial) = upper.strip_prefix("AUTH PLAIN") {
            let encoded = if initial.trim().is_empty() {
                write.write_all(b"334 \r\n").await?;
                let mut l = String::new();
                lines.read_line(&mut l).await?;
                l.trim().to_owned()
            } else {
                line["AUTH PLAIN".len()..].trim().to_owned()
            };
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .unwrap_or_default();
            let parts: Vec<String> = decoded
                .split(|b| *b == 0)
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect();
            if parts.len() == 3 {
                auth = Some((parts[1].clone(), parts[2].clone()));
                write
                    .write_all(b"235 2.7.0 Authentication successful\r\n")
                    .await?;
            } else {
                write.write_all(b"501 5.5.2 Cannot decode\r\n").await?;
            }
        } else if upper.starts_with("MAIL FROM:") {
            current = Received {
                auth: auth.clone(),
                mail_from: line[10..].trim().to_owned(),
                ..Received::default()
            };
            write.write_all(b"250 2.1.0 OK\r\n").await?;
        } else if upper.starts_with("RCPT TO:") {
            current.rcpt_to.push(line[8..].trim().to_owned());
            write.write_all(b"250 2.1.5 OK\r\n").await?;
        } else if upper == "DATA" {
            write
                .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                .await?;
            let mut data = String::new();
            loop {
                let mut l = String::new();
                if lines.read_line(&mut l).await? == 0 {
                    return Ok(());
                }
                if l == ".\r\n" || l == ".\n" {
                    break;
                }
                // RFC 5321 §4.5.2: a leading dot was doubled by the client.
                data.push_str(
                    l.strip_prefix('.')
                        .filter(|_| l.starts_with(".."))
                        .unwrap_or(&l),
                );
            }
            current.data = data;
            received.lock().unwrap().push(std::mem::take(&mut current));
            write.write_all(b"250 2.0.0 OK queued\r\n").await?;
        } else if upper == "RSET" || upper == "NOOP" {
            write.write_all(b"250 2.0.0 OK\r\n").await?;
        } else if upper == "QUIT" {
            write.write_all(b"221 2.0.0 Bye\r\n").await?;
            return Ok(());
        } else {
            write
                .write_all(b"502 5.5.1 Command not implemented\r\n")
                .await?;
        }
    }
}
