//! Users of the identity provider: profile claims, argon2id password hashes, the
//! disabled flag. The user id is the stable, opaque OIDC `sub`.

mod hasher;
mod model;
mod password;
pub(crate) mod repo;
mod service;

pub use hasher::HashPoolStats;
pub use model::{NewUser, Profile, User};
// email, sign-up and password reset (issue 21): the sign-up form checks names as `users create` does.
pub(crate) use model::{normalize_email, normalize_username};
pub use password::{Checked, PasswordConfig, Passwords};
pub use service::{Caller, SeedOutcome, Users};
