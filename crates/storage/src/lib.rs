//! Database access shared by the services that own a database (authz, idp).
//!
//! - One [`Database`] type over either SQLite (the embedded default: diesel-async's
//!   `SyncConnectionWrapper`, WAL journal, busy timeout, foreign keys on) or PostgreSQL
//!   (the production store), chosen by the URL scheme, with a deadpool pool, bounded
//!   connect and acquire timeouts, and per-connection prepared-statement caching.
//! - Repository code is written once: [`with_conn!`] expands the same diesel query for
//!   whichever backend the connection is, so a query cannot drift between backends.
//! - Each service embeds its migrations (portable SQL run on both backends) and applies
//!   them with [`Database::migrate`]; [`Database::check_ready`] says whether the database
//!   answers and every embedded migration is applied.
//! - [`testing`] gives every test its own database: a temp SQLite file, or a PostgreSQL
//!   database copied from a migrated template and dropped afterwards.

mod checkpoint;
mod config;
mod database;
mod error;
mod prepared;
pub mod testing;

pub use config::{DatabaseConfig, DatabaseUrl};
pub use database::{Backend, Database, DbConn, OpenMode, PgConn, SqliteConn};
pub use diesel;
pub use diesel_async;
pub use diesel_migrations::EmbeddedMigrations;
pub use error::StorageError;
pub use prepared::KeepPrepared;

/// Runs `$body` with `$c` bound to the concrete connection inside a [`DbConn`], once per
/// backend, so one piece of query code serves SQLite and PostgreSQL:
///
/// ```ignore
/// let n: i64 = storage::with_conn!(&mut conn, |c| users::table.count().get_result(c).await)?;
/// ```
#[macro_export]
macro_rules! with_conn {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::DbConn::Sqlite(pooled) => {
                let $c: &mut $crate::SqliteConn = &mut *pooled;
                $body
            }
            $crate::DbConn::Postgres(pooled) => {
                let $c: &mut $crate::PgConn = &mut *pooled;
                $body
            }
        }
    };
}
