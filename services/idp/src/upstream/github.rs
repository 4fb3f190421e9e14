//! GitHub as an upstream: OAuth 2.0 web application flow ("Authorizing OAuth apps":
//! `GET {github}/login/oauth/authorize`, `POST {github}/login/oauth/access_token` with
//! `Accept: application/json`, PKCE S256) and the REST API (`GET {api}/user`,
//! `GET {api}/user/emails`, API version 2022-11-28). GitHub has no ID token: the subject is
//! the numeric, immutable user `id` (never the renameable `login`), and only the primary
//! email GitHub marks `verified` is trusted; an account without one cannot sign in.

use serde::Deserialize;

use super::config::{GITHUB_API_URL, GITHUB_URL, ProviderConfig};
use super::{UpstreamProfile, UpstreamTokens, failed, read_limited, transport};
use crate::IdpError;

/// The REST API version requested.
const API_VERSION: &str = "2022-11-28";

fn base(url: Option<&url::Url>, default: &str) -> String {
    url.map_or(default, url::Url::as_str)
        .trim_end_matches('/')
        .to_owned()
}

/// `{github_url}/login/oauth/authorize`.
pub(crate) fn authorization_endpoint(config: &ProviderConfig) -> String {
    format!(
        "{}/login/oauth/authorize",
        base(config.github_url.as_ref(), GITHUB_URL)
    )
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    expires_in: Option<i64>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct GithubUser {
    id: u64,
    login: String,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
struct GithubEmail {
    email: String,
    #[serde(default)]
    primary: bool,
    #[serde(default)]
    verified: bool,
}

async fn api<T: for<'de> Deserialize<'de>>(
    http: &reqwest::Client,
    url: &str,
    token: &str,
) -> Result<T, IdpError> {
    let response = http
        .get(url)
        .bearer_auth(token)
        .header(reqwest::header::ACCEPT, "application/vnd.github+json")
        .header("X-GitHub-Api-Version", API_VERSION)
        .send()
        .await
        .map_err(transport)?;
    let status = response.status();
    if !status.is_success() {
        tracing::warn!(url, status = status.as_u16(), "GitHub API refused");
        return Err(failed("GitHub refused to share the account's profile."));
    }
    let body = read_limited(response).await?;
    serde_json::from_slice(&body).map_err(|_| failed("GitHub's answer could not be read."))
}

/// Redeems `code` and reads the user and its verified primary email; returns them with the
/// tokens GitHub answered with (kept only with `store_tokens`; a GitHub App's user token
/// expires and comes with a refresh token, an OAuth app's does not).
#[tracing::instrument(skip_all)]
pub(crate) async fn exchange(
    config: &ProviderConfig,
    http: &reqwest::Client,
    code: &str,
    redirect_uri: &str,
    verifier: &str,
    now: i64,
) -> Result<(UpstreamProfile, UpstreamTokens), IdpError> {
    let web = base(config.github_url.as_ref(), GITHUB_URL);
    let secret = config
        .client_secret
        .as_ref()
        .map(|s| s.expose().clone())
        .unwrap_or_default();
    let response = http
        .post(format!("{web}/login/oauth/access_token"))
        .header(reqwest::header::ACCEPT, "application/json")
        .form(&[
            ("client_id", config.client_id.as_str()),
            ("client_secret", secret.as_str()),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .map_err(transport)?;
    let status = response.status();
    let body = read_limited(response).await?;
    let token: TokenResponse = serde_json::from_slice(&body)
        .map_err(|_| failed("GitHub's token answer could not be read."))?;
    // GitHub reports a bad code with 200 and an `error` member.
    let access_token = match (status.is_success(), &token.error, &token.access_token) {
        (true, None, Some(t)) if !t.is_empty() => t.clone(),
        (_, error, _) => {
            tracing::warn!(
                status = status.as_u16(),
                error = error.as_deref().unwrap_or(""),
                "GitHub token request refused"
            );
            return Err(failed("GitHub refused to complete the sign-in."));
        }
    };
    let api_base = base(config.github_api_url.as_ref(), GITHUB_API_URL);
    let user: GithubUser = api(http, &format!("{api_base}/user"), &access_token).await?;
    let emails: Vec<GithubEmail> =
        api(http, &format!("{api_base}/user/emails"), &access_token).await?;
    let Some(primary) = emails.into_iter().find(|e| e.primary && e.verified) else {
        return Err(failed(
            "Your GitHub account has no verified primary email address. Verify it at GitHub, then try again.",
        ));
    };
    let profile = UpstreamProfile {
        subject: user.id.to_string(),
        username: Some(user.login),
        email: Some(primary.email),
        name: user.name.filter(|n| !n.trim().is_empty()),
    };
    let tokens = UpstreamTokens {
        access_token: Some(access_token),
        refresh_token: token.refresh_token,
        id_token: None,
        expires_at: token.expires_in.map(|s| now.saturating_add(s)),
        scope: token.scope,
    };
    Ok((profile, tokens))
}
