//! `authz clients …`: the client registry from the command line.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use audit::{Action, TargetKind};
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
    /// client_secret_basic or client_secret_post (a secret, sent either way),
    /// client_secret_jwt (HS256 assertions under the secret), private_key_jwt (assertions
    /// signed with a key of --jwks-file/--jwks-uri), tls_client_auth (with --tls-subject-dn
    /// or a --tls-san-*), self_signed_tls_client_auth, or none (public client).
    #[arg(long, value_parser = parse::<TokenEndpointAuthMethod>)]
    auth_method: Option<TokenEndpointAuthMethod>,
    /// Allowed grant type (repeatable): authorization_code, client_credentials, refresh_token,
    /// urn:ietf:params:oauth:grant-type:token-exchange.
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
    // browser clients (CORS)
    /// Origin (`https://app.example.com`, no path) whose browser JavaScript may call the
    /// token, userinfo and revocation endpoints for this client, besides the origins of
    /// its redirect URIs (repeatable; replaces the list).
    #[arg(long = "allowed-origin")]
    allowed_origins: Vec<String>,
    // token exchange (RFC 8693)
    /// Audience (name or resource URI) the client may exchange tokens for with the
    /// token-exchange grant (repeatable; the first is the default target).
    #[arg(long = "exchange-audience")]
    exchange_audiences: Vec<String>,
    /// Most scopes an exchanged token may carry, space-separated (never more than the
    /// subject token had).
    #[arg(long)]
    exchange_scope: Option<String>,
    /// May exchange without an actor token (impersonation).
    #[arg(long)]
    exchange_impersonate: Option<bool>,
    /// logout: settings of OpenID Connect Back-/Front-Channel Logout 1.0.
    #[command(flatten)]
    logout: LogoutSettings,
    /// clientauth: the client's keys and certificate subject.
    #[command(flatten)]
    keys: KeySettings,
}

// clientauth
/// The client's public keys (RFC 7591 §2 `jwks`, `jwks_uri`), its assertion algorithm and
/// its `tls_client_auth` certificate subject (RFC 8705 §2.1.2). An empty value removes one.
#[derive(Debug, Args)]
pub struct KeySettings {
    /// JWKS document (`{"keys":[…]}`, public keys) of the client, from this file ("" removes it).
    #[arg(long, value_name = "FILE")]
    jwks_file: Option<PathBuf>,
    /// URL where the client publishes its JWKS (https; http only on a loopback host; "" removes it).
    #[arg(long)]
    jwks_uri: Option<String>,
    /// The one algorithm the client's assertions must use (token_endpoint_auth_signing_alg;
    /// RS256, PS256, ES256, EdDSA for private_key_jwt, HS256 for client_secret_jwt; "" any).
    #[arg(long)]
    auth_signing_alg: Option<String>,
    /// tls_client_auth: the certificate's subject DN (RFC 4514, e.g. "CN=svc,O=Example").
    #[arg(long)]
    tls_subject_dn: Option<String>,
    /// tls_client_auth: a dNSName in the certificate's subjectAltName.
    #[arg(long)]
    tls_san_dns: Option<String>,
    /// tls_client_auth: a URI in the certificate's subjectAltName.
    #[arg(long)]
    tls_san_uri: Option<String>,
    /// tls_client_auth: an IP address in the certificate's subjectAltName.
    #[arg(long)]
    tls_san_ip: Option<String>,
    /// tls_client_auth: an email address (rfc822Name) in the certificate's subjectAltName.
    #[arg(long)]
    tls_san_email: Option<String>,
}

impl KeySettings {
    /// Applies the given options to `c`; the result is checked with the rest of the client
    /// ([`Client::auth_problem`]) when it is stored.
    fn apply(self, c: &mut Client) -> Result<(), AuthzError> {
        use crate::clients::TlsClientAuthSubject as S;
        let given = |v: String| (!v.is_empty()).then_some(v);
        if let Some(path) = self.jwks_file {
            c.jwks = if path.as_os_str().is_empty() {
                None
            } else {
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    AuthzError::Invalid(format!("cannot read {}: {e}", path.display()))
                })?;
                let doc: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
                    AuthzError::Invalid(format!("{} is not JSON: {e}", path.display()))
                })?;
                if let Some(keys) = doc.get("keys").and_then(|k| k.as_array())
                    && keys.iter().any(|k| k.get("d").is_some())
                {
                    return Err(AuthzError::Invalid(format!(
                        "{} holds a private key: register only the public keys",
                        path.display()
                    )));
                }
                Some(doc)
            };
        }
        if let Some(uri) = self.jwks_uri {
            c.jwks_uri = given(uri);
        }
        if let Some(alg) = self.auth_signing_alg {
            c.token_endpoint_auth_signing_alg = given(alg);
        }
        let subjects = [
            self.tls_subject_dn.map(S::SubjectDn),
            self.tls_san_dns.map(S::SanDns),
            self.tls_san_uri.map(S::SanUri),
            self.tls_san_ip.map(S::SanIp),
            self.tls_san_email.map(S::SanEmail),
        ];
        let mut subjects = subjects.into_iter().flatten();
        if let Some(subject) = subjects.next() {
            if subjects.next().is_some() {
                return Err(AuthzError::Invalid(
                    "give one of --tls-subject-dn and --tls-san-* (RFC 8705 §2.1.2)".into(),
                ));
            }
            c.tls_client_auth = (!subject.value().is_empty()).then_some(subject);
        }
        Ok(())
    }
}

/// logout: the client's logout endpoints (OpenID Connect Back-Channel Logout 1.0 §2.2,
/// Front-Channel Logout 1.0 §2). An empty value removes an endpoint.
#[derive(Debug, Args)]
pub struct LogoutSettings {
    /// Where authz POSTs logout tokens when a session of the client ends (absolute https
    /// URI, http only on a loopback host, no fragment; "" removes it).
    #[arg(long)]
    backchannel_logout_uri: Option<String>,
    /// The client needs `sid` in its logout tokens.
    #[arg(long)]
    backchannel_logout_session_required: Option<bool>,
    /// The page authz's logout page loads in an iframe (same rules; "" removes it).
    #[arg(long)]
    frontchannel_logout_uri: Option<String>,
    /// The client needs `iss` and `sid` on its front-channel logout URI.
    #[arg(long)]
    frontchannel_logout_session_required: Option<bool>,
}

impl LogoutSettings {
    /// Applies the given options to `c` and checks its logout endpoints.
    fn apply(self, c: &mut Client) -> Result<(), AuthzError> {
        let endpoint = |v: String| (!v.is_empty()).then_some(v);
        if let Some(uri) = self.backchannel_logout_uri {
            c.backchannel_logout_uri = endpoint(uri);
        }
        if let Some(b) = self.backchannel_logout_session_required {
            c.backchannel_logout_session_required = b;
        }
        if let Some(uri) = self.frontchannel_logout_uri {
            c.frontchannel_logout_uri = endpoint(uri);
        }
        if let Some(b) = self.frontchannel_logout_session_required {
            c.frontchannel_logout_session_required = b;
        }
        for (name, uri) in [
            ("backchannel_logout_uri", &c.backchannel_logout_uri),
            ("frontchannel_logout_uri", &c.frontchannel_logout_uri),
        ] {
            if let Some(uri) = uri
                && let Some(problem) = crate::clients::logout_uri_problem(uri)
            {
                return Err(AuthzError::Invalid(format!(
                    "invalid_client_metadata: {name} {uri:?} {problem}"
                )));
            }
        }
        Ok(())
    }
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
        // browser clients (CORS)
        if !self.allowed_origins.is_empty() {
            c.allowed_origins = self.allowed_origins;
        }
        for o in &c.allowed_origins {
            if crate::clients::origin_of(o).as_deref() != Some(o.as_str()) {
                return Err(AuthzError::Invalid(format!(
                    "allowed origin {o:?} must be an http(s) origin such as \
                     https://app.example.com (scheme, host and optional port, no path)"
                )));
            }
        }
        self.logout.apply(c)?;
        // clientauth
        self.keys.apply(c)?;
        if let Some(problem) = c.auth_problem() {
            return Err(AuthzError::Invalid(problem));
        }
        // token exchange (RFC 8693)
        if !self.exchange_audiences.is_empty() {
            c.token_exchange.audiences = self.exchange_audiences;
        }
        if let Some(scope) = self.exchange_scope {
            c.token_exchange.scopes =
                ScopeSet::parse(&scope).map_err(|e| AuthzError::Invalid(e.to_string()))?;
        }
        if let Some(i) = self.exchange_impersonate {
            c.token_exchange.impersonate = i;
        }
        if let Some(a) = c
            .token_exchange
            .audiences
            .iter()
            .find(|a| a.is_empty() || a.chars().any(char::is_whitespace))
        {
            return Err(AuthzError::Invalid(format!(
                "exchange audience {a:?} must be non-empty without spaces"
            )));
        }
        if c.auth_method == TokenEndpointAuthMethod::None
            && c.grant_types.contains(&GrantType::TokenExchange)
        {
            return Err(AuthzError::Invalid(
                "a public client cannot use token exchange".into(),
            ));
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
        "allowed_origins": c.allowed_origins,
        "backchannel_logout_uri": c.backchannel_logout_uri,
        "backchannel_logout_session_required": c.backchannel_logout_session_required,
        "frontchannel_logout_uri": c.frontchannel_logout_uri,
        "frontchannel_logout_session_required": c.frontchannel_logout_session_required,
        // token exchange (RFC 8693)
        "token_exchange": {
            "audiences": c.token_exchange.audiences,
            "scope": c.token_exchange.scopes.to_string(),
            "impersonate": c.token_exchange.impersonate,
        },
        // clientauth
        "jwks": c.jwks,
        "jwks_uri": c.jwks_uri,
        "token_endpoint_auth_signing_alg": c.token_endpoint_auth_signing_alg,
        "tls_client_auth": c.tls_client_auth.as_ref().map(|s| serde_json::json!({ s.metadata_name(): s.value() })),
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
    let registry = Clients::new(db, Arc::new(SystemClock), Duration::ZERO)
        // clientauth: client_secret_jwt secrets are sealed with the KEK when one is set.
        .with_client_auth(&config.client_auth, config.keys.kek().ok());
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
            let event = super::operator(
                Action::ClientCreated,
                TargetKind::Client,
                client.id.as_str(),
            );
            let (client, secret) = registry
                .create_audited(NewClient { client, secret }, Some(&event))
                .await?;
            event.log();
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
            let event = super::operator(Action::ClientUpdated, TargetKind::Client, &id);
            let client = registry.update_audited(client, Some(&event)).await?;
            event.log();
            show(&client, json);
        }
        ClientsCommand::RotateSecret { id, grace, json } => {
            let event = super::operator(Action::ClientSecretRotated, TargetKind::Client, &id);
            let secret = registry
                .rotate_secret_audited(&id, grace, Some(&event))
                .await?;
            event.log();
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
            let event = super::operator(Action::ClientDeleted, TargetKind::Client, &id);
            registry.delete_audited(&id, Some(&event)).await?;
            event.log();
            println!("deleted {id}");
        }
    }
    Ok(())
}

// admin2: `--url`: the same commands through a remote authz's admin API.

/// A client of the admin API's JSON (`ClientView`) as the registry's [`Client`], for the
/// local command's output.
fn from_view(v: &serde_json::Value) -> Result<Client, AuthzError> {
    let mut input = v.clone();
    let created_at = v["created_at"].as_i64().unwrap_or_default();
    let updated_at = v["updated_at"].as_i64().unwrap_or_default();
    if let Some(map) = input.as_object_mut() {
        for key in [
            "created_at",
            "updated_at",
            "revision",
            "secrets",
            "client_secret",
        ] {
            map.remove(key);
        }
    }
    let input: crate::admin::clients::ClientInput = serde_json::from_value(input)
        .map_err(|e| AuthzError::Invalid(format!("unexpected client from the admin API: {e}")))?;
    let id = ClientId::parse(v["client_id"].as_str().unwrap_or_default())
        .map_err(AuthzError::Invalid)?;
    let mut client = input
        .into_client(id)
        .map_err(|e| AuthzError::Invalid(e.to_string()))?;
    client.created_at = created_at;
    client.updated_at = updated_at;
    Ok(client)
}

/// The admin API's JSON for creating `c` (`ClientInput`).
fn to_input(c: &Client) -> Result<serde_json::Value, AuthzError> {
    let mut v = serde_json::to_value(crate::admin::clients::ClientView::new(c, 0))
        .map_err(|e| AuthzError::Task(e.to_string()))?;
    if let Some(map) = v.as_object_mut() {
        for key in [
            "created_at",
            "updated_at",
            "revision",
            "secrets",
            "client_secret",
        ] {
            map.remove(key);
        }
    }
    Ok(v)
}

/// Runs one `authz clients` command against the remote authz `target` (`--url`): `list`,
/// `show`, `create` (generated secrets only), `update` (with the ETag it read as
/// `If-Match`), `rotate-secret` and `delete`, with the local output.
pub async fn remote(
    target: super::remote::Target,
    command: ClientsCommand,
) -> Result<(), AuthzError> {
    use reqwest::Method;
    let scope = match &command {
        ClientsCommand::List { .. } | ClientsCommand::Show { .. } => "admin:clients:read",
        _ => "admin:clients:read admin:clients:write",
    };
    let api = target.connect(scope).await?;
    let item = |id: &str| format!("/admin/v1/clients/{}", super::remote::segment(id));
    match command {
        ClientsCommand::Create {
            id,
            name,
            settings,
            secret_file,
            json,
        } => {
            if secret_file.is_some() {
                return Err(AuthzError::Invalid(
                    "--secret-file is not available with --url: the admin API generates \
                     secrets"
                        .into(),
                ));
            }
            let id = match id {
                Some(id) => ClientId::parse(&id).map_err(AuthzError::Invalid)?,
                None => ClientId::parse(&crate::clients::generated_id()?)
                    .map_err(AuthzError::Invalid)?,
            };
            let mut client = Client::new(id, name);
            settings.apply(&mut client)?;
            let created = api
                .call(Method::POST, "/admin/v1/clients", Some(&to_input(&client)?))
                .await?;
            let client = from_view(&created)?;
            let secret = created["client_secret"].as_str().map(str::to_owned);
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
            let all = api
                .all("/admin/v1/clients")
                .await?
                .iter()
                .map(from_view)
                .collect::<Result<Vec<_>, _>>()?;
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
            let got = api.call(Method::GET, &item(&id), None).await?;
            let mut v = client_json(&from_view(&got)?);
            v["secrets"] = got["secrets"].clone();
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
            // Read, change, replace with the tag read: a concurrent change in between is
            // refused (412) rather than overwritten.
            let (got, tag) = api.exchange(Method::GET, &item(&id), None, None).await?;
            let tag = tag.ok_or_else(|| {
                AuthzError::Invalid("the admin API sent the client without an ETag".into())
            })?;
            let mut client = from_view(&got)?;
            if let Some(n) = name {
                client.name = n;
            }
            settings.apply(&mut client)?;
            let (updated, _) = api
                .exchange(
                    Method::PUT,
                    &item(&id),
                    Some(&to_input(&client)?),
                    Some(&tag),
                )
                .await?;
            show(&from_view(&updated)?, json);
        }
        ClientsCommand::RotateSecret { id, grace, json } => {
            let rotated = api
                .call(
                    Method::POST,
                    &format!("{}/secret", item(&id)),
                    Some(&serde_json::json!({ "grace": grace.as_secs() })),
                )
                .await?;
            let secret = rotated["client_secret"].as_str().unwrap_or_default();
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
            api.call(Method::DELETE, &item(&id), None).await?;
            println!("deleted {id}");
        }
    }
    Ok(())
}
