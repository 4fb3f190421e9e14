//! Delegation to a downstream service by token exchange (RFC 8693): rs trades the caller's
//! access token for one for the downstream audience, naming itself as the actor with its
//! own `client_credentials` token (RFC 6749 §4.4), and calls the downstream route with it.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use config::Secret;
use serde::Deserialize;
use tracing::instrument;

use crate::RsError;
use crate::config::ExchangeConfig;

/// RFC 8693 §2.1 grant type.
const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// RFC 8693 §3 token type of access tokens.
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// The actor token is renewed this long before it expires.
const RENEW_BEFORE: Duration = Duration::from_secs(30);

/// A token endpoint success (RFC 6749 §5.1, RFC 8693 §2.2.1).
#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: Option<u64>,
}

/// The exchanging client: its credentials, the downstream audience and where the
/// downstream route is.
pub(crate) struct Exchanger {
    http: reqwest::Client,
    token_endpoint: String,
    client_id: String,
    client_secret: Secret<String>,
    audience: String,
    scope: Option<String>,
    /// Where the downstream route is: configured, or set once the listener is bound.
    downstream_url: Arc<OnceLock<String>>,
    /// rs's own `client_credentials` token (the actor token) and when to renew it.
    actor: Mutex<Option<(String, Instant)>>,
}

impl Exchanger {
    /// The exchanger of `config` (`None` when disabled); `token_endpoint` as resolved by
    /// [`ExchangeConfig::token_endpoint_for`].
    /// `ca_file`: extra CA certificates for the token endpoint, which is the issuer's
    /// (rs passes `guard.jwks.ca_file`, the bundle it trusts the issuer with).
    pub(crate) fn new(
        config: &ExchangeConfig,
        token_endpoint: String,
        ca_file: Option<&std::path::Path>,
    ) -> Result<Option<Self>, RsError> {
        let (true, Some(client_id), Some(client_secret)) =
            (config.enabled, &config.client_id, &config.client_secret)
        else {
            return Ok(None);
        };
        let mut http = reqwest::Client::builder()
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none());
        if let Some(path) = ca_file {
            let roots = guard::extra_roots(path)
                .map_err(|e| RsError::Exchange(e.within("jwks").within("guard").to_string()))?;
            for root in roots {
                http = http.add_root_certificate(root);
            }
        }
        let http = http.build().map_err(|e| RsError::Exchange(e.to_string()))?;
        let downstream_url = Arc::new(OnceLock::new());
        if let Some(url) = &config.downstream_url {
            let _ = downstream_url.set(url.clone());
        }
        Ok(Some(Self {
            http,
            token_endpoint,
            client_id: client_id.clone(),
            client_secret: client_secret.clone(),
            audience: config.audience.clone(),
            scope: config.scope.clone(),
            downstream_url,
            actor: Mutex::new(None),
        }))
    }

    /// Sets the downstream URL to this rs's own route once its address is known, unless
    /// one was configured.
    pub(crate) fn serve_downstream_at(&self, url: String) {
        let _ = self.downstream_url.set(url);
    }

    /// POSTs `form` to the token endpoint with HTTP Basic client authentication (RFC 6749
    /// §2.3.1) and reads the access token.
    #[instrument(skip_all)]
    async fn token(&self, form: &[(&str, &str)]) -> Result<TokenResponse, RsError> {
        let res = self
            .http
            .post(&self.token_endpoint)
            .header(
                reqwest::header::AUTHORIZATION,
                domain::basic::encode(&self.client_id, self.client_secret.expose()),
            )
            .form(form)
            .send()
            .await
            .map_err(|e| RsError::Exchange(format!("token endpoint unreachable: {e}")))?;
        let status = res.status();
        if !status.is_success() {
            // RFC 6749 §5.2: the error code says why; the description may be long.
            let body: serde_json::Value = res.json().await.unwrap_or_default();
            let code = body["error"].as_str().unwrap_or("unknown").to_owned();
            return Err(RsError::Exchange(format!(
                "the token endpoint answered {status} {code}"
            )));
        }
        res.json()
            .await
            .map_err(|e| RsError::Exchange(format!("unreadable token response: {e}")))
    }

    /// rs's own access token, the actor token of every exchange; cached until shortly
    /// before it expires.
    async fn actor_token(&self) -> Result<String, RsError> {
        if let Ok(cached) = self.actor.lock()
            && let Some((token, renew_at)) = cached.as_ref()
            && Instant::now() < *renew_at
        {
            return Ok(token.clone());
        }
        let issued = self.token(&[("grant_type", "client_credentials")]).await?;
        let lifetime = Duration::from_secs(issued.expires_in.unwrap_or(0));
        let renew_at = Instant::now() + lifetime.saturating_sub(RENEW_BEFORE);
        if let Ok(mut cached) = self.actor.lock() {
            *cached = Some((issued.access_token.clone(), renew_at));
        }
        Ok(issued.access_token)
    }

    /// RFC 8693 §2.1: the caller's `subject` token → an access token for the downstream
    /// audience, with rs as the actor.
    #[instrument(skip_all)]
    pub(crate) async fn exchange(&self, subject: &str) -> Result<String, RsError> {
        let actor = self.actor_token().await?;
        let mut form = vec![
            ("grant_type", GRANT_TYPE),
            ("subject_token", subject),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
            ("actor_token", actor.as_str()),
            ("actor_token_type", ACCESS_TOKEN_TYPE),
            ("audience", self.audience.as_str()),
            ("requested_token_type", ACCESS_TOKEN_TYPE),
        ];
        if let Some(scope) = &self.scope {
            form.push(("scope", scope));
        }
        Ok(self.token(&form).await?.access_token)
    }

    /// GETs the downstream route with `token` and returns its JSON body.
    #[instrument(skip_all)]
    pub(crate) async fn call_downstream(&self, token: &str) -> Result<serde_json::Value, RsError> {
        let url = self
            .downstream_url
            .get()
            .ok_or_else(|| RsError::Downstream("the downstream URL is not known yet".into()))?;
        let res = self
            .http
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| RsError::Downstream(format!("unreachable: {e}")))?;
        let status = res.status();
        if !status.is_success() {
            return Err(RsError::Downstream(format!("answered {status}")));
        }
        res.json()
            .await
            .map_err(|e| RsError::Downstream(format!("unreadable answer: {e}")))
    }
}
