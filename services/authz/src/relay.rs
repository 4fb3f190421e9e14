//! Batched delivery of results from worker threads to async tasks.
//!
//! Waking a task on another thread is the expensive part of handing work to a worker (a
//! system call, and on a busy core a context switch). Every thread that submits work has a
//! relay task on its runtime; a worker that finishes a batch hands each relay all of its
//! results in one message, so a busy server pays one wake-up per batch, not one per
//! result. Used by the signing pool, the opaque-token writer and the token look-ups;
//! [`batches`] forms the writer's and the look-ups' batches.

use std::cell::RefCell;

use tokio::sync::mpsc;

/// Delivers one result to its caller (typically a `oneshot` send).
pub(crate) type Reply = Box<dyn FnOnce() + Send>;

/// Where a batch of replies goes: a relay task on the submitting thread's runtime.
pub(crate) type Relay = mpsc::UnboundedSender<Vec<Reply>>;

thread_local! {
    /// This thread's relay, started on first use on the runtime the thread is driving.
    static RELAY: RefCell<Option<Relay>> = const { RefCell::new(None) };
}

/// The calling thread's relay, or `None` outside a Tokio runtime (replies are then
/// delivered directly).
pub(crate) fn local() -> Option<Relay> {
    RELAY.with(|slot| {
        let mut slot = slot.borrow_mut();
        if let Some(relay) = slot.as_ref().filter(|r| !r.is_closed()) {
            return Some(relay.clone());
        }
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let (relay, mut batches) = mpsc::unbounded_channel::<Vec<Reply>>();
        runtime.spawn(async move {
            while let Some(batch) = batches.recv().await {
                for reply in batch {
                    reply();
                }
            }
        });
        *slot = Some(relay.clone());
        Some(relay)
    })
}

/// Replies of one batch, grouped by relay.
#[derive(Default)]
pub(crate) struct Outbox {
    by_relay: Vec<(Relay, Vec<Reply>)>,
}

impl Outbox {
    /// Queues `reply` for `relay`; without a relay it is delivered at once.
    pub(crate) fn push(&mut self, relay: Option<Relay>, reply: Reply) {
        let Some(relay) = relay else {
            reply();
            return;
        };
        match self
            .by_relay
            .iter_mut()
            .find(|(r, _)| r.same_channel(&relay))
        {
            Some((_, replies)) => replies.push(reply),
            None => self.by_relay.push((relay, vec![reply])),
        }
    }

    /// Hands every relay its replies in one message. A relay whose runtime has stopped
    /// hands them back: they are delivered here.
    pub(crate) fn deliver(&mut self) {
        for (relay, replies) in self.by_relay.drain(..) {
            if let Err(mpsc::error::SendError(replies)) = relay.send(replies) {
                for reply in replies {
                    reply();
                }
            }
        }
    }
}

/// Starts a task on the current Tokio runtime that takes the items of `rx` in batches of
/// at most `max` and runs `work` on each batch, at most `in_flight` batches at once. A
/// batch is formed only once a slot is free, so it takes everything that arrived while
/// the previous ones ran: under load the per-batch cost is shared, and with nothing
/// running an item goes alone at once. Each batch's size is recorded in the histogram
/// `metric`. The task stops when every sender is dropped.
pub(crate) fn batches<T, F, Fut>(
    mut rx: mpsc::Receiver<T>,
    max: usize,
    in_flight: usize,
    metric: &'static str,
    work: F,
) where
    T: Send + 'static,
    F: Fn(Vec<T>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(in_flight));
    tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            let Ok(permit) = std::sync::Arc::clone(&permits).acquire_owned().await else {
                return;
            };
            let mut batch = Vec::with_capacity(max);
            batch.push(first);
            while batch.len() < max {
                match rx.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            metrics::histogram!(metric).record(batch.len() as f64);
            let done = work(batch);
            tokio::spawn(async move {
                done.await;
                drop(permit);
            });
        }
    });
}
