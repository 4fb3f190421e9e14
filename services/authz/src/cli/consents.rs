//! `authz consents …`: the consents users asked to be remembered (idp's consent page,
//! "Remember my decision", on by default), listed per user and revoked per client.
//! Revoking also revokes that client's grants for the user (its refresh tokens stop
//! working, its access tokens are reported inactive), so the client must ask again.

use std::sync::Arc;

use clap::Subcommand;
use issuer::SystemClock;
use storage::{Database, OpenMode};

use crate::grants::Consents;
use crate::{AuthzConfig, AuthzError, MIGRATIONS};

/// `authz consents` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConsentsCommand {
    /// List the remembered consents of a user.
    List {
        /// The user's subject (`sub`).
        #[arg(long)]
        subject: String,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Forget a user's consent for a client and revoke the client's grants for the user
    /// (refresh and access tokens); the client's next sign-in asks for consent again.
    Revoke {
        /// The user's subject (`sub`).
        #[arg(long)]
        subject: String,
        /// The client id.
        #[arg(long)]
        client: String,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

/// Runs one `authz consents` command.
pub async fn consents(config: &AuthzConfig, command: ConsentsCommand) -> Result<(), AuthzError> {
    // Only serve and migrate create a database; this refuses a missing one.
    let db = Database::open(&config.database, &MIGRATIONS, OpenMode::MustExist).await?;
    db.migrate().await?;
    let consents = Consents::new(db, Arc::new(SystemClock));
    match command {
        ConsentsCommand::List { subject, json } => {
            let all = consents.list(&subject).await?;
            if json {
                let rows: Vec<_> = all
                    .iter()
                    .map(|c| {
                        serde_json::json!({
                            "client_id": c.client_id,
                            "scope": c.scope,
                            "updated_at": c.updated_at,
                        })
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(rows));
            } else if all.is_empty() {
                println!("no remembered consents for {subject}");
            } else {
                for c in &all {
                    println!(
                        "{}  scope={:?}  updated_at={}",
                        c.client_id, c.scope, c.updated_at
                    );
                }
            }
        }
        ConsentsCommand::Revoke {
            subject,
            client,
            json,
        } => {
            let event = super::operator(
                audit::Action::ConsentRevoked,
                audit::TargetKind::User,
                &subject,
            );
            let revoked = consents.revoke(&subject, &client, Some(&event)).await?;
            event.log();
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "subject": subject,
                        "client_id": client,
                        "consent_revoked": revoked.consent,
                        "grants_revoked": revoked.grants,
                    })
                );
            } else {
                println!(
                    "revoked the consent of {subject} for {client} ({} grant(s) revoked)",
                    revoked.grants
                );
            }
        }
    }
    Ok(())
}

/// Runs one `authz consents` command against the remote authz `target` (`--url`) through
/// the admin API (`GET /admin/v1/users/{subject}/consents`, `DELETE
/// .../consents/{client_id}`), with the local output; the API's revocation answers no
/// grant count, so the remote line and JSON leave it out.
pub async fn remote(
    target: super::remote::Target,
    command: ConsentsCommand,
) -> Result<(), AuthzError> {
    use reqwest::Method;
    let scope = match &command {
        ConsentsCommand::List { .. } => "admin:users:read",
        ConsentsCommand::Revoke { .. } => "admin:users:write",
    };
    let api = target.connect(scope).await?;
    let consents = |subject: &str| {
        format!(
            "/admin/v1/users/{}/consents",
            super::remote::segment(subject)
        )
    };
    match command {
        ConsentsCommand::List { subject, json } => {
            let all = api.call(Method::GET, &consents(&subject), None).await?;
            let all = all.as_array().cloned().unwrap_or_default();
            if json {
                println!("{}", serde_json::Value::Array(all));
            } else if all.is_empty() {
                println!("no remembered consents for {subject}");
            } else {
                for c in &all {
                    println!(
                        "{}  scope={:?}  updated_at={}",
                        c["client_id"].as_str().unwrap_or_default(),
                        c["scope"].as_str().unwrap_or_default(),
                        c["updated_at"].as_i64().unwrap_or_default()
                    );
                }
            }
        }
        ConsentsCommand::Revoke {
            subject,
            client,
            json,
        } => {
            let path = format!("{}/{}", consents(&subject), super::remote::segment(&client));
            api.call(Method::DELETE, &path, None).await?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "subject": subject,
                        "client_id": client,
                        "consent_revoked": true,
                    })
                );
            } else {
                println!("revoked the consent of {subject} for {client} and its grants");
            }
        }
    }
    Ok(())
}
