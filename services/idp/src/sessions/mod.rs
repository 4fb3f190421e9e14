//! Browser sessions: who signed in at this idp, when and how.
//!
//! The browser holds a random 256-bit secret in an `HttpOnly` cookie; the database keeps
//! only its SHA-256, so a copy of the database opens no session. Each session also has a
//! public id, a different random value, which is what authz sees (`AcceptLogin.session_id`)
//! and asks about (`Sessions.CheckSession`, `EndSession`): knowing it lets nobody act as
//! the user in a browser.
//!
//! A session is alive until its absolute lifetime (`sessions.lifetime`) ends or it has not
//! been used for `sessions.idle_timeout`, whichever comes first; ended sessions are deleted,
//! and expired ones are purged in the background.

mod config;
mod repo;
mod service;

pub use config::SessionConfig;
pub(crate) use repo::end_all_listed;
pub use service::{NewSession, Session, Sessions};
