//! Token exchange (RFC 8693): a client trades an access token this server issued (the
//! subject token) for a new access token for another audience, with fewer or equal scopes,
//! naming itself as the actor (delegation, §1.1) or, where its policy allows, without an
//! actor (impersonation).
//!
//! Every refusal follows §2.2.2: an invalid subject or actor token, or one the policy does
//! not accept (impersonation not allowed, an actor token of another client), is
//! `invalid_request`; an audience or resource the client may not target is
//! `invalid_target`; more scopes than allowed is `invalid_scope` (RFC 6749 §5.2).

use domain::ScopeSet;
use serde_json::{Map, Value};
use tracing::instrument;

use super::TokenError;
use super::model::{Exchanged, Introspection, IssuedToken};
use super::service::Tokens;
use crate::clients::Client;

/// RFC 8693 §3: the token type identifier of an access token.
pub(crate) const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// RFC 8693 §3: a JWT (accepted for subject and actor tokens that are our JWT access
/// tokens).
pub(crate) const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

/// Deepest `act` nesting an exchanged token may carry (RFC 8693 §4.1 allows chains; a
/// bound keeps tokens small).
const MAX_ACTORS: usize = 8;

/// A validated token exchange request (RFC 8693 §2.1).
pub(crate) struct ExchangeRequest<'a> {
    /// `subject_token`: an access token of this server.
    pub(crate) subject_token: &'a str,
    /// `actor_token`: an access token of this server issued to the requesting client.
    pub(crate) actor_token: Option<&'a str>,
    /// `audience` and `resource` values together (compared exactly with the policy).
    pub(crate) targets: Vec<String>,
    /// `scope`, when given.
    pub(crate) scope: Option<ScopeSet>,
}

impl Tokens {
    /// RFC 8693 §2: validates the subject (and actor) token, applies `client`'s
    /// [`crate::clients::TokenExchangePolicy`] and issues an access token for the
    /// requested audiences in the client's format, with `sub` of the subject token,
    /// `client_id` of the requesting client (§4.3), an `act` claim naming the actor with
    /// the subject token's own `act` nested inside (§4.1), and an expiry no later than the
    /// subject token's.
    #[instrument(skip_all, fields(client_id = %client.id))]
    pub(crate) async fn exchange(
        &self,
        client: &Client,
        request: ExchangeRequest<'_>,
    ) -> Result<IssuedToken, TokenError> {
        let policy = &client.token_exchange;
        let subject = self.introspect(request.subject_token).await?;
        if !subject.active {
            return Err(TokenError::InvalidRequest(
                "the subject_token is not an active access token of this server".into(),
            ));
        }
        let act = match request.actor_token {
            Some(token) => {
                let actor = self.introspect(token).await?;
                if !actor.active {
                    return Err(TokenError::InvalidRequest(
                        "the actor_token is not an active access token of this server".into(),
                    ));
                }
                if actor.client_id.as_deref() != Some(client.id.as_str()) {
                    return Err(TokenError::InvalidRequest(
                        "the actor_token was not issued to this client".into(),
                    ));
                }
                Some(delegation(&actor, subject.act.as_ref())?)
            }
            None if policy.impersonate => subject.act.clone(),
            None => {
                return Err(TokenError::InvalidRequest(
                    "this client may not impersonate: an actor_token is required".into(),
                ));
            }
        };
        let targets = if request.targets.is_empty() {
            match policy.audiences.first() {
                Some(a) => vec![a.clone()],
                None => {
                    return Err(TokenError::InvalidTarget(
                        "this client may not exchange tokens for any audience".into(),
                    ));
                }
            }
        } else {
            request.targets
        };
        if let Some(t) = targets.iter().find(|t| !policy.audiences.contains(t)) {
            return Err(TokenError::InvalidTarget(format!(
                "this client may not exchange tokens for {t}"
            )));
        }
        let held = ScopeSet::parse(subject.scope.as_deref().unwrap_or_default())
            .map_err(|e| TokenError::InvalidRequest(e.to_string()))?;
        let scope = match request.scope {
            Some(asked) => {
                if !asked.is_subset(&held) {
                    return Err(TokenError::InvalidScope(format!(
                        "more than the subject_token carries: {}",
                        asked.difference(&held)
                    )));
                }
                if !asked.is_subset(&policy.scopes) {
                    return Err(TokenError::InvalidScope(format!(
                        "not allowed for this client in a token exchange: {}",
                        asked.difference(&policy.scopes)
                    )));
                }
                asked
            }
            None => held.intersection(&policy.scopes),
        };
        let sub = subject.sub.clone().unwrap_or_default();
        let exchanged = Exchanged {
            act,
            not_after: subject.exp,
        };
        Ok(self
            .issue_exchanged(client, &sub, scope, targets, &exchanged)
            .await?)
    }
}

/// RFC 8693 §4.1: the `act` claim naming `actor` as the current actor, with the subject
/// token's chain (`prior`) nested inside.
fn delegation(actor: &Introspection, prior: Option<&Value>) -> Result<Value, TokenError> {
    let mut act = Map::new();
    act.insert(
        "sub".into(),
        Value::String(actor.sub.clone().unwrap_or_default()),
    );
    if let Some(prior) = prior {
        if depth(prior) >= MAX_ACTORS {
            return Err(TokenError::InvalidRequest(format!(
                "the delegation chain is longer than {MAX_ACTORS} actors"
            )));
        }
        act.insert("act".into(), prior.clone());
    }
    Ok(Value::Object(act))
}

/// How many actors an `act` claim names.
fn depth(act: &Value) -> usize {
    let mut n = 0;
    let mut next = Some(act);
    while let Some(Value::Object(a)) = next {
        n += 1;
        next = a.get("act");
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_actor_wraps_the_prior_chain() {
        let actor = Introspection {
            active: true,
            sub: Some("rs".into()),
            ..Introspection::default()
        };
        assert_eq!(delegation(&actor, None).ok(), Some(json!({"sub": "rs"})));
        let prior = json!({"sub": "gateway", "act": {"sub": "edge"}});
        assert_eq!(
            delegation(&actor, Some(&prior)).ok(),
            Some(json!({"sub": "rs", "act": {"sub": "gateway", "act": {"sub": "edge"}}}))
        );
        let mut long = json!({"sub": "a0"});
        for i in 1..MAX_ACTORS {
            long = json!({"sub": format!("a{i}"), "act": long});
        }
        assert_eq!(depth(&long), MAX_ACTORS);
        assert!(delegation(&actor, Some(&long)).is_err());
    }
}
