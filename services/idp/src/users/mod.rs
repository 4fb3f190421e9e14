//! Users of the identity provider: profile claims, argon2id password hashes, the
//! disabled flag. The user id is the stable, opaque OIDC `sub`.

mod model;
mod password;
mod repo;
mod service;

pub use model::{NewUser, Profile, User};
pub use password::{PasswordConfig, Passwords};
pub use service::{SeedOutcome, Users};
