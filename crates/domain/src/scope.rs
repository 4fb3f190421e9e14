use std::collections::BTreeSet;
use std::fmt;

/// One scope token (RFC 6749 §3.3: `%x21 / %x23-5B / %x5D-7E`, at least one character).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Scope(String);

/// A malformed scope string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed scope {0:?}")]
pub struct ScopeError(pub String);

impl Scope {
    /// Parses one scope token.
    pub fn parse(s: &str) -> Result<Self, ScopeError> {
        let valid = !s.is_empty()
            && s.bytes()
                .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
        if valid {
            Ok(Self(s.to_owned()))
        } else {
            Err(ScopeError(s.to_owned()))
        }
    }

    /// The token.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A set of scopes, ordered, written space-delimited (RFC 6749 §3.3).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeSet(BTreeSet<Scope>);

impl ScopeSet {
    /// Parses a space-delimited list; repeated scopes collapse; empty input is the empty
    /// set. Only single spaces separate (RFC 6749 §3.3); anything else is malformed.
    pub fn parse(s: &str) -> Result<Self, ScopeError> {
        if s.is_empty() {
            return Ok(Self::default());
        }
        s.split(' ')
            .map(Scope::parse)
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// Whether every scope of `self` is in `allowed`.
    pub fn is_subset(&self, allowed: &Self) -> bool {
        self.0.is_subset(&allowed.0)
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `scope` is in the set.
    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s.as_str() == scope)
    }

    /// The scopes, in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(Scope::as_str)
    }

    /// Scopes in both `self` and `other`.
    pub fn intersection(&self, other: &Self) -> Self {
        Self(self.0.intersection(&other.0).cloned().collect())
    }

    /// Scopes of `self` not in `allowed`.
    pub fn difference(&self, allowed: &Self) -> Self {
        Self(self.0.difference(&allowed.0).cloned().collect())
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for s in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(s.as_str())?;
            first = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_orders() {
        let s = ScopeSet::parse("b a b").unwrap();
        assert_eq!(s.to_string(), "a b");
        assert!(ScopeSet::parse("").unwrap().is_empty());
        assert!(ScopeSet::parse("a  b").is_err(), "double space");
        assert!(ScopeSet::parse("a\"b").is_err(), "quote");
        assert!(ScopeSet::parse("a\\b").is_err(), "backslash");
        assert!(ScopeSet::parse(" a").is_err());
        assert!(ScopeSet::parse("items:read api:write").is_ok());
    }

    #[test]
    fn subsets() {
        let allowed = ScopeSet::parse("a b c").unwrap();
        assert!(ScopeSet::parse("a c").unwrap().is_subset(&allowed));
        let asked = ScopeSet::parse("a d").unwrap();
        assert!(!asked.is_subset(&allowed));
        assert_eq!(asked.difference(&allowed).to_string(), "d");
    }
}
