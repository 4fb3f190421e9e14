//! Batched delivery of results from worker threads to async tasks.
//!
//! Waking a task on another thread is the expensive part of handing work to a worker (a
//! system call, and on a busy core a context switch). Every thread that submits work has a
//! relay task on its runtime; a worker that finishes a batch hands each relay all of its
//! results in one message, so a busy server pays one wake-up per batch, not one per
//! result. Used by the signing pool, the opaque-token writer and the token look-ups;
//! [`batches`] forms the writer's and the look-ups' batches.
//!
//! The same holds on the way in: a [`Gather`] collects what one thread submits during one
//! turn of its runtime and hands it to the batching task in one message. Sent one by one,
//! each item woke that task on its own thread, which on a busy core ran at once and left
//! with a batch of one (the opaque-token writer's median batch under 32 connections on one
//! core was 1 row, one transaction and four thread switches per token).

use std::any::Any;
use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

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

/// Messages of a [`Gather`] travelling to its batching task.
const GATHERED_IN_TRANSIT: usize = 64;

/// Gives every [`Gather`] its own slot in each thread's table.
static NEXT_GATHER: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's pending items, one slot per [`Gather`] it submitted to.
    static GATHERED: RefCell<Vec<(usize, Box<dyn Slot>)>> = const { RefCell::new(Vec::new()) };
}

/// One thread's items for one [`Gather`], and the task that sends them on.
struct Pending<T> {
    items: Arc<Mutex<Vec<T>>>,
    /// Wakes the sending task; closed once that task is gone (its runtime stopped).
    kick: mpsc::UnboundedSender<()>,
    /// The batching task's channel, held weakly: gone once every [`Gather`] is dropped.
    to: mpsc::WeakSender<Vec<T>>,
}

trait Slot {
    fn live(&self) -> bool;
    fn as_any(&self) -> &dyn Any;
}

impl<T: 'static> Slot for Pending<T> {
    /// Whether both ends still exist: a slot whose task or batcher is gone is dropped
    /// (which also ends its task, whose kicks then close).
    fn live(&self) -> bool {
        !self.kick.is_closed() && self.to.strong_count() > 0
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The submitting side of [`batches`]: items submitted on one thread while its runtime is
/// busy go to the batching task together, in one message, sent by a task on that runtime
/// once the tasks already woken have run (a task woken from its own thread on a
/// current-thread runtime is queued there, without a system call). Cheap to clone.
///
/// A thread is expected to submit under one runtime at a time, as HTTP workers and the
/// main runtime's threads do: its slot's task runs on the runtime current at its first
/// submission, and is replaced only once that runtime has dropped it (as [`local`]).
///
/// Submitting does not wait for room: the channel to the batching task is bounded, and while
/// it is full the items wait in their thread's slot. Each item is a request waiting for its
/// answer, so they are bounded by the requests the server takes at once.
pub(crate) struct Gather<T> {
    id: usize,
    tx: mpsc::Sender<Vec<T>>,
}

impl<T> Clone for Gather<T> {
    fn clone(&self) -> Self {
        Self {
            id: self.id,
            tx: self.tx.clone(),
        }
    }
}

impl<T: Send + 'static> Gather<T> {
    /// Queues `item` for the batching task; `Err` gives it back when that task is gone.
    /// Outside a Tokio runtime it is sent alone.
    pub(crate) async fn submit(&self, item: T) -> Result<(), T> {
        let Some(first) = self.queue(item)? else {
            return Ok(());
        };
        self.tx
            .send(vec![first])
            .await
            .map_err(|mpsc::error::SendError(mut v)| v.swap_remove(0))
    }

    /// Puts `item` in this thread's slot (`Ok(None)`), or hands it back to be sent alone
    /// (`Ok(Some)`) when there is no runtime to run a sending task on.
    fn queue(&self, item: T) -> Result<Option<T>, T> {
        GATHERED.with(|table| {
            let mut table = table.borrow_mut();
            table.retain(|(_, slot)| slot.live());
            if self.tx.is_closed() {
                return Err(item);
            }
            if let Some(pending) = table
                .iter()
                .find(|(id, _)| *id == self.id)
                .and_then(|(_, slot)| slot.as_any().downcast_ref::<Pending<T>>())
            {
                pending.push(item);
                return Ok(None);
            }
            let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                return Ok(Some(item));
            };
            let pending = Pending::start(&runtime, self.tx.downgrade());
            pending.push(item);
            table.push((self.id, Box::new(pending)));
            Ok(None)
        })
    }
}

impl<T: Send + 'static> Pending<T> {
    /// A slot and its sending task on `runtime`: each kick sends everything queued since
    /// the last one as one message. The task holds the channel weakly, so the batching
    /// task still stops once every [`Gather`] is dropped.
    fn start(runtime: &tokio::runtime::Handle, tx: mpsc::WeakSender<Vec<T>>) -> Self {
        let items: Arc<Mutex<Vec<T>>> = Arc::default();
        let (kick, mut kicks) = mpsc::unbounded_channel::<()>();
        let queued = Arc::clone(&items);
        let to = tx.clone();
        runtime.spawn(async move {
            while kicks.recv().await.is_some() {
                let batch =
                    std::mem::take(&mut *queued.lock().unwrap_or_else(PoisonError::into_inner));
                if batch.is_empty() {
                    continue;
                }
                let Some(tx) = tx.upgrade() else { return };
                if tx.send(batch).await.is_err() {
                    return;
                }
            }
        });
        Self { items, kick, to }
    }

    /// Queues `item`; the first item since the last send kicks the sending task. When
    /// that task is gone (it stopped between the check and the push), what is queued is
    /// dropped, so its callers see their answer channels closed instead of waiting.
    fn push(&self, item: T) {
        let mut items = self.items.lock().unwrap_or_else(PoisonError::into_inner);
        items.push(item);
        if items.len() == 1 && self.kick.send(()).is_err() {
            items.clear();
        }
    }
}

/// Starts a task on the current Tokio runtime that takes the items submitted through the
/// returned [`Gather`] in batches of at most `max` and runs `work` on each batch, at most
/// `in_flight` batches at once. A batch is formed only once a slot is free, so it takes
/// everything that arrived while the previous ones ran: under load the per-batch cost is
/// shared, and with nothing running an item goes alone at once. Each batch's size is
/// recorded in the histogram `metric`. The task stops when every [`Gather`] is dropped.
pub(crate) fn batches<T, F, Fut>(
    max: usize,
    in_flight: usize,
    metric: &'static str,
    work: F,
) -> Gather<T>
where
    T: Send + 'static,
    F: Fn(Vec<T>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel::<Vec<T>>(GATHERED_IN_TRANSIT);
    let permits = Arc::new(tokio::sync::Semaphore::new(in_flight));
    // Items beyond a batch's `max`, first in the next batch.
    let mut over: Vec<T> = Vec::new();
    tokio::spawn(async move {
        loop {
            if over.is_empty() {
                match rx.recv().await {
                    Some(first) => over = first,
                    None => return,
                }
            }
            let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                return;
            };
            while over.len() < max {
                match rx.try_recv() {
                    Ok(mut next) => over.append(&mut next),
                    Err(_) => break,
                }
            }
            let rest = over.split_off(over.len().min(max));
            let batch = std::mem::replace(&mut over, rest);
            metrics::histogram!(metric).record(batch.len() as f64);
            let done = work(batch);
            tokio::spawn(async move {
                done.await;
                drop(permit);
            });
        }
    });
    Gather {
        id: NEXT_GATHER.fetch_add(1, Ordering::Relaxed),
        tx,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Item = (u32, tokio::sync::oneshot::Sender<()>);
    /// The ids of every batch so far.
    type Log = Arc<Mutex<Vec<Vec<u32>>>>;

    /// A batcher that records each batch and answers every item.
    fn recording(max: usize) -> (Gather<Item>, Log) {
        let seen: Log = Arc::default();
        let log = Arc::clone(&seen);
        let gather = batches(max, 1, "test_batch_size", move |batch: Vec<Item>| {
            let log = Arc::clone(&log);
            async move {
                let (ids, acks): (Vec<u32>, Vec<_>) = batch.into_iter().unzip();
                log.lock().unwrap().push(ids);
                for ack in acks {
                    let _ = ack.send(());
                }
            }
        });
        (gather, seen)
    }

    /// What tasks of one current-thread runtime submit while it is busy reaches the
    /// batching task, which runs on another runtime's thread (as the writer runs on the
    /// main runtime and HTTP workers submit), as one batch, in order; a batch holds at
    /// most `max`, the rest goes next.
    #[tokio::test(flavor = "current_thread")]
    async fn one_turn_of_submissions_is_one_batch() {
        let elsewhere = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let (gather, seen) = {
            let _on = elsewhere.enter();
            recording(16)
        };
        let mut answered = Vec::new();
        for id in 0..20u32 {
            let gather = gather.clone();
            answered.push(tokio::spawn(async move {
                let (ack, done) = tokio::sync::oneshot::channel();
                assert!(gather.submit((id, ack)).await.is_ok());
                done.await.unwrap();
            }));
        }
        for task in answered {
            task.await.unwrap();
        }
        let batches = seen.lock().unwrap().clone();
        assert_eq!(
            batches,
            vec![(0..16).collect::<Vec<_>>(), (16..20).collect()],
            "20 submissions of one turn: a full batch and the rest"
        );

        // Alone, an item goes at once.
        let (ack, done) = tokio::sync::oneshot::channel();
        gather.submit((99, ack)).await.unwrap();
        done.await.unwrap();
        assert_eq!(seen.lock().unwrap().last(), Some(&vec![99]));
        elsewhere.shutdown_background();
    }

    /// Dropping every `Gather` stops the batching task (and drops what its work holds),
    /// and the next submission on this thread drops the dead slot; a new batcher on the
    /// same thread gets a slot of its own.
    #[tokio::test(flavor = "current_thread")]
    async fn the_batcher_stops_with_its_last_gather() {
        let held = Arc::new(());
        let witness = Arc::clone(&held);
        let gather = batches(8, 1, "test_batch_size", move |batch: Vec<u32>| {
            let _held = Arc::clone(&witness);
            async move { drop(batch) }
        });
        gather.submit(1).await.unwrap();
        tokio::task::yield_now().await;
        drop(gather);
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(Arc::strong_count(&held), 1, "the batching task is gone");

        let (other, seen) = recording(8);
        let (ack, done) = tokio::sync::oneshot::channel();
        other.submit((7, ack)).await.unwrap();
        done.await.unwrap();
        assert_eq!(*seen.lock().unwrap(), vec![vec![7]]);
        assert_eq!(
            GATHERED.with(|t| t.borrow().len()),
            1,
            "only the live slot is kept"
        );
    }
}
