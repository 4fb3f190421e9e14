//! Users of the identity provider: profile claims, argon2id password hashes, the
//! disabled flag. The user id is the stable, opaque OIDC `sub`.

mod hasher;
mod model;
mod password;
pub(crate) mod repo;
mod service;

pub use hasher::HashPoolStats;
pub use model::{NewUser, Profile, ProfileEdit, User};
// account page
pub(crate) use model::{claim_text, locale, normalize_email, normalize_username};
pub use password::{Checked, PasswordConfig, Passwords};
pub use service::{Caller, LoginAccount, SeedOutcome, Users};
