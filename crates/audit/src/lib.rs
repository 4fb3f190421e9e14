//! The audit trail (issue 18), shared by authz and idp.
//!
//! Every admin write (admin API and CLI) and every security event (sign-in success and
//! failure, lockout, consent given or revoked, token revocation, key rotation, client
//! secret rotation) becomes one row of the service's `audit_events` table — who (an admin
//! client, a user, a client, the local operator or the service itself, and the client address), what
//! ([`Action`]), which target, when and with what outcome — and one structured log event
//! (`target: "audit"`).
//!
//! **No secret can be recorded, by construction**: actions and failure reasons are closed
//! sets of static names, addresses are [`std::net::IpAddr`], and the only free-form values
//! are identifiers ([`Ident`]: user ids, client ids, key ids, session ids), which callers
//! take from stored records, never from credentials. Login names typed by a user are not
//! recorded (a password typed into the name field must not land in the trail): a failed
//! sign-in names the account only when the name resolved to one.
//!
//! - [`append`] writes an event inside the caller's transaction (it commits or rolls back
//!   with the change it describes); call [`AuditEvent::log`] after the commit.
//! - [`record`] writes an event in its own statement and logs it.
//! - [`list`] pages through the trail newest first with filters ([`AuditFilter`]) and an
//!   opaque keyset [`Cursor`].
//! - [`purge`] deletes what is older than `audit.retention` ([`AuditConfig`]); services run
//!   it periodically.
//!
//! Each service's migrations create the table (`*_audit_events/up.sql`, the same portable
//! SQL in authz and idp).

mod config;
mod event;
mod schema;
mod store;

pub use config::AuditConfig;
pub use event::{Action, Actor, AuditEvent, Ident, Outcome, Target, TargetKind, unix_ms};
pub use store::{
    AuditConn, AuditFilter, AuditRecord, Cursor, InvalidCursor, Page, append, list, purge, record,
};
