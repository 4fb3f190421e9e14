//! logout: propagating the end of a session to the relying parties that had tokens in it.
//!
//! - OpenID Connect Back-Channel Logout 1.0: for each client with a `backchannel_logout_uri`
//!   that had a grant in the ended session, a delivery is stored in `logout_deliveries`
//!   (so it survives a restart) and a background worker POSTs a signed logout token
//!   (§2.4, §2.5), retrying with exponential backoff; the queue is bounded in size, age and
//!   attempts, and the logout itself never waits for a delivery.
//! - OpenID Connect Front-Channel Logout 1.0: the `frontchannel_logout_uri`s (with `iss` and
//!   `sid`, §2) that authz's logout page loads in iframes.

mod repo;
mod service;
mod token;

pub(crate) use service::Logouts;
