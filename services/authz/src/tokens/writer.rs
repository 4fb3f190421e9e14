//! Group commit of opaque tokens: concurrent token requests share one INSERT.

use std::sync::Arc;

use storage::{Database, StorageError};
use tokio::sync::oneshot;

use super::repo::{self, OpaqueRow};
use crate::relay::{self, Outbox, Relay};

/// Most rows written in one statement.
const MAX_BATCH: usize = 128;
/// Batches committing at once on PostgreSQL: while one waits for its commit to reach the
/// disk, the next is already being inserted, so a server whose rate is set by fsync'd
/// commits is not held to one commit at a time. SQLite has one writer: one batch.
const POSTGRES_IN_FLIGHT: usize = 4;

type Ack = oneshot::Sender<Result<(), Arc<StorageError>>>;

/// A row waiting to be written, with where its answer goes.
struct Pending {
    row: OpaqueRow,
    ack: Ack,
    relay: Option<Relay>,
}

/// A single writer task that takes every opaque token waiting to be stored and inserts
/// them in one statement, then answers each request. A request returns only after its row
/// is committed, so the token can be introspected as soon as the client has it; under load
/// the per-row cost of a transaction is shared by the whole batch, and the answers go back
/// through [`crate::relay`], one wake-up per waiting worker thread per batch. On PostgreSQL
/// up to [`POSTGRES_IN_FLIGHT`] batches commit concurrently (each on its own connection).
pub(crate) struct OpaqueWriter {
    tx: relay::Gather<Pending>,
}

impl OpaqueWriter {
    /// Starts the writer on the current Tokio runtime; it stops when the last handle drops.
    pub(crate) fn spawn(db: Database) -> Self {
        let in_flight = match db.backend() {
            storage::Backend::Postgres => POSTGRES_IN_FLIGHT,
            storage::Backend::Sqlite => 1,
        };
        let tx = relay::batches(
            MAX_BATCH,
            in_flight,
            "opaque_token_batch_size",
            move |batch| {
                let db = db.clone();
                async move { write(&db, batch).await }
            },
        );
        Self { tx }
    }

    /// Stores one token; resolves once it is committed.
    pub(crate) async fn insert(&self, row: OpaqueRow) -> Result<(), Arc<StorageError>> {
        let (ack, done) = oneshot::channel();
        let closed = || Arc::new(StorageError::Unavailable("token writer stopped".into()));
        let pending = Pending {
            row,
            ack,
            relay: relay::local(),
        };
        self.tx.submit(pending).await.map_err(|_| closed())?;
        done.await.map_err(|_| closed())?
    }
}

/// Inserts one batch in one statement and answers each of its requests.
async fn write(db: &Database, batch: Vec<Pending>) {
    let mut answers = Vec::with_capacity(batch.len());
    let rows = batch
        .into_iter()
        .map(|p| {
            answers.push((p.ack, p.relay));
            p.row
        })
        .collect();
    let result = repo::insert_opaque_many(db, rows).await.map_err(Arc::new);
    let mut outbox = Outbox::default();
    for (ack, relay) in answers {
        let result = result.clone();
        outbox.push(
            relay,
            Box::new(move || {
                let _ = ack.send(result);
            }),
        );
    }
    outbox.deliver();
}
