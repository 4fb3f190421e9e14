//! The `authz.v1.LoginFlow` operations: idp reads and answers the login and consent
//! challenges of pending requests, each challenge at most once and before it expires.

use std::sync::Arc;

use domain::{ErrorCode, Prompt, ScopeSet, with_query};
use tracing::instrument;

use super::error::FlowError;
use super::model::{Login, PendingRequest};
use super::repo::{self, Pending, StoredLogin, stage};
use super::service::{AUTH_TIME_SKEW, Flow};
use crate::clients::Client;
use crate::tokens::lookup_key;

impl Flow {
    async fn pending_by_challenge(
        &self,
        challenge: &str,
        at: &str,
    ) -> Result<(Pending, Arc<Client>), FlowError> {
        if challenge.is_empty() {
            return Err(FlowError::Invalid("the challenge is required".into()));
        }
        let now = self.tokens.now();
        let mut row = repo::request_by_challenge(&self.db, &lookup_key(challenge), at, now)
            .await?
            .ok_or(FlowError::NotFound)?;
        // The browser reached idp's page: the request gets its full lifetime, which a
        // request nobody followed up never gets (`authorize.unresumed_ttl`).
        let full = row.created_at.saturating_add(self.settings.request_ttl);
        if row.expires_at < full {
            repo::extend_request(&self.db, &row.id, full).await?;
            row.expires_at = full;
        }
        let client = self
            .clients
            .find(&row.client_id)
            .await?
            .ok_or(FlowError::NotFound)?;
        Ok((row, client))
    }

    /// `GetLoginRequest`: the pending request behind an unanswered, unexpired login
    /// challenge.
    pub(crate) async fn login_request(&self, challenge: &str) -> Result<PendingRequest, FlowError> {
        let (row, client) = self.pending_by_challenge(challenge, stage::LOGIN).await?;
        Ok(PendingRequest {
            row,
            client,
            remembered: ScopeSet::default(),
        })
    }

    /// `GetConsentRequest`: the pending request behind an unanswered, unexpired consent
    /// challenge, with what the user granted this client before.
    pub(crate) async fn consent_request(
        &self,
        challenge: &str,
    ) -> Result<PendingRequest, FlowError> {
        let (row, client) = self.pending_by_challenge(challenge, stage::CONSENT).await?;
        let remembered = self
            .remembered(
                row.login.as_ref().map_or("", |l| l.subject.as_str()),
                &row.client_id,
            )
            .await?;
        Ok(PendingRequest {
            row,
            client,
            remembered,
        })
    }

    fn resume_url(&self, id: &str) -> String {
        with_query(&self.settings.resume_url, &[("request", id)])
    }

    /// `AcceptLogin`: records who logged in, once per challenge. The authentication must
    /// satisfy the request: after it was made for `prompt=login`, within `max_age`
    /// seconds before it otherwise (OpenID Connect Core §3.1.2.1).
    #[instrument(skip_all)]
    pub(crate) async fn accept_login(
        &self,
        challenge: &str,
        login: Login,
    ) -> Result<String, FlowError> {
        let now = self.tokens.now();
        login.check(now)?;
        let (row, _) = self.pending_by_challenge(challenge, stage::LOGIN).await?;
        let prompt = Prompt::parse(Some(&row.request.prompt)).unwrap_or_default();
        if !domain::authentication_is_fresh_enough(
            prompt,
            row.request.max_age,
            row.created_at,
            login.auth_time,
        ) {
            return Err(FlowError::Precondition(
                "the request needs a fresh authentication (prompt=login or max_age): auth_time is too old".into(),
            ));
        }
        let accepted = repo::accept_login(
            &self.db,
            &lookup_key(challenge),
            now,
            &StoredLogin {
                amr: login.amr.join(" "),
                subject: login.subject,
                idp_session_id: login.idp_session_id,
                auth_time: login.auth_time,
                acr: login.acr,
                sid: None,
            },
        )
        .await?;
        if !accepted {
            return Err(FlowError::NotFound);
        }
        Ok(self.resume_url(&row.id))
    }

    /// `RejectLogin` / `RejectConsent`: the client will get `error` (an OAuth or OpenID
    /// Connect authorization error code; `access_denied` when empty).
    #[instrument(skip_all)]
    pub(crate) async fn reject(
        &self,
        challenge: &str,
        consent: bool,
        error: &str,
        description: &str,
    ) -> Result<String, FlowError> {
        let code = if error.is_empty() {
            ErrorCode::AccessDenied
        } else {
            error
                .parse::<ErrorCode>()
                .ok()
                .filter(|c| REJECT_CODES.contains(c))
                .ok_or_else(|| {
                    FlowError::Invalid(format!(
                        "error must be one of: {}",
                        REJECT_CODES
                            .iter()
                            .map(|c| c.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?
        };
        let printable = description
            .chars()
            .all(|c| c == ' ' || (c.is_ascii_graphic() && c != '"' && c != '\\'));
        if description.len() > 512 || !printable {
            return Err(FlowError::Invalid(
                "error_description must be at most 512 printable ASCII characters without quotes or backslashes (RFC 6749 §4.1.2.1)".into(),
            ));
        }
        let at = if consent {
            stage::CONSENT
        } else {
            stage::LOGIN
        };
        let (row, _) = self.pending_by_challenge(challenge, at).await?;
        let now = self.tokens.now();
        if !repo::reject(
            &self.db,
            &lookup_key(challenge),
            at,
            now,
            code.as_str(),
            description,
        )
        .await?
        {
            return Err(FlowError::NotFound);
        }
        Ok(self.resume_url(&row.id))
    }

    /// `AcceptConsent`: the granted scopes (a subset of the requested ones), remembered for
    /// later requests of this client when `remember` is set.
    #[instrument(skip_all)]
    pub(crate) async fn accept_consent(
        &self,
        challenge: &str,
        granted: &[String],
        remember: bool,
    ) -> Result<String, FlowError> {
        let granted = ScopeSet::parse(&granted.join(" "))
            .map_err(|e| FlowError::Invalid(format!("granted_scopes: {e}")))?;
        let (row, _) = self.pending_by_challenge(challenge, stage::CONSENT).await?;
        let requested = ScopeSet::parse(&row.request.scope).unwrap_or_default();
        if !granted.is_subset(&requested) {
            return Err(FlowError::Invalid(format!(
                "granted_scopes must be a subset of the requested scopes; not requested: {}",
                granted.difference(&requested)
            )));
        }
        let subject = row
            .login
            .as_ref()
            .map(|l| l.subject.clone())
            .unwrap_or_default();
        let now = self.tokens.now();
        let accepted = repo::accept_consent(
            &self.db,
            &lookup_key(challenge),
            now,
            &granted,
            remember.then_some((subject.as_str(), row.client_id.as_str())),
        )
        .await?;
        if !accepted {
            return Err(FlowError::NotFound);
        }
        Ok(self.resume_url(&row.id))
    }
}

/// The errors idp may end a flow with (RFC 6749 §4.1.2.1, OpenID Connect Core §3.1.2.6).
const REJECT_CODES: &[ErrorCode] = &[
    ErrorCode::AccessDenied,
    ErrorCode::LoginRequired,
    ErrorCode::ConsentRequired,
    ErrorCode::InteractionRequired,
    ErrorCode::AccountSelectionRequired,
    ErrorCode::TemporarilyUnavailable,
];

impl Login {
    /// What idp reports about a login must be well-formed (shared by `AcceptLogin` and the
    /// device grant's `AcceptDevice`): a subject and a session id of 1 to 255 characters,
    /// the Unix time of the authentication (not in the future beyond the clock skew), `amr`
    /// words and one `acr` word.
    pub(crate) fn check(&self, now: i64) -> Result<(), FlowError> {
        if self.subject.is_empty() || self.subject.len() > 255 {
            return Err(FlowError::Invalid(
                "subject must be 1 to 255 characters".into(),
            ));
        }
        if self.idp_session_id.is_empty() || self.idp_session_id.len() > 255 {
            return Err(FlowError::Invalid(
                "session_id must be 1 to 255 characters".into(),
            ));
        }
        if self.auth_time <= 0 || self.auth_time > now + AUTH_TIME_SKEW {
            return Err(FlowError::Invalid(
                "auth_time must be the Unix time of the authentication".into(),
            ));
        }
        if self
            .amr
            .iter()
            .any(|m| m.is_empty() || m.contains(' ') || m.len() > 64)
        {
            return Err(FlowError::Invalid(
                "amr values must be non-empty words".into(),
            ));
        }
        if self.acr.contains(' ') || self.acr.len() > 255 {
            return Err(FlowError::Invalid("acr must be one word".into()));
        }
        Ok(())
    }
}
