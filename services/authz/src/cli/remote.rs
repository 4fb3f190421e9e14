//! admin2: `--url`: the `clients`, `keys` and `registration-tokens` commands driving a
//! remote authz through its admin REST API (issue 18) instead of a local database. The CLI
//! gets an access token by the client credentials grant (RFC 6749 §4.4, Basic
//! authentication, §2.3.1) from authz's token endpoint for the admin scopes the command
//! needs, then calls `/admin/v1/...` on the admin listener; the output is the local
//! command's. Problems (RFC 9457) become one line: `<status> <title>: <detail>`.

use std::path::PathBuf;

use clap::Args;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tracing::instrument;

use crate::AuthzError;

/// Where the remote authz is and how to authenticate to it (global flags; see
/// `/work/handoff/cli-url` for the shared naming with idp's CLI).
#[derive(Debug, Default, Args)]
pub struct RemoteArgs {
    /// Drive a running authz through its admin API at this URL (its admin listener, e.g.
    /// http://127.0.0.1:9100) instead of the configured database.
    #[arg(long, global = true, env = "AUTHZ_ADMIN_URL", value_name = "URL")]
    url: Option<String>,
    /// authz's token endpoint (e.g. http://localhost:8080/token), where the admin client
    /// gets its token by client credentials. Required with --url.
    #[arg(long, global = true, env = "AUTHZ_TOKEN_URL", value_name = "URL")]
    token_url: Option<String>,
    /// The admin client's id (with --url).
    #[arg(long, global = true, env = "AUTHZ_ADMIN_CLIENT_ID", value_name = "ID")]
    client_id: Option<String>,
    /// File holding the admin client's secret (with --url; default: the
    /// AUTHZ_ADMIN_CLIENT_SECRET environment variable).
    #[arg(long, global = true, value_name = "FILE")]
    client_secret_file: Option<PathBuf>,
}

/// The environment variable holding the admin client's secret when no file is given.
const SECRET_ENV: &str = "AUTHZ_ADMIN_CLIENT_SECRET";

/// What is missing for `--url`: the flag to name on the one line of a configuration error.
#[derive(Debug)]
pub struct MissingFlag(pub &'static str);

/// A remote authz, resolved from [`RemoteArgs`].
#[derive(Debug)]
pub struct Target {
    url: String,
    token_url: String,
    client_id: String,
    secret: String,
}

impl RemoteArgs {
    /// Whether `--url` was given (then no local configuration or database is used).
    pub fn given(&self) -> bool {
        self.url.is_some()
    }

    /// The target; [`MissingFlag`] names the flag that is missing or unreadable.
    pub fn target(self) -> Result<Target, MissingFlag> {
        let url = self.url.ok_or(MissingFlag("--url"))?;
        let token_url = self.token_url.ok_or(MissingFlag("--token-url"))?;
        let client_id = self.client_id.ok_or(MissingFlag("--client-id"))?;
        let secret = match self.client_secret_file {
            Some(path) => std::fs::read_to_string(&path)
                .map_err(|_| MissingFlag("--client-secret-file"))?
                .trim_end_matches(['\n', '\r'])
                .to_owned(),
            None => std::env::var(SECRET_ENV).map_err(|_| MissingFlag("--client-secret-file"))?,
        };
        if secret.is_empty() {
            return Err(MissingFlag("--client-secret-file"));
        }
        Ok(Target {
            url: url.trim_end_matches('/').to_owned(),
            token_url,
            client_id,
            secret,
        })
    }
}

/// An authenticated session with a remote admin API.
pub struct Remote {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Target {
    /// Gets an access token with `scope` by client credentials.
    #[instrument(skip_all)]
    pub async fn connect(self, scope: &str) -> Result<Remote, AuthzError> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| AuthzError::Task(format!("HTTP client: {e}")))?;
        let res = http
            .post(&self.token_url)
            .header(
                "authorization",
                domain::basic::encode(&self.client_id, &self.secret),
            )
            .form(&[("grant_type", "client_credentials"), ("scope", scope)])
            .send()
            .await
            .map_err(|e| AuthzError::Task(format!("{}: {e}", self.token_url)))?;
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        let token = match body["access_token"].as_str() {
            Some(t) if status == StatusCode::OK => t.to_owned(),
            _ => {
                return Err(AuthzError::Invalid(format!(
                    "{} {}: {}",
                    status.as_u16(),
                    body["error"].as_str().unwrap_or("token request refused"),
                    body["error_description"].as_str().unwrap_or_default()
                )));
            }
        };
        Ok(Remote {
            http,
            base: self.url,
            token,
        })
    }
}

impl Remote {
    /// `method path` with an optional JSON body; the JSON answer (`Null` for 204), or the
    /// problem as an error: 404 as [`AuthzError::NotFound`], 409/412 as
    /// [`AuthzError::Conflict`], the rest as [`AuthzError::Invalid`].
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, AuthzError> {
        Ok(self.exchange(method, path, body, None).await?.0)
    }

    /// [`Remote::call`] with an optional `If-Match` (RFC 9110 §13.1.1), answering the
    /// response's `ETag` too (RFC 9110 §8.8.3): a read-modify-write sends back the tag it
    /// read, so a concurrent change is refused (412) instead of overwritten.
    pub async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        if_match: Option<&str>,
    ) -> Result<(Value, Option<String>), AuthzError> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method, &url).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(b);
        }
        if let Some(tag) = if_match {
            req = req.header("if-match", tag);
        }
        let res = req
            .send()
            .await
            .map_err(|e| AuthzError::Task(format!("{url}: {e}")))?;
        let status = res.status();
        let etag = res
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = res
            .text()
            .await
            .map_err(|e| AuthzError::Task(format!("{url}: {e}")))?;
        let value: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if status.is_success() {
            return Ok((value, etag));
        }
        let title = value["title"].as_str().unwrap_or("error");
        let detail = value["detail"].as_str().unwrap_or_default();
        let line = format!("{} {title}: {detail}", status.as_u16());
        Err(match status {
            StatusCode::NOT_FOUND => AuthzError::NotFound(line),
            StatusCode::CONFLICT | StatusCode::PRECONDITION_FAILED => AuthzError::Conflict(line),
            _ => AuthzError::Invalid(line),
        })
    }

    /// Every item of a cursor-paged listing at `path`.
    pub async fn all(&self, path: &str) -> Result<Vec<Value>, AuthzError> {
        let mut items = Vec::new();
        let mut next = format!("{path}?limit=500");
        loop {
            let page = self.call(Method::GET, &next, None).await?;
            if let Some(list) = page["items"].as_array() {
                items.extend(list.iter().cloned());
            }
            match page["next_cursor"].as_str() {
                Some(c) => next = format!("{path}?limit=500&cursor={c}"),
                None => return Ok(items),
            }
        }
    }
}

/// `id` as one path segment (RFC 3986 §3.3: percent-encode all but unreserved
/// characters).
pub fn segment(id: &str) -> String {
    id.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
