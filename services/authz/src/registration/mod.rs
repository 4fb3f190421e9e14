//! dcr: Dynamic Client Registration (RFC 7591) and its management protocol (RFC 7592).
//!
//! An operator mints initial access tokens (`authz registration-tokens create`): each has
//! the most scope a client registered with it may get, an expiry and a use count, and is
//! stored only as its SHA-256 digest. A registration spends one use, validates every
//! metadata value ([`metadata`]), and stores the client, its generated secret and the
//! digest of its registration access token in one transaction. The registration access
//! token reads, updates (and is then replaced) or deletes the registration. Registered
//! clients are ordinary clients: the CLI and the admin API see and manage them.

pub mod metadata;
mod model;
mod repo;
mod service;

pub use model::InitialAccessToken;
pub(crate) use service::RegistrationError;
pub use service::Registrations;
