//! Group commit of opaque tokens: concurrent token requests share one INSERT.

use std::sync::Arc;

use storage::{Database, StorageError};
use tokio::sync::{mpsc, oneshot};

use super::repo::{self, OpaqueRow};

/// Most rows written in one statement.
const MAX_BATCH: usize = 128;

type Ack = oneshot::Sender<Result<(), Arc<StorageError>>>;

/// A single writer task that takes every opaque token waiting to be stored and inserts
/// them in one statement, then answers each request. A request returns only after its row
/// is committed, so the token can be introspected as soon as the client has it; under load
/// the per-row cost of a transaction is shared by the whole batch.
pub(crate) struct OpaqueWriter {
    tx: mpsc::Sender<(OpaqueRow, Ack)>,
}

impl OpaqueWriter {
    /// Starts the writer on the current Tokio runtime; it stops when the last handle drops.
    pub(crate) fn spawn(db: Database) -> Self {
        let (tx, mut rx) = mpsc::channel::<(OpaqueRow, Ack)>(4 * MAX_BATCH);
        tokio::spawn(async move {
            let mut rows = Vec::with_capacity(MAX_BATCH);
            let mut acks = Vec::with_capacity(MAX_BATCH);
            while let Some((row, ack)) = rx.recv().await {
                rows.push(row);
                acks.push(ack);
                while rows.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok((row, ack)) => {
                            rows.push(row);
                            acks.push(ack);
                        }
                        Err(_) => break,
                    }
                }
                metrics::histogram!("opaque_token_batch_size").record(rows.len() as f64);
                let batch = std::mem::replace(&mut rows, Vec::with_capacity(MAX_BATCH));
                let result = repo::insert_opaque_many(&db, batch).await.map_err(Arc::new);
                for ack in acks.drain(..) {
                    let _ = ack.send(result.clone());
                }
            }
        });
        Self { tx }
    }

    /// Stores one token; resolves once it is committed.
    pub(crate) async fn insert(&self, row: OpaqueRow) -> Result<(), Arc<StorageError>> {
        let (ack, done) = oneshot::channel();
        let closed = || Arc::new(StorageError::Unavailable("token writer stopped".into()));
        self.tx.send((row, ack)).await.map_err(|_| closed())?;
        done.await.map_err(|_| closed())?
    }
}
