//! `/authorize/resume`: the browser is back from idp; the request continues only for the
//! browser that started it.

use std::sync::Arc;

use domain::{ErrorCode, Prompt, ResponseMode, ScopeSet, constant_time_eq, with_query};
use tracing::instrument;

use super::error::{AuthorizeError, ResumeError};
use super::model::{Outcome, ReplyTo, SessionCookie, Step};
use super::repo::{self, Pending, SessionRow, StoredLogin, stage};
use super::service::{CodeInput, Consent, Flow};
use crate::clients::Client;
use crate::error::Failure;
use crate::tokens::lookup_key;

impl Flow {
    /// The pending request `id` if the flow cookie proves this browser started it.
    async fn own_request(
        &self,
        id: &str,
        flow_cookie: Option<&str>,
    ) -> Result<(Pending, Arc<Client>), ResumeError> {
        let row = repo::request_by_id(&self.db, id)
            .await?
            .ok_or(ResumeError::Refused(
                "This sign-in request is unknown or already finished. Go back to the application and start again.",
            ))?;
        let presented = flow_cookie.map(lookup_key).unwrap_or_default();
        if !constant_time_eq(presented.as_bytes(), row.browser_hash.as_bytes()) {
            return Err(ResumeError::Refused(
                "This sign-in was started in another browser (or its cookie is gone). Go back to the application and start again.",
            ));
        }
        if row.expires_at <= self.tokens.now() {
            return Err(ResumeError::Refused(
                "This sign-in request has expired. Go back to the application and start again.",
            ));
        }
        let client = self
            .clients
            .find(&row.client_id)
            .await?
            .ok_or(ResumeError::Refused("The application no longer exists."))?;
        Ok((row, client))
    }

    /// `/authorize/resume`: the browser is back from idp. After an accepted login the
    /// authz session is created (or refreshed) and consent decided; after an accepted
    /// consent the code is issued; after a rejection the client gets idp's error. Each
    /// stage is finished by a conditional update, so a request yields at most one code.
    #[instrument(skip_all)]
    pub(crate) async fn resume(
        &self,
        id: &str,
        flow_cookie: Option<&str>,
        session_cookie: Option<&str>,
    ) -> Result<(ReplyTo, Outcome), ResumeError> {
        let (row, client) = self.own_request(id, flow_cookie).await?;
        let reply_to = ReplyTo {
            redirect_uri: row.request.redirect_uri.clone(),
            mode: if row.request.response_mode == ResponseMode::FormPost.as_str() {
                ResponseMode::FormPost
            } else {
                ResponseMode::Query
            },
            state: row.request.state.clone(),
        };
        let outcome = match row.stage.as_str() {
            stage::REJECTED => {
                if !repo::finish(&self.db, &row.id, stage::REJECTED, None).await? {
                    return Err(already_finished());
                }
                let code = row
                    .error
                    .as_deref()
                    .and_then(|e| e.parse().ok())
                    .unwrap_or(ErrorCode::AccessDenied);
                Outcome {
                    step: Err(AuthorizeError::Rejected {
                        code,
                        description: row.error_description.clone().unwrap_or_default(),
                    }),
                    session: SessionCookie::Keep,
                }
            }
            stage::LOGIN_ACCEPTED => self.after_login(&row, &client, session_cookie).await?,
            stage::CONSENT_ACCEPTED => Outcome {
                step: self.after_consent(&row, &client).await?,
                session: SessionCookie::Keep,
            },
            _ => {
                return Err(ResumeError::Refused(
                    "This sign-in is not finished yet. Complete it on the sign-in page.",
                ));
            }
        };
        Ok((reply_to, outcome))
    }

    async fn after_login(
        &self,
        row: &Pending,
        client: &Arc<Client>,
        session_cookie: Option<&str>,
    ) -> Result<Outcome, ResumeError> {
        let Some(login) = &row.login else {
            return Err(Failure::internal("accepted login without subject").into());
        };
        let now = self.tokens.now();
        // The browser's current session: refreshed when it is the same login at idp,
        // replaced otherwise.
        let current = match session_cookie {
            Some(c) => repo::session(&self.db, &lookup_key(c), now).await?,
            None => None,
        };
        let (sid, cookie) = match current {
            Some(s) if s.subject == login.subject && s.idp_session_id == login.idp_session_id => {
                let updated = SessionRow {
                    auth_time: login.auth_time.max(s.auth_time),
                    amr: login.amr.clone(),
                    acr: login.acr.clone(),
                    ..s.clone()
                };
                repo::update_session(&self.db, &updated).await?;
                (s.sid, SessionCookie::Keep)
            }
            other => {
                let value = self.tokens.opaque_token()?;
                let session = SessionRow {
                    session_key: lookup_key(&value),
                    sid: self.tokens.random(16)?,
                    subject: login.subject.clone(),
                    idp_session_id: login.idp_session_id.clone(),
                    auth_time: login.auth_time,
                    amr: login.amr.clone(),
                    acr: login.acr.clone(),
                    created_at: now,
                    expires_at: now + self.settings.session_ttl,
                };
                repo::replace_session(
                    &self.db,
                    &session,
                    other.as_ref().map(|o| o.session_key.as_str()),
                )
                .await?;
                (session.sid, SessionCookie::Set(value))
            }
        };
        let login = StoredLogin {
            sid: Some(sid),
            ..login.clone()
        };
        let requested = ScopeSet::parse(&row.request.scope).unwrap_or_default();
        let prompt = Prompt::parse(Some(&row.request.prompt)).unwrap_or_default();
        let step = match self
            .consent(client, &login.subject, &requested, prompt)
            .await
        {
            Err(e) => Err(e.into()),
            Ok(Consent::Granted(granted)) => {
                self.finish_with_code(row, &login, client, stage::LOGIN_ACCEPTED, &granted)
                    .await?
            }
            Ok(Consent::Ask) => {
                let challenge = self.tokens.opaque_token()?;
                if !repo::to_consent(&self.db, &row.id, now, &lookup_key(&challenge), &login)
                    .await?
                {
                    return Err(already_finished());
                }
                Ok(Step::Idp {
                    location: with_query(
                        &self.settings.consent_url,
                        &[("consent_challenge", &challenge)],
                    ),
                    flow: None,
                })
            }
        };
        Ok(Outcome {
            step,
            session: cookie,
        })
    }

    async fn after_consent(
        &self,
        row: &Pending,
        client: &Arc<Client>,
    ) -> Result<Result<Step, AuthorizeError>, ResumeError> {
        let Some(login) = &row.login else {
            return Err(Failure::internal("accepted consent without login").into());
        };
        let granted =
            ScopeSet::parse(row.granted_scope.as_deref().unwrap_or_default()).unwrap_or_default();
        self.finish_with_code(row, login, client, stage::CONSENT_ACCEPTED, &granted)
            .await
    }

    /// Issues the code of a pending request and deletes the request, in one transaction.
    async fn finish_with_code(
        &self,
        row: &Pending,
        login: &StoredLogin,
        client: &Arc<Client>,
        from_stage: &str,
        granted: &ScopeSet,
    ) -> Result<Result<Step, AuthorizeError>, ResumeError> {
        let (code, code_row) = self.new_code(CodeInput {
            client,
            redirect_uri: &row.request.redirect_uri,
            code_challenge: &row.request.code_challenge,
            nonce: row.request.nonce.as_deref(),
            scope: granted,
            subject: &login.subject,
            sid: login.sid.as_deref().unwrap_or_default(),
            auth_time: login.auth_time,
            amr: &login.amr,
            acr: &login.acr,
        })?;
        if !repo::finish(&self.db, &row.id, from_stage, Some(&code_row)).await? {
            return Err(already_finished());
        }
        Ok(Ok(Step::Code(code)))
    }
}

fn already_finished() -> ResumeError {
    ResumeError::Refused(
        "This sign-in request is already finished. Go back to the application and start again.",
    )
}
