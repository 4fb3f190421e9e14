//! Coalesced token look-ups: concurrent introspections share one query on PostgreSQL.

use std::collections::HashMap;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use storage::{Database, StorageError};
use tokio::sync::oneshot;

use super::repo::{self, OpaqueRow};
use crate::relay::{self, Outbox, Relay};

/// Most look-ups answered by one query.
const MAX_BATCH: usize = 128;
/// Queries of one kind running at once (each on its own pooled connection).
const IN_FLIGHT: usize = 2;

/// One kind of look-up by key: the rows found for some keys, in one query.
pub(crate) trait Query: Send + Sync + 'static {
    /// What a look-up finds for a key.
    type Row: Clone + Send + Sync + 'static;
    /// The key a found row answers.
    fn key(row: &Self::Row) -> &str;
    /// The rows for `keys` (absent keys have none).
    fn load(
        db: &Database,
        keys: &[&str],
    ) -> impl Future<Output = Result<Vec<Self::Row>, StorageError>> + Send;
}

/// The JWT denylist: which `jti`s are revoked (RFC 7009 §2.2: a revoked JWT access token
/// shows inactive at introspection, RFC 7662 §2.2).
pub(crate) struct Revoked;

impl Query for Revoked {
    type Row = String;
    fn key(row: &String) -> &str {
        row
    }
    fn load(
        db: &Database,
        keys: &[&str],
    ) -> impl Future<Output = Result<Vec<String>, StorageError>> + Send {
        repo::revoked_among(db, keys)
    }
}

/// Stored opaque access tokens by the digest of the token ([`super::lookup_key`]).
pub(crate) struct Opaque;

impl Query for Opaque {
    type Row = OpaqueRow;
    fn key(row: &OpaqueRow) -> &str {
        &row.token_hash
    }
    fn load(
        db: &Database,
        keys: &[&str],
    ) -> impl Future<Output = Result<Vec<OpaqueRow>, StorageError>> + Send {
        repo::find_opaque_many(db, keys)
    }
}

type Answer<R> = Result<Vec<R>, Arc<StorageError>>;

/// One caller's keys, with where its answer goes.
struct Lookup<R> {
    keys: Vec<String>,
    reply: oneshot::Sender<Answer<R>>,
    relay: Option<Relay>,
}

/// Look-ups of kind `Q`. On PostgreSQL every look-up that arrives while [`IN_FLIGHT`]
/// queries run goes into the next query (one statement for the whole batch), so a busy
/// server pays one round trip per batch rather than one per token; with nothing running a
/// look-up is sent at once. A query starts after its look-ups arrived, so it sees every
/// write committed before them, on any replica: a revocation is never answered from older
/// data. SQLite is in-process and keeps one query per look-up.
pub(crate) struct Coalesced<Q: Query> {
    db: Database,
    tx: Option<relay::Gather<Lookup<Q::Row>>>,
    kind: PhantomData<Q>,
}

impl<Q: Query> Coalesced<Q> {
    /// Look-ups over `db`; on PostgreSQL this starts the batching task on the current
    /// Tokio runtime, which stops when the last handle drops.
    pub(crate) fn spawn(db: Database) -> Self {
        if db.backend() != storage::Backend::Postgres {
            return Self {
                db,
                tx: None,
                kind: PhantomData,
            };
        }
        let pool = db.clone();
        let tx = relay::batches(
            MAX_BATCH,
            IN_FLIGHT,
            "token_lookup_batch_size",
            move |batch| {
                let db = pool.clone();
                async move { answer::<Q>(&db, batch).await }
            },
        );
        Self {
            db,
            tx: Some(tx),
            kind: PhantomData,
        }
    }

    /// The rows found for `keys`.
    pub(crate) async fn find(&self, keys: &[&str]) -> Answer<Q::Row> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let Some(tx) = &self.tx else {
            return Q::load(&self.db, keys).await.map_err(Arc::new);
        };
        let (reply, done) = oneshot::channel();
        let closed = || Arc::new(StorageError::Unavailable("token look-ups stopped".into()));
        let lookup = Lookup {
            keys: keys.iter().map(|k| (*k).to_owned()).collect(),
            reply,
            relay: relay::local(),
        };
        tx.submit(lookup).await.map_err(|_| closed())?;
        done.await.map_err(|_| closed())?
    }
}

/// Runs one query for every key of `batch` and answers each look-up with its own rows.
async fn answer<Q: Query>(db: &Database, batch: Vec<Lookup<Q::Row>>) {
    let mut keys: Vec<&str> = batch
        .iter()
        .flat_map(|l| l.keys.iter().map(String::as_str))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    let found = Q::load(db, &keys)
        .await
        .map(|rows| {
            rows.into_iter()
                .map(|r| (Q::key(&r).to_owned(), r))
                .collect::<HashMap<String, Q::Row>>()
        })
        .map_err(Arc::new);
    let mut outbox = Outbox::default();
    for lookup in batch {
        let mine = match &found {
            Ok(rows) => Ok(lookup
                .keys
                .iter()
                .filter_map(|k| rows.get(k).cloned())
                .collect()),
            Err(e) => Err(Arc::clone(e)),
        };
        let reply = lookup.reply;
        outbox.push(
            lookup.relay,
            Box::new(move || {
                let _ = reply.send(mine);
            }),
        );
    }
    outbox.deliver();
}
