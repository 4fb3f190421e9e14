//! `authz clients …`: the client registry from the command line.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};
use domain::{AccessTokenFormat, ClientId, GrantType, ScopeSet, TokenEndpointAuthMethod};
use issuer::{Algorithm, SystemClock};
use storage::{Database, OpenMode};

use crate::clients::{Client, Clients, NewClient};
use crate::{AuthzConfig, AuthzError, MIGRATIONS};

/// `authz clients` subcommands. A secret is printed once: at creation or rotation.
#[derive(Debug, Subcommand)]
pub enum ClientsCommand {
    /// Register a client.
    Create {
        /// Client id (default: generated).
        #[arg(long)]
        id: Option<String>,
        /// Display name.
        #[arg(long)]
        name: String,
        /// Settings.
        #[command(flatten)]
        settings: Settings,
        /// Use the secret in this file instead of generating one (for migrations and
        /// fixed test credentials; generated secrets have 256 bits of entropy).
        #[arg(long, value_name = "FILE")]
        secret_file: Option<PathBuf>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// List clients.
    List {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Show one client (secrets as count and expiry only).
    Show {
        /// Client id.
        id: String,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Change settings of a client; options not given stay as they are.
    Update {
        /// Client id.
        id: String,
        /// New display name.
        #[arg(long)]
        name: Option<String>,
        /// Settings.
        #[command(flatten)]
        settings: Settings,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Issue a new secret; the old ones keep working for --grace, then stop.
    RotateSecret {
        /// Client id.
        id: String,
        /// How long the previous secrets stay valid.
        #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
        grace: Duration,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Delete a client with everything issued to it (secrets, opaque tokens, codes,
    /// consents, grants and refresh tokens; JWTs from its grants are denylisted).
    Delete {
        /// Client id.
        id: String,
    },
}

/// Client settings shared by `create` and `update`.
#[derive(Debug, Args)]
pub struct Settings {
    /// client_secret_basic, client_secret_post or none (public client).
    #[arg(long, value_parser = parse::<TokenEndpointAuthMethod>)]
    auth_method: Option<TokenEndpointAuthMethod>,
    /// Allowed grant type (repeatable): authorization_code, client_credentials, refresh_token,
    /// urn:ietf:params:oauth:grant-type:device_code (RFC 8628).
    #[arg(long = "grant-type", value_parser = parse::<GrantType>)]
    grant_types: Vec<GrantType>,
    /// Allowed scopes, space-separated.
    #[arg(long)]
    scope: Option<String>,
    /// Exact redirect URI (repeatable).
    #[arg(long = "redirect-uri")]
    redirect_uris: Vec<String>,
    /// Exact post-logout redirect URI (repeatable).
    #[arg(long = "post-logout-redirect-uri")]
    post_logout_redirect_uris: Vec<String>,
    /// Resource indicator the client may ask tokens for (repeatable; the first is the
    /// default audience).
    #[arg(long = "audience")]
    audiences: Vec<String>,
    /// Access token format: jwt (RFC 9068) or opaque.
    #[arg(long, value_parser = parse::<AccessTokenFormat>)]
    token_format: Option<AccessTokenFormat>,
    /// Access token lifetime.
    #[arg(long, value_parser = humantime::parse_duration)]
    access_token_ttl: Option<Duration>,
    /// Refresh token lifetime.
    #[arg(long, value_parser = humantime::parse_duration)]
    refresh_token_ttl: Option<Duration>,
    /// ID token lifetime.
    #[arg(long, value_parser = humantime::parse_duration)]
    id_token_ttl: Option<Duration>,
    /// Signing algorithm of this client's tokens (default: keys.default_alg).
    #[arg(long, value_parser = parse::<Algorithm>)]
    signing_alg: Option<Algorithm>,
    /// First-party client (may skip consent).
    #[arg(long)]
    first_party: Option<bool>,
    /// May call the introspection endpoints.
    #[arg(long)]
    introspect: Option<bool>,
}

fn parse<T: std::str::FromStr<Err = String>>(s: &str) -> Result<T, String> {
    s.parse()
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

fn absolute_uri(kind: &str, uri: &str) -> Result<(), AuthzError> {
    match url::Url::parse(uri) {
        Ok(u) if u.fragment().is_none() => Ok(()),
        _ => Err(AuthzError::Invalid(format!(
            "{kind} {uri:?} must be an absolute URI without a fragment"
        ))),
    }
}

impl Settings {
    fn apply(self, c: &mut Client) -> Result<(), AuthzError> {
        if let Some(m) = self.auth_method {
            c.auth_method = m;
        }
        if !self.grant_types.is_empty() {
            c.grant_types = self.grant_types;
        }
        if let Some(scope) = self.scope {
            c.scopes = ScopeSet::parse(&scope).map_err(|e| AuthzError::Invalid(e.to_string()))?;
        }
        if !self.redirect_uris.is_empty() {
            c.redirect_uris = self.redirect_uris;
        }
        if !self.post_logout_redirect_uris.is_empty() {
            c.post_logout_redirect_uris = self.post_logout_redirect_uris;
        }
        if !self.audiences.is_empty() {
            c.audiences = self.audiences;
        }
        if let Some(f) = self.token_format {
            c.access_token_format = f;
        }
        if let Some(t) = self.access_token_ttl {
            c.access_token_ttl = secs(t);
        }
        if let Some(t) = self.refresh_token_ttl {
            c.refresh_token_ttl = secs(t);
        }
        if let Some(t) = self.id_token_ttl {
            c.id_token_ttl = secs(t);
        }
        if self.signing_alg.is_some() {
            c.signing_alg = self.signing_alg;
        }
        if let Some(f) = self.first_party {
            c.first_party = f;
        }
        if let Some(i) = self.introspect {
            c.can_introspect = i;
        }
        for u in c.redirect_uris.iter().chain(&c.post_logout_redirect_uris) {
            absolute_uri("redirect URI", u)?;
        }
        for a in &c.audiences {
            absolute_uri("audience", a)?;
        }
        if c.auth_method == TokenEndpointAuthMethod::None
            && c.grant_types.contains(&GrantType::ClientCredentials)
        {
            return Err(AuthzError::Invalid(
                "a public client cannot use client_credentials".into(),
            ));
        }
        for (name, ttl) in [
            ("access", c.access_token_ttl),
            ("refresh", c.refresh_token_ttl),
            ("id", c.id_token_ttl),
        ] {
            if ttl <= 0 {
                return Err(AuthzError::Invalid(format!(
                    "{name} token lifetime must be positive"
                )));
            }
        }
        Ok(())
    }
}

/// The JSON view of a client (never secrets).
pub fn client_json(c: &Client) -> serde_json::Value {
    serde_json::json!({
        "client_id": c.id.as_str(),
        "client_name": c.name,
        "token_endpoint_auth_method": c.auth_method.as_str(),
        "grant_types": c.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        "scope": c.scopes.to_string(),
        "redirect_uris": c.redirect_uris,
        "post_logout_redirect_uris": c.post_logout_redirect_uris,
        "audiences": c.audiences,
        "access_token_format": c.access_token_format.as_str(),
        "access_token_ttl": c.access_token_ttl,
        "refresh_token_ttl": c.refresh_token_ttl,
        "id_token_ttl": c.id_token_ttl,
        "signing_alg": c.signing_alg.map(|a| a.as_str()),
        "first_party": c.first_party,
        "introspect": c.can_introspect,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
    })
}

fn show(c: &Client, json: bool) {
    if json {
        println!("{}", client_json(c));
    } else {
        println!(
            "{}  {}  {}  grants={}  scope={:?}  format={}{}",
            c.id,
            c.name,
            c.auth_method,
            c.grant_types
                .iter()
                .map(|g| g.as_str())
                .collect::<Vec<_>>()
                .join(","),
            c.scopes.to_string(),
            c.access_token_format,
            if c.can_introspect { "  introspect" } else { "" }
        );
    }
}

/// Runs one `authz clients` command.
pub async fn clients(config: &AuthzConfig, command: ClientsCommand) -> Result<(), AuthzError> {
    // Only serve and migrate create a database; this refuses a missing one.
    let db = Database::open(&config.database, &MIGRATIONS, OpenMode::MustExist).await?;
    db.migrate().await?;
    let registry = Clients::new(db, Arc::new(SystemClock), Duration::ZERO);
    match command {
        ClientsCommand::Create {
            id,
            name,
            settings,
            secret_file,
            json,
        } => {
            let id = match id {
                Some(id) => ClientId::parse(&id).map_err(AuthzError::Invalid)?,
                None => ClientId::parse(&crate::clients::generated_id()?)
                    .map_err(AuthzError::Invalid)?,
            };
            let mut client = Client::new(id, name);
            settings.apply(&mut client)?;
            let secret = match secret_file {
                Some(path) => {
                    let s = std::fs::read_to_string(&path)
                        .map_err(|e| AuthzError::Invalid(format!("{}: {e}", path.display())))?;
                    let s = s.trim_end_matches(['\n', '\r']).to_owned();
                    if s.len() < 8 {
                        return Err(AuthzError::Invalid(
                            "a client secret needs at least 8 characters".into(),
                        ));
                    }
                    Some(s)
                }
                None => None,
            };
            let (client, secret) = registry.create(NewClient { client, secret }).await?;
            if json {
                let mut v = client_json(&client);
                if let Some(s) = &secret {
                    v["client_secret"] = s.clone().into();
                }
                println!("{v}");
            } else {
                show(&client, false);
                if let Some(s) = secret {
                    println!("client_secret: {s}\n(shown once; only its SHA-256 is stored)");
                }
            }
        }
        ClientsCommand::List { json } => {
            let all = registry.list().await?;
            if json {
                println!(
                    "{}",
                    serde_json::Value::Array(all.iter().map(client_json).collect())
                );
            } else {
                all.iter().for_each(|c| show(c, false));
            }
        }
        ClientsCommand::Show { id, json } => {
            let (client, secrets) = registry
                .get(&id)
                .await?
                .ok_or_else(|| AuthzError::NotFound(format!("no client {id}")))?;
            let mut v = client_json(&client);
            v["secrets"] = secrets
                .iter()
                .map(|s| serde_json::json!({ "created_at": s.created_at, "expires_at": s.expires_at }))
                .collect::<Vec<_>>()
                .into();
            if json {
                println!("{v}");
            } else {
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            }
        }
        ClientsCommand::Update {
            id,
            name,
            settings,
            json,
        } => {
            let (mut client, _) = registry
                .get(&id)
                .await?
                .ok_or_else(|| AuthzError::NotFound(format!("no client {id}")))?;
            if let Some(n) = name {
                client.name = n;
            }
            settings.apply(&mut client)?;
            let client = registry.update(client).await?;
            show(&client, json);
        }
        ClientsCommand::RotateSecret { id, grace, json } => {
            let secret = registry.rotate_secret(&id, grace).await?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "client_id": id, "client_secret": secret, "previous_valid_for": grace.as_secs() })
                );
            } else {
                println!(
                    "client_secret: {secret}\n(shown once; previous secrets stop working in {})",
                    humantime::format_duration(grace)
                );
            }
        }
        ClientsCommand::Delete { id } => {
            registry.delete(&id).await?;
            println!("deleted {id}");
        }
    }
    Ok(())
}
