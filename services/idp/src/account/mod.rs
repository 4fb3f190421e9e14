//! The account page's domain: what a signed-in user changes about themselves (profile,
//! username, password, sessions, applications, deletion), modelled on Keycloak's account
//! console, and the durable delivery of the revocations it needs from authz.
//!
//! Account deletion writes a pending revocation (`revocation_outbox`) in the same
//! transaction that deletes the user; [`Account::spawn_delivery`] hands each pending
//! revocation to authz over `LoginFlow` (`RevokeSubject`), retrying with exponential
//! back-off (`account.revocation_retry` doubling up to `account.revocation_retry_max`)
//! until authz confirms, so the user's grants die even when authz is down at that moment.

mod avatar;
mod config;
pub(crate) mod repo;
mod service;

pub(crate) use avatar::AvatarRefused;
pub use config::AccountConfig;
pub(crate) use service::{Account, Confirmed, Deleted, EmailRequest, Parts, PasswordChange};
