//! The demo data of `idp serve --demo`: the user `make demo` and the compose demo profile
//! document, seeded into the database after migrations and before anything is served.
//!
//! Its password is public (it is in the README), so [`Demo::permitted`] refuses it unless
//! idp's public URL is on `localhost` or a loopback IP. Seeding is idempotent: an existing
//! user `demo` is left exactly as it is; [`Demo::Reset`] deletes it with its sessions and
//! creates it afresh. Either way it is one transaction.

use crate::IdpError;
use crate::users::{NewUser, Profile, Users};

/// The demo user's login name.
pub const USERNAME: &str = "demo";
/// The demo user's password.
pub const PASSWORD: &str = "demo-password";
/// The demo user's email address (verified).
pub const EMAIL: &str = "demo@example.com";
/// The demo user's `name` claim.
pub const NAME: &str = "Demo User";

/// What `serve` does with the demo data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Demo {
    /// Nothing: no demo data (production).
    #[default]
    Off,
    /// `--demo`: create the demo user when missing.
    Seed,
    /// `--reset-demo`: delete the demo user with its sessions, then create it afresh.
    Reset,
}

impl Demo {
    /// `--demo` / `--reset-demo` (which implies `--demo`) as a mode.
    pub fn from_flags(demo: bool, reset_demo: bool) -> Self {
        match (demo, reset_demo) {
            (_, true) => Self::Reset,
            (true, false) => Self::Seed,
            (false, false) => Self::Off,
        }
    }

    /// Whether demo data is seeded at all.
    pub fn is_on(self) -> bool {
        self != Self::Off
    }

    /// Refuses demo data, whose password is public, unless `public_url` is an `http` or
    /// `https` URL on `localhost` or a loopback IP, i.e. unless only this machine can use
    /// it. Always `Ok` when off.
    pub fn permitted(self, public_url: &url::Url) -> Result<(), IdpError> {
        if !self.is_on() || config::is_local_http_url(public_url.as_str()) {
            return Ok(());
        }
        Err(IdpError::Invalid(format!(
            "--demo and --reset-demo seed a publicly known password, so they need a \
             public_url on localhost or a loopback IP (http or https); public_url is \"{public_url}\""
        )))
    }
}

/// The demo user: `demo`, `demo@example.com` (verified), `Demo User`.
pub fn user() -> NewUser {
    NewUser {
        username: USERNAME.to_owned(),
        profile: Profile {
            email: Some(EMAIL.to_owned()),
            email_verified: true,
            name: Some(NAME.to_owned()),
            ..Profile::default()
        },
    }
}

/// Seeds the demo user into `users` as `demo` says, in one transaction (the password is
/// hashed with the configured argon2id parameters on the blocking pool), and returns one
/// line per action (deleted, then created), or one line saying that nothing was seeded.
/// Nothing at all when `demo` is [`Demo::Off`].
pub async fn seed(users: &Users, demo: Demo) -> Result<Vec<String>, IdpError> {
    if !demo.is_on() {
        return Ok(Vec::new());
    }
    let outcome = users
        .seed(user(), PASSWORD.to_owned(), demo == Demo::Reset)
        .await?;
    let mut lines = Vec::new();
    if let Some(deleted) = outcome.deleted {
        lines.push(format!(
            "demo: deleted user {} with its sessions",
            deleted.username
        ));
    }
    if let Some(created) = outcome.created {
        lines.push(format!(
            "demo: created user {} / {PASSWORD}",
            created.username
        ));
    } else {
        lines.push(format!("demo: user {USERNAME} exists; nothing seeded"));
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_make_the_mode() {
        assert_eq!(Demo::from_flags(false, false), Demo::Off);
        assert_eq!(Demo::from_flags(true, false), Demo::Seed);
        assert_eq!(Demo::from_flags(false, true), Demo::Reset);
        assert_eq!(Demo::from_flags(true, true), Demo::Reset);
    }

    #[test]
    fn demo_data_only_for_a_local_public_url() {
        let url = |s: &str| url::Url::parse(s).unwrap();
        for mode in [Demo::Seed, Demo::Reset] {
            assert!(mode.permitted(&url("http://localhost:8081")).is_ok());
            assert!(mode.permitted(&url("http://[::1]:8081/idp")).is_ok());
            let err = mode
                .permitted(&url("https://login.example.com"))
                .unwrap_err();
            assert!(
                err.to_string().contains("\"https://login.example.com/\""),
                "{err}"
            );
        }
        assert!(
            Demo::Off
                .permitted(&url("https://login.example.com"))
                .is_ok()
        );
    }
}
