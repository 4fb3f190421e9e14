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

/// Prints a new token and its value (shown once).
fn print_created(token: &InitialAccessToken, value: &str, json: bool) {
    if json {
        let mut v = token_json(token);
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

/// Prints tokens (never their values).
fn print_list(all: &[InitialAccessToken], json: bool) {
    if json {
        println!(
            "{}",
            serde_json::Value::Array(all.iter().map(token_json).collect())
        );
    } else {
        for t in all {
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

/// Runs one `authz registration-tokens` command (each write with its audit event, actor
/// `operator`, in the same transaction).
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
            let event = audit::AuditEvent::new(
                audit::Actor::Operator,
                audit::Action::RegistrationTokenCreated,
            );
            let (token, value, committed) = service
                .create_token_audited(description, scope, expires, uses, Some(event))
                .await?;
            if let Some(event) = committed {
                event.log();
            }
            print_created(&token, &value, json);
        }
        RegistrationTokensCommand::List { json } => {
            let all = service.list_tokens().await?;
            print_list(&all, json);
        }
        RegistrationTokensCommand::Revoke { id } => {
            let event = audit::AuditEvent::new(
                audit::Actor::Operator,
                audit::Action::RegistrationTokenRevoked,
            )
            .target(audit::TargetKind::RegistrationToken, &id);
            service.revoke_token_audited(&id, Some(&event)).await?;
            event.log();
            println!("revoked {id}");
        }
    }
    Ok(())
}

// admin2: `--url`: the same commands through a remote authz's admin API.

/// An initial access token of the admin API's JSON as the local one.
fn from_view(v: &serde_json::Value) -> Result<InitialAccessToken, AuthzError> {
    Ok(InitialAccessToken {
        id: v["id"].as_str().unwrap_or_default().to_owned(),
        description: v["description"].as_str().unwrap_or_default().to_owned(),
        scope: ScopeSet::parse(v["scope"].as_str().unwrap_or_default())
            .map_err(|e| AuthzError::Invalid(e.to_string()))?,
        uses_left: v["uses_left"].as_i64().unwrap_or_default(),
        created_at: v["created_at"].as_i64().unwrap_or_default(),
        expires_at: v["expires_at"].as_i64().unwrap_or_default(),
    })
}

/// Runs one `authz registration-tokens` command against the remote authz `target`
/// (`--url`), with the local output; without `--scope`, the server's
/// `registration.open_scope` applies.
pub async fn remote(
    target: super::remote::Target,
    command: RegistrationTokensCommand,
) -> Result<(), AuthzError> {
    use reqwest::Method;
    let scope = match &command {
        RegistrationTokensCommand::List { .. } => "admin:clients:read",
        _ => "admin:clients:read admin:clients:write",
    };
    let api = target.connect(scope).await?;
    match command {
        RegistrationTokensCommand::Create {
            expires,
            uses,
            scope,
            description,
            json,
        } => {
            let mut body = serde_json::json!({
                "expires_in": expires.as_secs(),
                "uses": uses,
                "description": description,
            });
            if let Some(s) = scope {
                body["scope"] = s.into();
            }
            let created = api
                .call(Method::POST, "/admin/v1/registration-tokens", Some(&body))
                .await?;
            let token = from_view(&created)?;
            let value = created["token"].as_str().unwrap_or_default();
            print_created(&token, value, json);
        }
        RegistrationTokensCommand::List { json } => {
            let all = api
                .call(Method::GET, "/admin/v1/registration-tokens", None)
                .await?
                .as_array()
                .map(|items| items.iter().map(from_view).collect::<Result<Vec<_>, _>>())
                .transpose()?
                .unwrap_or_default();
            print_list(&all, json);
        }
        RegistrationTokensCommand::Revoke { id } => {
            let path = format!(
                "/admin/v1/registration-tokens/{}",
                super::remote::segment(&id)
            );
            api.call(Method::DELETE, &path, None).await?;
            println!("revoked {id}");
        }
    }
    Ok(())
}
