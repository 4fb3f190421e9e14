//! The verified caller.

use std::collections::BTreeSet;
use std::ops::Deref;
use std::sync::Arc;

use serde_json::{Map, Value};

/// Who a verified access token speaks for. Only ever built from a token whose signature and
/// claims were checked, or that the authorization server called active. Its fields are
/// read through [`Identity`] (`principal.sub`, `principal.scopes`, …); clones share them,
/// so handing the principal to handlers and request extensions copies nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal(Arc<Identity>);

impl Principal {
    pub(crate) fn new(identity: Identity) -> Self {
        Self(Arc::new(identity))
    }
}

impl Deref for Principal {
    type Target = Identity;

    fn deref(&self) -> &Identity {
        &self.0
    }
}

/// What a [`Principal`] holds.
#[derive(Debug, PartialEq)]
pub struct Identity {
    /// `sub`: the resource owner, or the client itself for `client_credentials`.
    pub sub: String,
    /// `client_id`: the client the token was issued to (RFC 9068 §2.2).
    pub client_id: String,
    /// The granted scopes (`scope`, space-separated, RFC 9068 §2.2.3).
    pub scopes: BTreeSet<String>,
    /// `aud`: the audiences, one of which is this resource.
    pub aud: Vec<String>,
    /// `exp`, Unix seconds.
    pub exp: i64,
    /// Every claim of the token (JWT payload, or the introspection response of RFC 7662
    /// §2.2), for the handler's own decisions.
    pub claims: Map<String, Value>,
    /// The delegation chain of an exchanged token (RFC 8693 §4.1 `act`): the current actor
    /// first, then each prior actor. Empty when the token was not issued by delegation:
    /// then `sub` alone speaks.
    pub act: Vec<Actor>,
}

/// One actor of a delegation chain (RFC 8693 §4.1): the party acting for `sub`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Actor {
    /// The actor's `sub` (for a client acting with its own credentials, its client id).
    pub sub: String,
    /// The actor's `client_id`, when the claim names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

/// The chain of an `act` claim (RFC 8693 §4.1), outermost (current) actor first. Only
/// `sub` and `client_id` are read; an actor without `sub` ends the chain, as does a value
/// that is not an object.
pub(crate) fn actors(value: Option<&Value>) -> Vec<Actor> {
    let mut chain = Vec::new();
    let mut next = value;
    while let Some(Value::Object(act)) = next {
        let Some(sub) = act.get("sub").and_then(Value::as_str) else {
            break;
        };
        chain.push(Actor {
            sub: sub.to_owned(),
            client_id: act
                .get("client_id")
                .and_then(Value::as_str)
                .map(str::to_owned),
        });
        next = act.get("act");
    }
    chain
}

impl Identity {
    /// Whether `scope` was granted.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.contains(scope)
    }

    /// Whether every one of `required` was granted.
    pub fn has_scopes<S: AsRef<str>>(&self, required: &[S]) -> bool {
        required.iter().all(|s| self.has_scope(s.as_ref()))
    }
}

/// Splits a `scope` value (RFC 6749 §3.3) into its tokens.
pub(crate) fn parse_scopes(raw: &str) -> BTreeSet<String> {
    raw.split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `aud` as a list: a single string or an array of strings (RFC 7519 §4.1.3).
pub(crate) fn audiences(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// A NumericDate (RFC 7519 §2): integer or fractional seconds.
pub(crate) fn numeric_date(value: Option<&Value>) -> Option<i64> {
    let value = value?;
    value
        .as_i64()
        .or_else(|| value.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn claim_shapes() {
        assert_eq!(
            parse_scopes(" items:read  items:write "),
            BTreeSet::from(["items:read".to_owned(), "items:write".to_owned()])
        );
        assert_eq!(audiences(Some(&json!("a"))), vec!["a"]);
        assert_eq!(audiences(Some(&json!(["a", 1, "b"]))), vec!["a", "b"]);
        assert!(audiences(Some(&json!(7))).is_empty());
        assert_eq!(numeric_date(Some(&json!(10))), Some(10));
        assert_eq!(numeric_date(Some(&json!(10.9))), Some(10));
        assert_eq!(numeric_date(Some(&json!("10"))), None);
        assert_eq!(numeric_date(None), None);
        let chain = actors(Some(
            &json!({"sub": "rs", "act": {"sub": "gw", "client_id": "gw"}}),
        ));
        assert_eq!(
            chain,
            vec![
                Actor {
                    sub: "rs".into(),
                    client_id: None
                },
                Actor {
                    sub: "gw".into(),
                    client_id: Some("gw".into())
                }
            ]
        );
        assert!(actors(None).is_empty());
        assert!(actors(Some(&json!("rs"))).is_empty());
        assert!(actors(Some(&json!({"client_id": "x"}))).is_empty());
    }
}
