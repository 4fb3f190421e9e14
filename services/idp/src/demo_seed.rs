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

pub use runtime::Demo;

/// [`Demo::permitted`] for idp: demo data only with a `public_url` on this machine.
pub fn permitted(demo: Demo, public_url: &url::Url) -> Result<(), IdpError> {
    demo.permitted("public_url", public_url.as_str())
        .map_err(IdpError::Invalid)
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
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn demo_data_only_for_a_local_public_url() {
        let url = |s: &str| url::Url::parse(s).unwrap();
        assert!(permitted(Demo::Seed, &url("http://[::1]:8081/idp")).is_ok());
        let err = permitted(Demo::Reset, &url("https://login.example.com")).unwrap_err();
        assert!(
            err.to_string()
                .contains("public_url is \"https://login.example.com/\""),
            "{err}"
        );
        assert!(permitted(Demo::Off, &url("https://login.example.com")).is_ok());
    }
}
