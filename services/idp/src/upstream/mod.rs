//! Sign-in through upstream identity providers (identity brokering): a generic OpenID
//! Connect provider, Google as a preset of it, and GitHub (OAuth 2.0 and its REST API).
//!
//! One sign-in is: [`Upstreams::start`] stores a flow (state, nonce, PKCE verifier, bound to
//! the browser's CSRF cookie) and returns the upstream's authorization URL (OAuth 2.0
//! authorization code grant, RFC 6749 §4.1, with PKCE S256, RFC 7636 §4.2); the upstream
//! sends the browser back to `{public_url}upstream/{provider}/callback`, where
//! [`Upstreams::finish`] takes the flow (single use), checks RFC 9207 `iss` when the
//! upstream offers it, redeems the code and validates the ID token (OpenID Connect Core
//! 1.0 §3.1.3.7: signature against the upstream's JWKS, `iss`, `aud`/`azp`, `exp`,
//! `nonce`), or for GitHub reads `/user` and `/user/emails` (only a verified primary email
//! is trusted). Upstream tokens are used once and dropped, unless the provider has
//! `store_tokens`: then they are sealed ([`UpstreamTokens`], AES-256-GCM with
//! `upstreams.token_key`, bound to the provider and subject) and kept with the linked
//! identity, replaced on each sign-in; unlinking or deleting the account deletes them.

pub mod config;
mod github;
mod oidc;
pub(crate) mod repo;

use std::sync::Arc;
use std::time::Duration;

use domain::secret::digest_hex;
use ring::digest;
use serde::{Deserialize, Serialize};
use storage::Database;
use url::Url;

pub use self::config::{ClaimMapping, ProviderConfig, ProviderKind, UpstreamsConfig};
use self::repo::{FlowRow, IdentityRow, PendingRow};
use crate::IdpError;
use crate::clock::Clock;
use crate::crypto::random_b64;

/// Largest document read from an upstream (discovery, JWKS, token and API responses).
const DOCUMENT_LIMIT: usize = 512 * 1024;
/// Clock skew tolerated on `exp`/`iat` of upstream ID tokens.
const LEEWAY: i64 = 60;

/// The profile an upstream vouches for, after claim mapping.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct UpstreamProfile {
    /// The upstream's subject (never shown to relying parties).
    pub(crate) subject: String,
    /// The proposed username.
    pub(crate) username: Option<String>,
    /// Email, only when the upstream says it is verified.
    pub(crate) email: Option<String>,
    /// Display name.
    pub(crate) name: Option<String>,
}

/// The tokens an upstream answered a sign-in with (RFC 6749 §5.1; OpenID Connect Core 1.0
/// §3.1.3.3), as kept sealed for providers with `store_tokens`. `Debug` shows no token.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamTokens {
    /// The access token.
    pub access_token: Option<String>,
    /// The refresh token, when the upstream issued one.
    pub refresh_token: Option<String>,
    /// The ID token (OpenID providers).
    pub id_token: Option<String>,
    /// When the access token expires (Unix seconds), from `expires_in`.
    pub expires_at: Option<i64>,
    /// The granted scope, when the upstream said.
    pub scope: Option<String>,
}

impl std::fmt::Debug for UpstreamTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UpstreamTokens([redacted])")
    }
}

/// Upstream tokens sealed for storage: `base64(nonce ‖ ciphertext ‖ tag)`. `Debug` shows
/// nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SealedTokens(pub(crate) String);

impl std::fmt::Debug for SealedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealedTokens([redacted])")
    }
}

/// The additional authenticated data of the tokens of `(provider, subject)`: a sealed value
/// moved to another identity's row does not open.
fn token_context(provider: &str, subject: &str) -> String {
    format!("upstream-tokens\0{provider}\0{subject}")
}

/// Opens tokens stored for the identity `(provider, subject)` with the `upstreams.token_key`
/// `key`. Fails on another key, identity or altered bytes.
pub fn open_tokens(
    key: &issuer::Kek,
    provider: &str,
    subject: &str,
    sealed: &str,
) -> Result<UpstreamTokens, IdpError> {
    let plain = key
        .open_secret(&token_context(provider, subject), sealed)
        .map_err(|_| IdpError::Task("stored upstream tokens do not open".into()))?;
    serde_json::from_slice(&plain)
        .map_err(|_| IdpError::Task("stored upstream tokens are not readable".into()))
}

/// What a callback came to.
#[derive(Debug)]
pub(crate) enum Finished {
    /// A login flow: the upstream identity and the authz login challenge it serves.
    Login {
        /// The provider id.
        provider: String,
        /// The verified profile.
        profile: UpstreamProfile,
        /// The authz `login_challenge`.
        challenge: String,
        /// The upstream's tokens, sealed (`store_tokens` only).
        tokens: Option<SealedTokens>,
    },
    /// A link flow for the signed-in user `user_id`.
    Link {
        /// The provider id.
        provider: String,
        /// The verified profile.
        profile: UpstreamProfile,
        /// The local user who asked to link.
        user_id: String,
        /// The upstream's tokens, sealed (`store_tokens` only).
        tokens: Option<SealedTokens>,
    },
}

/// What a flow is for.
pub(crate) enum Purpose<'a> {
    /// Signing in to answer authz's login request `challenge`.
    Login(&'a str),
    /// Linking an upstream account to the signed-in user.
    Link(&'a str),
}

/// Why an upstream sign-in failed, in words safe to show.
fn failed(message: impl Into<String>) -> IdpError {
    IdpError::Federation(message.into())
}

/// One configured provider.
pub(crate) struct Provider {
    /// The id (`upstreams.providers.<id>`).
    pub(crate) id: String,
    /// Its configuration.
    pub(crate) config: ProviderConfig,
    http: reqwest::Client,
    oidc: Option<oidc::Oidc>,
}

impl Provider {
    /// The `data:` icon, if any.
    pub(crate) fn icon(&self) -> Option<&str> {
        self.config.icon.as_deref()
    }
}

struct Inner {
    db: Database,
    providers: Vec<Arc<Provider>>,
    public_url: Url,
    flow_lifetime: Duration,
    clock: Arc<dyn Clock>,
    /// `upstreams.token_key`, when configured.
    token_key: Option<Arc<issuer::Kek>>,
    /// The runtime upstream calls run on (the one that built the service), so HTTP
    /// connections live on one runtime whichever actix worker asked.
    handle: tokio::runtime::Handle,
}

/// The upstream providers. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Upstreams {
    inner: Arc<Inner>,
}

fn http_client(
    config: &ProviderConfig,
    timeout: Duration,
) -> Result<reqwest::Client, ::config::ConfigError> {
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("idp/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = &config.ca_file {
        let pem = std::fs::read(path).map_err(|e| {
            ::config::ConfigError::new("ca_file", format!("cannot read {}: {e}", path.display()))
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| ::config::ConfigError::new("ca_file", e.to_string()))?;
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder
        .build()
        .map_err(|e| ::config::ConfigError::new("timeout", e.to_string()))
}

/// `S256` code challenge of `verifier` (RFC 7636 §4.2).
fn s256(verifier: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(digest::digest(&digest::SHA256, verifier.as_bytes()))
}

/// Reads a response body of at most [`DOCUMENT_LIMIT`] bytes.
async fn read_limited(response: reqwest::Response) -> Result<Vec<u8>, IdpError> {
    if response
        .content_length()
        .is_some_and(|n| n > DOCUMENT_LIMIT as u64)
    {
        return Err(failed("The provider's answer is too large."));
    }
    let bytes = response.bytes().await.map_err(transport)?;
    if bytes.len() > DOCUMENT_LIMIT {
        return Err(failed("The provider's answer is too large."));
    }
    Ok(bytes.to_vec())
}

/// An upstream that cannot be reached or does not answer in time: a temporary problem.
fn transport(e: reqwest::Error) -> IdpError {
    tracing::warn!(error = %e, timeout = e.is_timeout(), "upstream provider unreachable");
    IdpError::Unavailable("the upstream identity provider did not answer".to_owned())
}

impl Upstreams {
    /// The configured providers; fails (naming the key) on an unreadable `ca_file`. Must
    /// run inside the Tokio runtime the calls should use.
    pub(crate) fn new(
        config: &UpstreamsConfig,
        db: Database,
        public_url: Url,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, IdpError> {
        let mut providers = Vec::new();
        for (id, provider) in &config.providers {
            let http = http_client(provider, config.timeout)
                .map_err(|e| IdpError::Config(e.within(&format!("upstreams.providers.{id}"))))?;
            let oidc = provider
                .issuer()
                .map(|issuer| oidc::Oidc::new(issuer, provider.backchannel_url.clone()));
            providers.push(Arc::new(Provider {
                id: id.clone(),
                config: provider.clone(),
                http,
                oidc,
            }));
        }
        let token_key = match &config.token_key {
            Some(key) => Some(Arc::new(issuer::Kek::from_base64(key.expose()).map_err(
                |_| {
                    IdpError::Config(::config::ConfigError::new(
                        "upstreams.token_key",
                        "must be base64 of 32 random bytes",
                    ))
                },
            )?)),
            None if config.providers.values().any(|p| p.store_tokens) => {
                return Err(IdpError::Config(::config::ConfigError::new(
                    "upstreams.token_key",
                    "is required when a provider has store_tokens: true",
                )));
            }
            None => None,
        };
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| IdpError::Task("no Tokio runtime".into()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                providers,
                public_url,
                flow_lifetime: config.flow_lifetime,
                clock,
                token_key,
                handle,
            }),
        })
    }

    /// Every provider, in id order.
    pub(crate) fn providers(&self) -> &[Arc<Provider>] {
        &self.inner.providers
    }

    /// The provider `id`.
    pub(crate) fn provider(&self, id: &str) -> Option<&Arc<Provider>> {
        self.inner.providers.iter().find(|p| p.id == id)
    }

    fn provider_or_404(&self, id: &str) -> Result<Arc<Provider>, IdpError> {
        self.provider(id)
            .cloned()
            .ok_or_else(|| IdpError::NotFound("No such sign-in provider.".to_owned()))
    }

    /// The redirect URI registered at the upstream for provider `id`.
    pub(crate) fn redirect_uri(&self, id: &str) -> String {
        let base = self.inner.public_url.as_str().trim_end_matches('/');
        format!("{base}/upstream/{id}/callback")
    }

    /// Runs `work` on the service's runtime.
    async fn on_runtime<T: Send + 'static>(
        &self,
        work: impl Future<Output = Result<T, IdpError>> + Send + 'static,
    ) -> Result<T, IdpError> {
        self.inner
            .handle
            .spawn(work)
            .await
            .map_err(|e| IdpError::Task(format!("upstream call: {e}")))?
    }

    /// Starts a sign-in at provider `id` for the browser whose CSRF cookie is `browser`:
    /// stores the flow and returns the authorization URL to redirect to.
    pub(crate) async fn start(
        &self,
        id: &str,
        browser: &str,
        purpose: Purpose<'_>,
    ) -> Result<String, IdpError> {
        let provider = self.provider_or_404(id)?;
        let state = random_b64(32)?;
        let nonce = random_b64(32)?;
        let verifier = random_b64(48)?;
        let redirect_uri = self.redirect_uri(id);
        let authorization_endpoint = match provider.config.kind {
            ProviderKind::Github => github::authorization_endpoint(&provider.config),
            ProviderKind::Oidc | ProviderKind::Google => {
                let p = Arc::clone(&provider);
                self.on_runtime(
                    async move { p.discovery().await.map(|d| d.authorization_endpoint) },
                )
                .await?
            }
        };
        let mut url = Url::parse(&authorization_endpoint)
            .map_err(|_| failed("The provider's authorization endpoint is not a URL."))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &provider.config.client_id)
                .append_pair("redirect_uri", &redirect_uri)
                .append_pair("scope", &provider.config.scopes().join(" "))
                .append_pair("state", &state)
                .append_pair("code_challenge", &s256(&verifier))
                .append_pair("code_challenge_method", "S256");
            if provider.config.kind != ProviderKind::Github {
                q.append_pair("nonce", &nonce);
            }
        }
        let now = self.inner.clock.unix();
        let (login_challenge, link_user_id) = match purpose {
            Purpose::Login(c) => (Some(c.to_owned()), None),
            Purpose::Link(u) => (None, Some(u.to_owned())),
        };
        repo::insert_flow(
            &self.inner.db,
            &FlowRow {
                state_hash: digest_hex(&state),
                provider: id.to_owned(),
                browser_hash: digest_hex(browser),
                login_challenge,
                link_user_id,
                nonce,
                pkce_verifier: verifier,
                created_at: now,
                expires_at: now + secs(self.inner.flow_lifetime),
            },
        )
        .await?;
        metrics::counter!("idp_upstream_logins_total", "provider" => id.to_owned(), "result" => "started")
            .increment(1);
        Ok(url.into())
    }

    /// Handles the callback of provider `id` (see the module docs). Every failure leaves
    /// nothing behind but the consumed flow.
    pub(crate) async fn finish(
        &self,
        id: &str,
        browser: Option<&str>,
        callback: Callback,
    ) -> Result<Finished, IdpError> {
        let provider = self.provider_or_404(id)?;
        let expired = || {
            IdpError::Invalid(
                "This sign-in attempt is not valid or has expired. Go back to the application and start again."
                    .to_owned(),
            )
        };
        let Some(state) = callback
            .state
            .as_deref()
            .filter(|s| !s.is_empty() && s.len() <= 256)
        else {
            return Err(expired());
        };
        let now = self.inner.clock.unix();
        let Some(flow) = repo::take_flow(&self.inner.db, &digest_hex(state), now).await? else {
            return Err(expired());
        };
        let same_browser = browser.is_some_and(|b| {
            domain::constant_time_eq(digest_hex(b).as_bytes(), flow.browser_hash.as_bytes())
        });
        if flow.provider != id || !same_browser {
            return Err(expired());
        }
        let result = self.exchange(&provider, &flow, callback).await;
        let label = if result.is_ok() { "success" } else { "failure" };
        metrics::counter!("idp_upstream_logins_total", "provider" => id.to_owned(), "result" => label)
            .increment(1);
        let (profile, tokens) = result?;
        let tokens = if provider.config.store_tokens {
            Some(self.seal(id, &profile.subject, &tokens)?)
        } else {
            None
        };
        match (flow.login_challenge, flow.link_user_id) {
            (_, Some(user_id)) => Ok(Finished::Link {
                provider: id.to_owned(),
                profile,
                user_id,
                tokens,
            }),
            (Some(challenge), None) => Ok(Finished::Login {
                provider: id.to_owned(),
                profile,
                challenge,
                tokens,
            }),
            (None, None) => Err(expired()),
        }
    }

    /// Seals `tokens` of the identity `(provider, subject)` with `upstreams.token_key`.
    #[tracing::instrument(skip_all)]
    fn seal(
        &self,
        provider: &str,
        subject: &str,
        tokens: &UpstreamTokens,
    ) -> Result<SealedTokens, IdpError> {
        let key =
            self.inner.token_key.as_ref().ok_or_else(|| {
                IdpError::Task("store_tokens without upstreams.token_key".to_owned())
            })?;
        let plain = serde_json::to_vec(tokens)
            .map_err(|e| IdpError::Task(format!("upstream tokens: {e}")))?;
        key.seal_secret(&token_context(provider, subject), &plain)
            .map(SealedTokens)
            .map_err(|_| IdpError::Task("sealing upstream tokens failed".to_owned()))
    }

    async fn exchange(
        &self,
        provider: &Arc<Provider>,
        flow: &FlowRow,
        callback: Callback,
    ) -> Result<(UpstreamProfile, UpstreamTokens), IdpError> {
        if let Some(error) = callback.error.as_deref() {
            tracing::info!(provider = %provider.id, error, "the upstream answered with an error");
            let message = if error == "access_denied" {
                format!(
                    "Sign-in with {} was cancelled or refused.",
                    provider.config.display_name
                )
            } else {
                format!(
                    "{} could not sign you in (error: {}).",
                    provider.config.display_name,
                    error
                        .chars()
                        .filter(|c| c.is_ascii_graphic())
                        .take(64)
                        .collect::<String>()
                )
            };
            return Err(failed(message));
        }
        let Some(code) = callback.code.filter(|c| !c.is_empty() && c.len() <= 2048) else {
            return Err(failed("The provider sent no authorization code."));
        };
        let p = Arc::clone(provider);
        let redirect_uri = self.redirect_uri(&provider.id);
        let verifier = flow.pkce_verifier.clone();
        let nonce = flow.nonce.clone();
        let iss = callback.iss;
        let now = self.inner.clock.unix();
        self.on_runtime(async move {
            match p.config.kind {
                ProviderKind::Github => {
                    github::exchange(&p.config, &p.http, &code, &redirect_uri, &verifier, now).await
                }
                ProviderKind::Oidc | ProviderKind::Google => {
                    p.oidc_exchange(&code, &redirect_uri, &verifier, &nonce, iss.as_deref(), now)
                        .await
                }
            }
        })
        .await
    }

    /// The linked identity `(provider, subject)`, touched as used now; `tokens` (from this
    /// sign-in, `store_tokens` only) replace the stored ones.
    pub(crate) async fn linked(
        &self,
        provider: &str,
        subject: &str,
        tokens: Option<&SealedTokens>,
    ) -> Result<Option<IdentityRow>, IdpError> {
        let found = repo::find_identity(&self.inner.db, provider, subject).await?;
        if found.is_some() {
            repo::touch_identity(
                &self.inner.db,
                provider,
                subject,
                self.inner.clock.unix(),
                tokens.map(|t| t.0.as_str()),
            )
            .await?;
        }
        Ok(found)
    }

    /// Links `profile` at `provider` to `user_id`. [`IdpError::Conflict`] when that upstream
    /// account is linked already (to this user or another).
    pub(crate) async fn link(
        &self,
        provider: &str,
        profile: &UpstreamProfile,
        user_id: &str,
        tokens: Option<&SealedTokens>,
    ) -> Result<(), IdpError> {
        let now = self.inner.clock.unix();
        repo::insert_identity(
            &self.inner.db,
            &IdentityRow {
                provider: provider.to_owned(),
                subject: profile.subject.clone(),
                user_id: user_id.to_owned(),
                email: profile.email.clone(),
                created_at: now,
                last_login_at: now,
            },
            tokens.map(|t| t.0.as_str()),
        )
        .await
        .map_err(|e| {
            if e.is_unique_violation() {
                IdpError::Conflict("upstream identity already linked".to_owned())
            } else {
                e.into()
            }
        })
    }

    /// The identities linked to `user_id`.
    pub(crate) async fn identities_of(&self, user_id: &str) -> Result<Vec<IdentityRow>, IdpError> {
        Ok(repo::identities_of(&self.inner.db, user_id).await?)
    }

    /// Unlinks, unless it is the user's last way to sign in.
    pub(crate) async fn unlink(
        &self,
        user_id: &str,
        provider: &str,
        subject: &str,
    ) -> Result<repo::Unlinked, IdpError> {
        Ok(repo::unlink(&self.inner.db, user_id, provider, subject).await?)
    }

    /// Stores a first login waiting for its setup step; returns the random id the browser
    /// carries to the setup page.
    pub(crate) async fn park(
        &self,
        provider: &str,
        profile: &UpstreamProfile,
        browser: &str,
        challenge: &str,
        tokens: Option<SealedTokens>,
    ) -> Result<String, IdpError> {
        let id = random_b64(32)?;
        let now = self.inner.clock.unix();
        let claims = serde_json::to_string(profile)
            .map_err(|e| IdpError::Task(format!("pending claims: {e}")))?;
        repo::insert_pending(
            &self.inner.db,
            &PendingRow {
                id_hash: digest_hex(&id),
                provider: provider.to_owned(),
                subject: profile.subject.clone(),
                browser_hash: digest_hex(browser),
                login_challenge: challenge.to_owned(),
                claims,
                created_at: now,
                expires_at: now + secs(self.inner.flow_lifetime),
                tokens: tokens.map(|t| t.0),
            },
        )
        .await?;
        Ok(id)
    }

    /// The pending first login `id` of the browser `browser`, with its profile.
    pub(crate) async fn pending(
        &self,
        id: &str,
        browser: Option<&str>,
    ) -> Result<(PendingRow, UpstreamProfile), IdpError> {
        let gone = || {
            IdpError::Gone("This sign-in attempt has expired or was already completed.".to_owned())
        };
        if id.is_empty() || id.len() > 128 {
            return Err(gone());
        }
        let row = repo::find_pending(&self.inner.db, &digest_hex(id), self.inner.clock.unix())
            .await?
            .ok_or_else(gone)?;
        let same_browser = browser.is_some_and(|b| {
            domain::constant_time_eq(digest_hex(b).as_bytes(), row.browser_hash.as_bytes())
        });
        if !same_browser {
            return Err(gone());
        }
        let profile: UpstreamProfile = serde_json::from_str(&row.claims)
            .map_err(|e| IdpError::Task(format!("pending claims: {e}")))?;
        Ok((row, profile))
    }

    /// Completes a pending first login (see [`repo::complete`]). `Ok(false)` when it was
    /// completed already; [`IdpError::Conflict`] when a username, email or the identity is
    /// taken meanwhile (nothing is changed then).
    pub(crate) async fn complete(
        &self,
        pending: &PendingRow,
        completion: repo::Completion<'_>,
        email: Option<String>,
    ) -> Result<bool, IdpError> {
        // account page: a username its former owner changed away from stays theirs a while.
        if let repo::Completion::NewUser(user) = &completion {
            let now = self.inner.clock.unix();
            if crate::account::repo::username_held(&self.inner.db, &user.username, None, now)
                .await?
            {
                return Err(IdpError::Conflict(
                    "username, email or identity already in use".to_owned(),
                ));
            }
        }
        repo::complete(
            &self.inner.db,
            pending,
            completion,
            email,
            self.inner.clock.unix(),
        )
        .await
        .map_err(|e| {
            if e.is_unique_violation() {
                IdpError::Conflict("username, email or identity already in use".to_owned())
            } else {
                e.into()
            }
        })
    }

    /// Purges expired flows and pending logins every `every` until shutdown.
    pub(crate) fn spawn_upkeep(
        &self,
        every: Duration,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) {
        let this = self.clone();
        runtime::spawn_periodic(
            "upstream flow upkeep",
            every,
            runtime::FirstRun::AfterInterval,
            shutdown,
            move || {
                let this = this.clone();
                async move {
                    match repo::purge(&this.inner.db, this.inner.clock.unix()).await {
                        Ok(n) if n > 0 => {
                            tracing::debug!(purged = n, "expired upstream flows purged")
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "purging upstream flows failed"),
                    }
                }
            },
        );
    }
}

/// What the upstream sent back to the callback (RFC 6749 §4.1.2, §4.1.2.1; RFC 9207 §2).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Callback {
    /// The `state` idp sent.
    pub(crate) state: Option<String>,
    /// The authorization code.
    pub(crate) code: Option<String>,
    /// An error code instead of a code.
    pub(crate) error: Option<String>,
    /// The issuer identifier (RFC 9207).
    pub(crate) iss: Option<String>,
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}
