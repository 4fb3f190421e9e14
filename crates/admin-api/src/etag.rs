//! Optimistic concurrency (RFC 9110 §8.8.3 `ETag`, §13.1.1 `If-Match`): a resource's
//! entity tag is its revision, and writes that change it must name the revision they read.

use actix_web::dev::Payload;
use actix_web::http::header::IF_MATCH;
use actix_web::{FromRequest, HttpRequest};
use futures_util::future::{Ready, ready};

use crate::AdminError;

/// The strong entity tag of a resource at `revision`: `"<revision>"`.
pub fn etag(revision: i64) -> String {
    format!("\"{revision}\"")
}

/// The `If-Match` condition of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfMatch {
    /// No `If-Match` header.
    Absent,
    /// `If-Match: *`: any current representation.
    Any,
    /// The listed entity tags (weak ones never match: §13.1.1 uses strong comparison).
    Tags(Vec<String>),
    /// A malformed header (answered 400 by [`IfMatch::require`], after authentication).
    Malformed(String),
}

impl IfMatch {
    /// Parses the header values (`*` or a comma-separated list of entity tags).
    pub fn parse(values: &[&str]) -> Result<Self, AdminError> {
        if values.is_empty() {
            return Ok(Self::Absent);
        }
        let malformed = || AdminError::InvalidHeader {
            field: "If-Match".into(),
            detail: "If-Match must be * or a list of entity tags such as \"3\"".into(),
        };
        let mut tags = Vec::new();
        for value in values {
            for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                if item == "*" {
                    return Ok(Self::Any);
                }
                let opaque = item.strip_prefix("W/").unwrap_or(item);
                if opaque.len() < 2 || !opaque.starts_with('"') || !opaque.ends_with('"') {
                    return Err(malformed());
                }
                if !item.starts_with("W/") {
                    tags.push(item.to_owned());
                }
            }
        }
        if tags.is_empty() && values.iter().all(|v| v.trim().is_empty()) {
            return Err(malformed());
        }
        Ok(Self::Tags(tags))
    }

    /// `Ok` when the condition holds for the current entity tag `current`; 428 without a
    /// condition, 412 when it does not match.
    pub fn require(&self, current: &str) -> Result<(), AdminError> {
        match self {
            Self::Absent => Err(AdminError::PreconditionRequired),
            Self::Any => Ok(()),
            Self::Tags(tags) if tags.iter().any(|t| t == current) => Ok(()),
            Self::Tags(_) => Err(AdminError::PreconditionFailed),
            Self::Malformed(detail) => Err(AdminError::InvalidHeader {
                field: "If-Match".into(),
                detail: detail.clone(),
            }),
        }
    }
}

impl FromRequest for IfMatch {
    type Error = AdminError;
    type Future = Ready<Result<Self, AdminError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let values: Result<Vec<&str>, _> = req
            .headers()
            .get_all(IF_MATCH)
            .map(|v| v.to_str())
            .collect();
        let parsed = match values {
            Ok(values) => Self::parse(&values),
            Err(_) => Err(AdminError::InvalidHeader {
                field: "If-Match".into(),
                detail: "If-Match is not visible ASCII".into(),
            }),
        };
        ready(Ok(parsed.unwrap_or_else(|e| match e {
            AdminError::InvalidHeader { detail, .. } => Self::Malformed(detail),
            other => Self::Malformed(other.to_string()),
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strong_comparison() {
        assert_eq!(IfMatch::parse(&[]).unwrap(), IfMatch::Absent);
        assert!(matches!(
            IfMatch::Absent.require("\"1\""),
            Err(AdminError::PreconditionRequired)
        ));
        assert_eq!(IfMatch::parse(&["*"]).unwrap(), IfMatch::Any);
        let m = IfMatch::parse(&["\"1\", \"2\""]).unwrap();
        assert!(m.require("\"2\"").is_ok());
        assert!(matches!(
            m.require("\"3\""),
            Err(AdminError::PreconditionFailed)
        ));
        let weak = IfMatch::parse(&["W/\"2\""]).unwrap();
        assert!(weak.require("\"2\"").is_err(), "weak tags never match");
        assert!(IfMatch::parse(&["2"]).is_err());
        assert!(IfMatch::parse(&[""]).is_err());
        assert_eq!(etag(7), "\"7\"");
    }
}
