//! The messages idp sends, rendered from the plain-text templates in `templates/mail/`
//! (askama, compiled in; plain text, so nothing is HTML-escaped).

use askama::Template;

use super::Email;
use crate::IdpError;

#[derive(Template)]
#[template(path = "mail/reset.txt", escape = "none")]
struct Reset<'a> {
    username: &'a str,
    link: &'a str,
    lifetime: &'a str,
}

#[derive(Template)]
#[template(path = "mail/signup.txt", escape = "none")]
struct Signup<'a> {
    username: &'a str,
    link: &'a str,
    lifetime: &'a str,
}

#[derive(Template)]
#[template(path = "mail/signup_exists.txt", escape = "none")]
struct SignupExists<'a> {
    username: &'a str,
    reset: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "mail/password_changed.txt", escape = "none")]
struct PasswordChanged<'a> {
    username: &'a str,
    when: &'a str,
    reset: bool,
    reset_page: Option<&'a str>,
}

fn email(to: &str, subject: &str, template: &impl Template) -> Result<Email, IdpError> {
    Ok(Email {
        to: to.to_owned(),
        subject: subject.to_owned(),
        body: template
            .render()
            .map_err(|e| IdpError::Task(format!("mail template: {e}")))?,
    })
}

/// A lifetime in words: `30 minutes`, `24 hours`.
pub fn lifetime(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    match secs {
        s if s % 86_400 == 0 && s >= 86_400 => plural(s / 86_400, "day"),
        s if s % 3600 == 0 && s >= 3600 => plural(s / 3600, "hour"),
        s if s % 60 == 0 && s >= 60 => plural(s / 60, "minute"),
        s => plural(s, "second"),
    }
}

fn plural(n: u64, unit: &str) -> String {
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

/// The password reset link of `username`, valid for `lifetime`.
pub fn password_reset(
    to: &str,
    username: &str,
    link: &str,
    lifetime: std::time::Duration,
) -> Result<Email, IdpError> {
    email(
        to,
        "Reset your password",
        &Reset {
            username,
            link,
            lifetime: &self::lifetime(lifetime),
        },
    )
}

/// The verification link of a sign-up as `username`, valid for `lifetime`.
pub fn signup_verification(
    to: &str,
    username: &str,
    link: &str,
    lifetime: std::time::Duration,
) -> Result<Email, IdpError> {
    email(
        to,
        "Confirm your email address",
        &Signup {
            username,
            link,
            lifetime: &self::lifetime(lifetime),
        },
    )
}

/// Sent instead of a verification link when someone signs up with an address that already
/// belongs to `username` (the sign-up form answers the same either way); `reset` is the
/// "forgot password" page when password reset is on.
pub fn signup_address_in_use(
    to: &str,
    username: &str,
    reset: Option<&str>,
) -> Result<Email, IdpError> {
    email(
        to,
        "Sign-up attempt with your email address",
        &SignupExists { username, reset },
    )
}

/// "Your password was changed" at `unix` seconds: after a reset (`by_reset`) or any other
/// change (the account page's). `reset_page` is the "forgot password" page when password
/// reset is on.
pub fn password_changed(
    to: &str,
    username: &str,
    unix: i64,
    by_reset: bool,
    reset_page: Option<&str>,
) -> Result<Email, IdpError> {
    email(
        to,
        "Your password was changed",
        &PasswordChanged {
            username,
            when: &utc(unix),
            reset: by_reset,
            reset_page,
        },
    )
}

/// `YYYY-MM-DD HH:MM` of Unix seconds, UTC (civil-from-days, H. Hinnant's algorithm).
fn utc(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let rem = unix.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_carry_their_link_and_lifetime() {
        let m = password_reset(
            "a@example.com",
            "alice",
            "https://id.example/reset?token=T",
            std::time::Duration::from_secs(1800),
        )
        .unwrap();
        assert_eq!(m.subject, "Reset your password");
        assert!(
            m.body.contains("https://id.example/reset?token=T"),
            "{}",
            m.body
        );
        assert!(m.body.contains("30 minutes"), "{}", m.body);
        let m = password_changed(
            "a@example.com",
            "alice",
            1_765_000_000,
            true,
            Some("https://x/forgot"),
        )
        .unwrap();
        assert!(m.body.contains("2025-12-06 05:46"), "{}", m.body);
        assert!(m.body.contains("https://x/forgot"), "{}", m.body);
        let m = signup_address_in_use("a@example.com", "alice", None).unwrap();
        assert!(m.body.contains("alice"), "{}", m.body);
        assert_eq!(lifetime(std::time::Duration::from_secs(86_400)), "1 day");
        assert!(!format!("{m:?}").contains("alice"), "Debug hides the body");
    }
}
