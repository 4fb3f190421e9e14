//! Parameters of the authorization request (RFC 6749 §4.1.1, OpenID Connect Core
//! §3.1.2.1, OAuth 2.0 Multiple Response Type Encoding Practices, OAuth 2.0 Form Post
//! Response Mode).

use std::fmt;

/// How the authorization response reaches the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResponseMode {
    /// Parameters in the query of the redirect URI (the default for `response_type=code`,
    /// Multiple Response Type Encoding Practices §2.1).
    Query,
    /// Parameters in an auto-submitted HTML form POSTed to the redirect URI (OAuth 2.0
    /// Form Post Response Mode §2).
    FormPost,
}

impl ResponseMode {
    /// Every supported mode.
    pub const ALL: &'static [Self] = &[Self::Query, Self::FormPost];

    /// `response_mode` → mode; absent means `query`. `fragment` is refused: it is meant
    /// for responses that carry tokens, which `response_type=code` never does.
    pub fn parse(raw: Option<&str>) -> Result<Self, String> {
        match raw {
            None | Some("query") => Ok(Self::Query),
            Some("form_post") => Ok(Self::FormPost),
            Some(other) => Err(format!(
                "response_mode {other:?} is not supported (use query or form_post)"
            )),
        }
    }

    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Query => "query",
            Self::FormPost => "form_post",
        }
    }
}

impl fmt::Display for ResponseMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `prompt` parameter (OpenID Connect Core §3.1.2.1): a set of `none`, `login`,
/// `consent`, `select_account`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Prompt {
    /// Show no page at all: answer at once or fail with `login_required`,
    /// `consent_required` or `interaction_required`.
    pub none: bool,
    /// Re-authenticate even with a valid session.
    pub login: bool,
    /// Ask for consent even when it was given before.
    pub consent: bool,
    /// Let the End-User pick an account.
    pub select_account: bool,
}

impl Prompt {
    /// The values this server acts on (advertised as `prompt_values_supported`).
    /// `select_account` is recognised but answered with `account_selection_required`,
    /// since one browser has one account here.
    pub const SUPPORTED: &'static [&'static str] = &["none", "login", "consent"];

    /// Parses the space-delimited list. Unknown values and `none` combined with anything
    /// else (§3.1.2.1: "MUST NOT be present with any other value") are errors.
    pub fn parse(raw: Option<&str>) -> Result<Self, String> {
        let mut p = Self::default();
        let Some(raw) = raw else {
            return Ok(p);
        };
        for value in raw.split(' ').filter(|v| !v.is_empty()) {
            match value {
                "none" => p.none = true,
                "login" => p.login = true,
                "consent" => p.consent = true,
                "select_account" => p.select_account = true,
                other => return Err(format!("prompt value {other:?} is not supported")),
            }
        }
        if p.none && (p.login || p.consent || p.select_account) {
            return Err("prompt=none cannot be combined with other values".into());
        }
        Ok(p)
    }

    /// The values, in a fixed order.
    pub fn values(self) -> Vec<&'static str> {
        let mut out = Vec::new();
        for (set, name) in [
            (self.none, "none"),
            (self.login, "login"),
            (self.consent, "consent"),
            (self.select_account, "select_account"),
        ] {
            if set {
                out.push(name);
            }
        }
        out
    }
}

impl fmt::Display for Prompt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.values().join(" "))
    }
}

/// `max_age` (OpenID Connect Core §3.1.2.1): a non-negative number of seconds.
pub fn parse_max_age(raw: Option<&str>) -> Result<Option<i64>, String> {
    let Some(raw) = raw else { return Ok(None) };
    match raw.parse::<i64>() {
        Ok(n) if n >= 0 && raw.bytes().all(|b| b.is_ascii_digit()) => Ok(Some(n)),
        _ => Err("max_age must be a non-negative integer".into()),
    }
}

/// Whether an authentication at `auth_time` satisfies a request made at `requested_at`
/// with `prompt` and `max_age` (OpenID Connect Core §3.1.2.1): `prompt=login` needs an
/// authentication made after the request; `max_age=N` one made at most N seconds before
/// it (so `max_age=0` is a fresh login too).
pub fn authentication_is_fresh_enough(
    prompt: Prompt,
    max_age: Option<i64>,
    requested_at: i64,
    auth_time: i64,
) -> bool {
    if prompt.login && auth_time < requested_at {
        return false;
    }
    match max_age {
        Some(max) => auth_time >= requested_at.saturating_sub(max),
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_modes() {
        assert_eq!(ResponseMode::parse(None), Ok(ResponseMode::Query));
        assert_eq!(
            ResponseMode::parse(Some("form_post")),
            Ok(ResponseMode::FormPost)
        );
        assert!(ResponseMode::parse(Some("fragment")).is_err());
        assert!(ResponseMode::parse(Some("jwt")).is_err());
    }

    #[test]
    fn prompt_rules() {
        assert_eq!(Prompt::parse(None), Ok(Prompt::default()));
        let p = Prompt::parse(Some("login consent")).unwrap();
        assert!(p.login && p.consent && !p.none);
        assert_eq!(p.to_string(), "login consent");
        assert!(Prompt::parse(Some("none")).unwrap().none);
        assert!(Prompt::parse(Some("none login")).is_err());
        assert!(Prompt::parse(Some("sometimes")).is_err());
        assert!(
            Prompt::parse(Some("select_account"))
                .unwrap()
                .select_account
        );
    }

    #[test]
    fn max_age_syntax() {
        assert_eq!(parse_max_age(None), Ok(None));
        assert_eq!(parse_max_age(Some("0")), Ok(Some(0)));
        assert_eq!(parse_max_age(Some("3600")), Ok(Some(3600)));
        for bad in ["-1", "+5", "1.5", "", "ten"] {
            assert!(parse_max_age(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn freshness() {
        let none = Prompt::default();
        let login = Prompt {
            login: true,
            ..Prompt::default()
        };
        assert!(authentication_is_fresh_enough(none, None, 1000, 1));
        assert!(!authentication_is_fresh_enough(login, None, 1000, 999));
        assert!(authentication_is_fresh_enough(login, None, 1000, 1000));
        assert!(!authentication_is_fresh_enough(none, Some(0), 1000, 999));
        assert!(authentication_is_fresh_enough(none, Some(0), 1000, 1001));
        assert!(authentication_is_fresh_enough(none, Some(60), 1000, 940));
        assert!(!authentication_is_fresh_enough(none, Some(60), 1000, 939));
    }
}
