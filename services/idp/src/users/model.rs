use crate::IdpError;

/// A user as stored (never the password hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Stable, opaque id: the OIDC `sub`.
    pub id: String,
    /// Login name, lower-case.
    pub username: String,
    /// Profile claims.
    pub profile: Profile,
    /// Disabled users cannot log in, refresh or call userinfo.
    pub disabled: bool,
    /// Creation time (Unix seconds).
    pub created_at: i64,
    /// Last change (Unix seconds), the `updated_at` claim.
    pub updated_at: i64,
}

/// OpenID Connect Core §5.1 standard claims kept for a user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    /// `email`, lower-case.
    pub email: Option<String>,
    /// `email_verified`.
    pub email_verified: bool,
    /// `name`.
    pub name: Option<String>,
    /// `given_name`.
    pub given_name: Option<String>,
    /// `family_name`.
    pub family_name: Option<String>,
    /// `picture` (URL).
    pub picture: Option<String>,
    /// `locale` (BCP 47).
    pub locale: Option<String>,
}

/// What `users create` needs.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Login name.
    pub username: String,
    /// Profile claims.
    pub profile: Profile,
}

// account page
/// A change to profile claims: `None` leaves a claim as it is, `Some(None)` removes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileEdit {
    /// `name`.
    pub name: Option<Option<String>>,
    /// `given_name`.
    pub given_name: Option<Option<String>>,
    /// `family_name`.
    pub family_name: Option<Option<String>>,
    /// `locale` (BCP 47).
    pub locale: Option<Option<String>>,
    /// `picture` (URL).
    pub picture: Option<Option<String>>,
    /// `email` (normalised to lower case).
    pub email: Option<Option<String>>,
    /// `email_verified`.
    pub email_verified: Option<bool>,
}

/// Checks a free-text claim (`name`, `given_name`, `family_name`): trimmed, at most 200
/// characters, no control characters; empty means none.
pub(crate) fn claim_text(key: &str, raw: &str) -> Result<Option<String>, IdpError> {
    let v = raw.trim();
    if v.chars().count() > 200 || v.chars().any(char::is_control) {
        return Err(IdpError::Invalid(format!(
            "{key} must be at most 200 characters without control characters"
        )));
    }
    Ok((!v.is_empty()).then(|| v.to_owned()))
}

/// Checks a `locale` (OpenID Connect Core 1.0 §5.1: a BCP 47 language tag such as `en-GB`
/// or `fr`): a 2-3 letter language, then subtags of 1-8 letters or digits; empty means
/// none.
pub(crate) fn locale(raw: &str) -> Result<Option<String>, IdpError> {
    let v = raw.trim().replace('_', "-");
    if v.is_empty() {
        return Ok(None);
    }
    let mut parts = v.split('-');
    let language = parts.next().unwrap_or_default();
    let ok = (2..=3).contains(&language.len())
        && language.bytes().all(|b| b.is_ascii_alphabetic())
        && v.len() <= 35
        && parts
            .all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()));
    if ok {
        Ok(Some(v))
    } else {
        Err(IdpError::Invalid(
            "locale must be a language tag such as en, en-GB or pt-BR".into(),
        ))
    }
}

/// Normalises and checks a username: 1-64 characters of `a-z 0-9 . _ - @ +`, stored
/// lower-case (look-ups are case-insensitive).
pub(crate) fn normalize_username(raw: &str) -> Result<String, IdpError> {
    let u = raw.trim().to_lowercase();
    let ok = (1..=64).contains(&u.len())
        && u.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b".-_@+".contains(&b));
    if ok {
        Ok(u)
    } else {
        Err(IdpError::Invalid(
            "username must be 1-64 characters of a-z, 0-9, '.', '_', '-', '@', '+'".into(),
        ))
    }
}

/// Normalises and checks an email address (one `@`, non-empty parts, at most 254
/// characters), stored lower-case.
pub(crate) fn normalize_email(raw: &str) -> Result<String, IdpError> {
    let e = raw.trim().to_lowercase();
    let valid = e.len() <= 254
        && !e.chars().any(char::is_whitespace)
        && matches!(e.split_once('@'), Some((local, domain)) if !local.is_empty() && domain.contains('.') && !domain.contains('@') && !domain.starts_with('.') && !domain.ends_with('.'));
    if valid {
        Ok(e)
    } else {
        Err(IdpError::Invalid(format!(
            "{raw:?} is not an email address"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_and_emails() {
        assert_eq!(normalize_username(" Demo ").unwrap(), "demo");
        assert!(normalize_username("").is_err());
        assert!(normalize_username("has space").is_err());
        assert!(normalize_username(&"x".repeat(65)).is_err());
        assert_eq!(
            normalize_email("Demo@Example.COM").unwrap(),
            "demo@example.com"
        );
        assert_eq!(locale(" en_GB ").unwrap().as_deref(), Some("en-GB"));
        assert_eq!(locale("").unwrap(), None);
        for bad in ["e", "english", "en--GB", "en-GB-toolongsubtag", "<b>"] {
            assert!(locale(bad).is_err(), "{bad}");
        }
        assert_eq!(
            claim_text("name", "  Ada  ").unwrap().as_deref(),
            Some("Ada")
        );
        assert!(claim_text("name", "a\u{7}b").is_err());
        assert!(claim_text("name", &"x".repeat(201)).is_err());
        for bad in [
            "demo",
            "@example.com",
            "demo@",
            "demo@example",
            "a@b@c.d",
            "a b@c.d",
            "a@.com",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }
}
