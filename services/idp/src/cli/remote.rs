//! `idp users … --url URL`: the same commands against a remote idp, through its admin REST
//! API (issue 18) with an access token from authz (client credentials, RFC 6749 §4.4),
//! printing what the local commands print. Nothing is read from or written to a local
//! database.

use std::path::PathBuf;

use clap::Args;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ProfileArgs, UsersCommand, read_password, show};
use crate::IdpError;
use crate::users::{Profile, User};

/// Where and as whom to drive a remote idp: global flags, next to `--config` (the flag
/// names and variables authz's CLI uses too, `/work/handoff/cli-url`).
#[derive(Debug, Default, Args)]
pub struct Remote {
    /// Drive the idp whose admin listener is at this URL (e.g. http://127.0.0.1:9081)
    /// through its admin API instead of the local database (`users` commands only).
    #[arg(long, global = true, env = "IDP_ADMIN_URL", value_name = "URL")]
    pub url: Option<String>,
    /// authz's token endpoint (e.g. http://127.0.0.1:8080/token), required with --url.
    #[arg(long, global = true, env = "IDP_TOKEN_URL", value_name = "URL")]
    pub token_url: Option<String>,
    /// The admin client's id (client credentials at authz), required with --url.
    #[arg(long, global = true, env = "IDP_ADMIN_CLIENT_ID", value_name = "ID")]
    pub client_id: Option<String>,
    /// A file holding the admin client's secret (surrounding whitespace is ignored); or
    /// the secret itself in IDP_ADMIN_CLIENT_SECRET (never as a flag: it would show in ps).
    #[arg(long, global = true, value_name = "FILE")]
    pub client_secret_file: Option<PathBuf>,
    /// Extra PEM CA bundle trusted for https to --url and --token-url.
    #[arg(long, global = true, env = "IDP_ADMIN_CA_FILE", value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
}

/// The variable that may hold the admin client's secret instead of a file.
const SECRET_ENV: &str = "IDP_ADMIN_CLIENT_SECRET";

impl Remote {
    /// With `--url`: the flag that is missing, as one line (`main` exits 2 with it).
    pub fn missing(&self) -> Option<String> {
        self.url.as_ref()?;
        let need = |flag: &str| Some(format!("--url needs {flag}"));
        if self.token_url.is_none() {
            return need("--token-url (authz's token endpoint; or IDP_TOKEN_URL)");
        }
        if self.client_id.is_none() {
            return need("--client-id (the admin client; or IDP_ADMIN_CLIENT_ID)");
        }
        if self.client_secret_file.is_none() && std::env::var_os(SECRET_ENV).is_none() {
            return need("--client-secret-file (or IDP_ADMIN_CLIENT_SECRET)");
        }
        None
    }
}

/// A user as the admin API shows it.
#[derive(Debug, Deserialize)]
struct View {
    id: String,
    username: String,
    email: Option<String>,
    email_verified: bool,
    name: Option<String>,
    given_name: Option<String>,
    family_name: Option<String>,
    picture: Option<String>,
    locale: Option<String>,
    disabled: bool,
    created_at: i64,
    updated_at: i64,
}

impl From<View> for User {
    fn from(v: View) -> Self {
        User {
            id: v.id,
            username: v.username,
            profile: Profile {
                email: v.email,
                email_verified: v.email_verified,
                name: v.name,
                given_name: v.given_name,
                family_name: v.family_name,
                picture: v.picture,
                locale: v.locale,
            },
            disabled: v.disabled,
            created_at: v.created_at,
            updated_at: v.updated_at,
        }
    }
}

/// The admin API of one idp with one access token.
struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

fn missing(flag: &str) -> IdpError {
    IdpError::Invalid(format!("--url needs {flag}"))
}

/// RFC 6749 §2.3.1: client id and secret are form-urlencoded before Basic encoding.
fn form_encoded(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// An [`IdpError`] from a refused call, on one line: `<status> <problem title>: <detail>`
/// (RFC 9457); not found and conflicts keep their kind (a user looked up by id, then by
/// username).
fn refused(status: reqwest::StatusCode, body: &Value) -> IdpError {
    let title = body["title"]
        .as_str()
        .or_else(|| body["error"].as_str())
        .or_else(|| status.canonical_reason())
        .unwrap_or("refused");
    let detail = body["detail"]
        .as_str()
        .or_else(|| body["error_description"].as_str())
        .unwrap_or("no detail");
    let field = body["field"]
        .as_str()
        .map(|f| format!(" ({f})"))
        .unwrap_or_default();
    let line = format!("{} {title}: {detail}{field}", status.as_u16()).replace(['\n', '\r'], " ");
    match status.as_u16() {
        404 => IdpError::NotFound(line),
        409 => IdpError::Conflict(line),
        _ => IdpError::Invalid(line),
    }
}

impl Api {
    /// Gets a token for `scope` from authz and points at `remote.url`.
    async fn connect(remote: &Remote, scope: &str) -> Result<Self, IdpError> {
        let base = remote
            .url
            .as_deref()
            .ok_or_else(|| missing("--url"))?
            .trim_end_matches('/')
            .to_owned();
        let client_id = remote
            .client_id
            .as_deref()
            .ok_or_else(|| missing("--client-id"))?;
        let secret_file = remote.client_secret_file.as_ref();
        let token_url = remote
            .token_url
            .as_deref()
            .ok_or_else(|| missing("--token-url"))?;
        let secret = match secret_file {
            Some(file) => tokio::fs::read_to_string(file)
                .await
                .map_err(|e| IdpError::Invalid(format!("{}: {e}", file.display())))?,
            None => std::env::var(SECRET_ENV).map_err(|_| missing("--client-secret-file"))?,
        };
        let mut builder = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none());
        if let Some(ca) = &remote.ca_file {
            for cert in guard::extra_roots(ca).map_err(|e| IdpError::Invalid(e.to_string()))? {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder
            .build()
            .map_err(|e| IdpError::Task(format!("HTTP client: {e}")))?;
        let res = http
            .post(token_url)
            .basic_auth(form_encoded(client_id), Some(form_encoded(secret.trim())))
            .form(&[("grant_type", "client_credentials"), ("scope", scope)])
            .send()
            .await
            .map_err(|e| IdpError::Invalid(format!("cannot reach {token_url}: {e}")))?;
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(refused(status, &body));
        }
        let token = body["access_token"]
            .as_str()
            .ok_or_else(|| IdpError::Invalid("the token endpoint answered no access_token".into()))?
            .to_owned();
        Ok(Self { http, base, token })
    }

    /// Calls `method path` with `body`; the JSON answer (`Null` for 204) and the `ETag`.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        if_match: Option<&str>,
    ) -> Result<(Value, Option<String>), IdpError> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            req = req.json(body);
        }
        if let Some(tag) = if_match {
            req = req.header("if-match", tag);
        }
        let res = req
            .send()
            .await
            .map_err(|e| IdpError::Invalid(format!("cannot reach {}: {e}", self.base)))?;
        let status = res.status();
        let etag = res
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = res
            .text()
            .await
            .map_err(|e| IdpError::Invalid(format!("{}: {e}", self.base)))?;
        let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(refused(status, &json));
        }
        Ok((json, etag))
    }

    async fn user_at(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<User, IdpError> {
        let (json, _) = self.call(method, path, body, None).await?;
        let view: View = serde_json::from_value(json)
            .map_err(|e| IdpError::Invalid(format!("unexpected answer from the admin API: {e}")))?;
        Ok(view.into())
    }

    /// Every user matching `query`, following the cursor.
    async fn users(&self, query: &str) -> Result<Vec<User>, IdpError> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/admin/v1/users?limit=500{query}");
            if let Some(c) = &cursor {
                path.push_str("&cursor=");
                path.push_str(&form_encoded(c));
            }
            let (page, _) = self.call(reqwest::Method::GET, &path, None, None).await?;
            for item in page["items"].as_array().into_iter().flatten() {
                let view: View = serde_json::from_value(item.clone()).map_err(|e| {
                    IdpError::Invalid(format!("unexpected answer from the admin API: {e}"))
                })?;
                all.push(view.into());
            }
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return Ok(all),
            }
        }
    }

    /// The user `key` (id, username or email, as the local commands take it) and its ETag.
    async fn resolve(&self, key: &str) -> Result<(User, String), IdpError> {
        let by_id = format!("/admin/v1/users/{}", form_encoded(key.trim()));
        match self.call(reqwest::Method::GET, &by_id, None, None).await {
            Ok((json, etag)) => {
                let view: View = serde_json::from_value(json).map_err(|e| {
                    IdpError::Invalid(format!("unexpected answer from the admin API: {e}"))
                })?;
                return Ok((view.into(), etag.unwrap_or_default()));
            }
            Err(IdpError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        for field in ["username", "email"] {
            let found = self
                .users(&format!("&{field}={}", form_encoded(key.trim())))
                .await?;
            if let Some(user) = found.into_iter().next() {
                return Box::pin(self.resolve(&user.id)).await;
            }
        }
        Err(IdpError::NotFound(format!("no user {key}")))
    }
}

fn profile_json(profile: ProfileArgs) -> Value {
    json!({
        "email": profile.email,
        "email_verified": profile.email_verified,
        "name": profile.name,
        "given_name": profile.given_name,
        "family_name": profile.family_name,
        "picture": profile.picture,
        "locale": profile.locale,
    })
}

const READ: &str = "admin:users:read";
const WRITE: &str = "admin:users:read admin:users:write";

/// Runs one `idp users` command against the idp at `remote.url`.
pub async fn users(remote: &Remote, command: UsersCommand) -> Result<(), IdpError> {
    use reqwest::Method;
    match command {
        UsersCommand::List { json } => {
            let api = Api::connect(remote, READ).await?;
            let all = api.users("").await?;
            if json {
                println!(
                    "{}",
                    Value::Array(all.iter().map(super::user_json).collect())
                );
            } else {
                all.iter().for_each(|u| show(u, false));
            }
        }
        UsersCommand::Show { user, json } => {
            let api = Api::connect(remote, READ).await?;
            show(&api.resolve(&user).await?.0, json);
        }
        UsersCommand::Create {
            username,
            profile,
            password_file,
            json,
        } => {
            let password = read_password(password_file.as_ref())?;
            let api = Api::connect(remote, WRITE).await?;
            let mut body = profile_json(profile);
            body["username"] = json!(username);
            body["password"] = json!(password);
            let user = api
                .user_at(Method::POST, "/admin/v1/users", Some(&body))
                .await?;
            show(&user, json);
        }
        UsersCommand::SetPassword {
            user,
            password_file,
        } => {
            let password = read_password(password_file.as_ref())?;
            let api = Api::connect(remote, WRITE).await?;
            let (u, _) = api.resolve(&user).await?;
            let u = api
                .user_at(
                    Method::POST,
                    &format!("/admin/v1/users/{}/password", u.id),
                    Some(&json!({"password": password})),
                )
                .await?;
            println!("password set for {}", u.username);
        }
        UsersCommand::SignOut { user } => {
            let api = Api::connect(remote, "admin:users:read admin:sessions:write").await?;
            let (u, _) = api.resolve(&user).await?;
            let (ended, _) = api
                .call(
                    Method::DELETE,
                    &format!("/admin/v1/users/{}/sessions", u.id),
                    None,
                    None,
                )
                .await?;
            println!(
                "ended {} idp session(s) of {}",
                ended["ended"].as_array().map_or(0, Vec::len),
                u.username
            );
        }
        UsersCommand::Disable { user } => {
            let api = Api::connect(remote, WRITE).await?;
            let (u, _) = api.resolve(&user).await?;
            let u = api
                .user_at(
                    Method::POST,
                    &format!("/admin/v1/users/{}/disable", u.id),
                    None,
                )
                .await?;
            show(&u, false);
            println!(
                "authz revokes every grant of {} (queued at idp until authz takes it)",
                u.username
            );
        }
        UsersCommand::Enable { user } => {
            let api = Api::connect(remote, WRITE).await?;
            let (u, _) = api.resolve(&user).await?;
            let u = api
                .user_at(
                    Method::POST,
                    &format!("/admin/v1/users/{}/enable", u.id),
                    None,
                )
                .await?;
            show(&u, false);
        }
        UsersCommand::Update {
            user,
            name,
            given_name,
            family_name,
            locale,
            picture,
            email,
            email_verified,
            json,
        } => {
            let api = Api::connect(remote, WRITE).await?;
            let (u, etag) = api.resolve(&user).await?;
            // Only the given claims change (an empty value removes one), as locally; the
            // API replaces them all, so the others are sent as they are.
            let keep = |given: Option<String>, current: Option<String>| match given {
                Some(v) if v.trim().is_empty() => None,
                Some(v) => Some(v),
                None => current,
            };
            let p = u.profile;
            let verified = email_verified
                .or(email.as_ref().map(|_| false))
                .unwrap_or(p.email_verified);
            let body = json!({
                "email": keep(email, p.email),
                "email_verified": verified,
                "name": keep(name, p.name),
                "given_name": keep(given_name, p.given_name),
                "family_name": keep(family_name, p.family_name),
                "picture": keep(picture, p.picture),
                "locale": keep(locale, p.locale),
            });
            let (json_body, _) = api
                .call(
                    Method::PUT,
                    &format!("/admin/v1/users/{}", u.id),
                    Some(&body),
                    Some(&etag),
                )
                .await?;
            let view: View = serde_json::from_value(json_body).map_err(|e| {
                IdpError::Invalid(format!("unexpected answer from the admin API: {e}"))
            })?;
            show(&view.into(), json);
        }
        UsersCommand::Delete { user } => {
            let api = Api::connect(remote, WRITE).await?;
            let (u, _) = api.resolve(&user).await?;
            api.call(
                Method::DELETE,
                &format!("/admin/v1/users/{}", u.id),
                None,
                None,
            )
            .await?;
            println!("deleted {user}");
            println!(
                "authz revokes every grant of {} (queued at idp until authz takes it)",
                u.username
            );
        }
    }
    Ok(())
}
