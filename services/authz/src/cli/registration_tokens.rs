//! dcr: `authz registration-tokens …`: initial access tokens for Dynamic Client
//! Registration (RFC 7591 §3).

use std::sync::Arc;
use std::time::Duration;

use clap::Subcommand;
use domain::ScopeSet;
use issuer::SystemClock;
use storage::{Database, OpenMode};

use crate::clients::Clients;
use crate::registration::{InitialAccessToken, Registrations};
use crate::{AuthzConfig, AuthzError, MIGRATIONS};

/// `authz registration-tokens` subcommands. A token is printed once, at creation; only its
/// SHA-256 is stored.
#[derive(Debug, Subcommand)]
pub enum RegistrationTokensCommand {
    /// Mint an initial access token for `POST /register`.
    Create {
        /// How long it works (e.g. 1h, 7d).
        #[arg(long, value_parser = humantime::parse_duration)]
        expires: Duration,
        /// How many clients it may register.
        #[arg(long, default_value_t = 1)]
        uses: u32,
        /// The most scope a client registered with it may get, space-separated (also its
        /// default); default: registration.open_scope.
        #[arg(long)]
        scope: Option<String>,
        /// A note for `list` (who it is for).
        #[arg(long, default_value = "")]
        description: String,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// List initial access tokens (never their values).
    List {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Revoke an initial access token at once (clients registered with it stay).
    Revoke {
        /// Token id, as `list` shows it.
        id: String,
    },
}

/// The JSON view of an initial access token (never its value).
pub fn token_json(t: &InitialAccessToken) -> serde_json::Value {
    serde_json::json!({
        "id": t.id,
        "description": t.description,
        "scope": t.scope.to_string(),
        "uses_left": t.uses_left,
        "created_at": t.created_at,
        "expires_at": t.expires_at,
    })
}

/// Runs one `authz registration-tokens` command.
pub async fn registration_tokens(
    config: &AuthzConfig,
    command: RegistrationTokensCommand,
) -> Result<(), AuthzError> {
    let db = Database::open(&config.database, &MIGRATIONS, OpenMode::MustExist).await?;
    db.migrate().await?;
    let clock = Arc::new(SystemClock);
    let clients = Arc::new(Clients::new(db.clone(), clock.clone(), Duration::ZERO));
    let service = Registrations::new(db, clients, clock, config.registration.clone());
    match command {
        RegistrationTokensCommand::Create {
            expires,
            uses,
            scope,
            description,
            json,
        } => {
            let scope = match scope {
                Some(s) => ScopeSet::parse(&s).map_err(|e| AuthzError::Invalid(e.to_string()))?,
                None => config.registration.open_scopes(),
            };
            let (token, value) = service
                .create_token(description, scope, expires, uses)
                .await?;
            if json {
                let mut v = token_json(&token);
                v["token"] = value.into();
                println!("{v}");
            } else {
                println!(
                    "{}  uses={}  scope={:?}  expires_at={}",
                    token.id,
                    token.uses_left,
                    token.scope.to_string(),
                    token.expires_at
                );
                println!(
                    "token: {value}\n(shown once; only its SHA-256 is stored; send it as \
                     Authorization: Bearer to POST /register)"
                );
            }
        }
        RegistrationTokensCommand::List { json } => {
            let all = service.list_tokens().await?;
            if json {
                println!(
                    "{}",
                    serde_json::Value::Array(all.iter().map(token_json).collect())
                );
            } else {
                for t in &all {
                    println!(
                        "{}  uses_left={}  scope={:?}  expires_at={}  {}",
                        t.id,
                        t.uses_left,
                        t.scope.to_string(),
                        t.expires_at,
                        t.description
                    );
                }
            }
        }
        RegistrationTokensCommand::Revoke { id } => {
            service.revoke_token(&id).await?;
            println!("revoked {id}");
        }
    }
    Ok(())
}
