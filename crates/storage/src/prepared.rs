//! Statements diesel would prepare afresh on every run, kept prepared instead.

use diesel::QueryResult;
use diesel::backend::Backend;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};

/// A statement kept in its connection's prepared-statement cache under its SQL text, which
/// diesel otherwise never does for an `UPDATE` (its `SET` list may change with optional
/// values) or for an `IN (…)` of bound values on SQLite (one parameter per value): those are
/// parsed and planned on every run, by `sqlite3_prepare` on SQLite and as the unnamed
/// statement on PostgreSQL.
///
/// Wrap only statements whose SQL text takes a small, bounded number of forms (a fixed
/// `SET` list; an `IN` list whose length has a small upper bound): every distinct text
/// stays cached for the life of the connection. The statement itself is unchanged, so it
/// means and returns exactly what the wrapped one does.
#[derive(Debug, Clone, Copy)]
pub struct KeepPrepared<T>(pub T);

impl<T, DB> QueryFragment<DB> for KeepPrepared<T>
where
    DB: Backend,
    T: QueryFragment<DB>,
{
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.0.walk_ast(pass)
    }

    fn is_safe_to_cache_prepared(&self, _backend: &DB) -> QueryResult<bool> {
        Ok(true)
    }
}

/// No static id: the cache key is the SQL text (and bind types), so each form of the
/// statement has its own entry.
impl<T> QueryId for KeepPrepared<T> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<T: Query> Query for KeepPrepared<T> {
    type SqlType = T::SqlType;
}
