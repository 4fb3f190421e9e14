//! A bounded pool of signing threads for RSA signatures.
//!
//! An RS256/PS256 signature (RFC 7518 §3.3, §3.5) takes a few hundred microseconds of CPU:
//! too long for an async executor thread. Tokio's blocking pool would start a thread per
//! concurrent signature (up to hundreds), which on a busy core means constant context
//! switches between threads that all want the same CPU. This pool runs a fixed number of
//! threads (one per core by default) that take jobs from one bounded queue: under load a
//! thread signs back to back without sleeping, and callers wait asynchronously, with
//! back-pressure once the queue is full.
//!
//! Results go back in batches through [`crate::relay`]: one wake-up of each waiting async
//! worker per batch, not one per signature.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

use crate::relay::{self, Outbox, Relay, Reply};

/// A queued job: the work (returning its reply) and the relay of the thread that asked.
struct Job {
    work: Box<dyn FnOnce() -> Reply + Send>,
    relay: Option<Relay>,
}

/// Jobs waiting per signing thread before callers wait for room.
const QUEUE_PER_THREAD: usize = 256;

/// Most jobs a thread takes from the queue at once. When the queue holds a single job the
/// batch is that job alone, so an idle server answers without delay.
const MAX_BATCH: usize = 16;

/// One signing thread: takes whatever is queued (up to [`MAX_BATCH`]), runs it, then
/// hands the results to their relays, one message per relay; stops when every sender is
/// gone.
fn work(rx: &Mutex<mpsc::Receiver<Job>>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut outbox = Outbox::default();
    loop {
        {
            // The lock is held only while taking jobs: one thread waits on the queue and
            // the others on the lock.
            let Ok(mut rx) = rx.lock() else { return };
            let Some(job) = rx.blocking_recv() else {
                return;
            };
            batch.push(job);
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
        }
        for job in batch.drain(..) {
            // A panicking job drops its reply sender (its caller gets an error) and must
            // not take the thread with it.
            let Ok(reply) = std::panic::catch_unwind(AssertUnwindSafe(job.work)) else {
                continue;
            };
            outbox.push(job.relay, reply);
        }
        outbox.deliver();
    }
}

/// The pool; clones share the threads, which stop when the last clone is dropped.
#[derive(Clone)]
pub struct SigningPool {
    tx: mpsc::Sender<Job>,
}

/// The pool has stopped (its threads are gone).
#[derive(Debug, thiserror::Error)]
#[error("signing pool stopped")]
pub struct PoolStopped;

impl SigningPool {
    /// Starts `threads` signing threads; `0` means one per available core.
    pub fn start(threads: usize) -> std::io::Result<Self> {
        let threads = match threads {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        let (tx, rx) = mpsc::channel::<Job>(threads * QUEUE_PER_THREAD);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads {
            let rx = Arc::clone(&rx);
            std::thread::Builder::new()
                .name(format!("signer-{i}"))
                .spawn(move || work(&rx))?;
        }
        Ok(Self { tx })
    }

    /// Runs `f` on a signing thread and returns its result; waits for room in the queue
    /// when every thread is busy and the queue is full.
    pub async fn run<T, F>(&self, f: F) -> Result<T, PoolStopped>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (done, result) = oneshot::channel();
        let job = Job {
            work: Box::new(move || {
                let value = f();
                Box::new(move || {
                    let _ = done.send(value);
                })
            }),
            relay: relay::local(),
        };
        self.tx.send(job).await.map_err(|_| PoolStopped)?;
        result.await.map_err(|_| PoolStopped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_jobs_on_named_threads_and_returns_results() {
        let pool = SigningPool::start(2).unwrap();
        let mut handles = Vec::new();
        for i in 0..50u32 {
            let pool = pool.clone();
            handles.push(tokio::spawn(async move {
                pool.run(move || {
                    let name = std::thread::current().name().unwrap_or("").to_owned();
                    (i * 2, name)
                })
                .await
                .unwrap()
            }));
        }
        for (i, handle) in handles.into_iter().enumerate() {
            let (value, thread) = handle.await.unwrap();
            assert_eq!(value, i as u32 * 2);
            assert!(thread.starts_with("signer-"), "ran on {thread}");
        }
    }

    #[tokio::test]
    async fn a_panicking_job_fails_its_caller_and_the_pool_keeps_working() {
        let pool = SigningPool::start(1).unwrap();
        let failed = pool.run(|| -> u8 { panic!("boom") }).await;
        assert!(failed.is_err());
        assert_eq!(pool.run(|| 7).await.unwrap(), 7);
    }

    #[test]
    fn a_thread_that_drives_a_new_runtime_gets_a_new_relay() {
        let pool = SigningPool::start(1).unwrap();
        for round in 0..3 {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let value = runtime.block_on(pool.run(move || round + 1)).unwrap();
            assert_eq!(value, round + 1);
            // Dropping the runtime stops its relay task; the next round must not hang.
            drop(runtime);
        }
    }
}
