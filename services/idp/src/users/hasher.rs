//! A bounded pool of argon2 workers (RFC 9106) whose memory is reused.
//!
//! A fixed number of OS threads (not Tokio's blocking pool, which grows to hundreds of
//! threads) each own one argon2 memory buffer sized for the configured cost, allocated once
//! at start. Work arrives over a bounded queue; when the queue is full the caller gets
//! [`Submit::Full`] at once, which the login page answers with 503 + Retry-After. Results
//! return over a oneshot channel. Dropping the pool closes the queue and joins the threads.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::oneshot;

/// What a worker is asked to do.
pub(crate) enum Work {
    /// Hash `password` with a fresh salt and the configured parameters: PHC string.
    Hash { password: String },
    /// Check `password` against the PHC string `phc` (its own parameters).
    Verify { phc: String, password: String },
}

/// What a worker answers.
pub(crate) enum Done {
    /// The PHC string of a new hash, or why none could be made.
    Hashed(Result<String, String>),
    /// Whether the password matched the stored hash.
    Verified(bool),
}

/// Why a job was not queued.
#[derive(Debug)]
pub(crate) enum Submit {
    /// The queue is full: back-pressure, try again in a moment.
    Full,
    /// The workers are gone (only while shutting down).
    Closed,
}

struct Job {
    work: Work,
    reply: oneshot::Sender<Done>,
}

/// Live figures of the pool, shared with its workers.
#[derive(Debug, Default)]
struct Counters {
    in_flight: AtomicUsize,
    peak_in_flight: AtomicUsize,
    running: AtomicUsize,
    queue_full: AtomicU64,
}

/// A read-only view of a pool's figures; it stays valid after the pool is dropped, so a
/// caller can see the workers exit.
#[derive(Debug, Clone)]
pub struct HashPoolStats {
    counters: Arc<Counters>,
}

impl HashPoolStats {
    /// Hashes or verifications being computed right now (never more than the workers).
    pub fn in_flight(&self) -> usize {
        self.counters.in_flight.load(Ordering::SeqCst)
    }

    /// The most hashes or verifications ever computed at the same time.
    pub fn peak_in_flight(&self) -> usize {
        self.counters.peak_in_flight.load(Ordering::SeqCst)
    }

    /// Worker threads still running (0 once the pool has been dropped).
    pub fn running_workers(&self) -> usize {
        self.counters.running.load(Ordering::SeqCst)
    }

    /// Jobs refused because the queue was full.
    pub fn queue_full(&self) -> u64 {
        self.counters.queue_full.load(Ordering::SeqCst)
    }
}

/// Decrements the running count when a worker ends, however it ends.
struct Running(Arc<Counters>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The pool: a bounded queue in front of `workers` threads.
pub(crate) struct HashPool {
    queue: Option<SyncSender<Job>>,
    threads: Vec<JoinHandle<()>>,
    counters: Arc<Counters>,
}

impl HashPool {
    /// Starts `workers` threads hashing with `argon` (argon2id, the configured cost), each
    /// with its own memory of `argon`'s block count; `first_memory` (already that size)
    /// becomes the first worker's. Stored hashes asking for more than `max_memory_kib` are
    /// refused without computing.
    pub(crate) fn start(
        argon: Argon2<'static>,
        workers: usize,
        queue: usize,
        max_memory_kib: u32,
        first_memory: Vec<Block>,
    ) -> std::io::Result<Self> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Job>(queue);
        let rx = Arc::new(Mutex::new(rx));
        let counters = Arc::new(Counters::default());
        let mut first_memory = Some(first_memory);
        let mut pool = Self {
            queue: Some(tx),
            threads: Vec::with_capacity(workers),
            counters: Arc::clone(&counters),
        };
        for n in 0..workers {
            let worker = Worker {
                argon: argon.clone(),
                memory: first_memory
                    .take()
                    .unwrap_or_else(|| vec![Block::default(); argon.params().block_count()]),
                max_memory_kib,
                counters: Arc::clone(&counters),
            };
            let rx = Arc::clone(&rx);
            counters.running.fetch_add(1, Ordering::SeqCst);
            let running = Running(Arc::clone(&counters));
            let spawned = std::thread::Builder::new()
                .name(format!("idp-argon2-{n}"))
                .spawn(move || {
                    let _running = running;
                    worker.run(&rx);
                });
            match spawned {
                Ok(handle) => pool.threads.push(handle),
                // The closure (and its Running guard) was dropped: the count is right.
                Err(e) => return Err(e),
            }
        }
        Ok(pool)
    }

    /// Queues `work`; the answer arrives on the returned receiver. Never blocks: a full
    /// queue is [`Submit::Full`] (counted in `idp_password_hash_queue_full_total`).
    pub(crate) fn submit(&self, work: Work) -> Result<oneshot::Receiver<Done>, Submit> {
        let queue = self.queue.as_ref().ok_or(Submit::Closed)?;
        let (reply, answer) = oneshot::channel();
        match queue.try_send(Job { work, reply }) {
            Ok(()) => Ok(answer),
            Err(TrySendError::Full(_)) => {
                self.counters.queue_full.fetch_add(1, Ordering::SeqCst);
                metrics::counter!("idp_password_hash_queue_full_total").increment(1);
                Err(Submit::Full)
            }
            Err(TrySendError::Disconnected(_)) => Err(Submit::Closed),
        }
    }

    /// The pool's live figures.
    pub(crate) fn stats(&self) -> HashPoolStats {
        HashPoolStats {
            counters: Arc::clone(&self.counters),
        }
    }
}

impl Drop for HashPool {
    fn drop(&mut self) {
        // Closing the queue ends each worker after the jobs already queued (whose callers
        // are gone by now, so they are skipped).
        self.queue.take();
        for handle in self.threads.drain(..) {
            if handle.join().is_err() {
                tracing::error!("a password worker panicked");
            }
        }
    }
}

struct Worker {
    argon: Argon2<'static>,
    memory: Vec<Block>,
    max_memory_kib: u32,
    counters: Arc<Counters>,
}

impl Worker {
    fn run(mut self, rx: &Mutex<Receiver<Job>>) {
        loop {
            let job = {
                let Ok(rx) = rx.lock() else { return };
                match rx.recv() {
                    Ok(job) => job,
                    Err(_) => return,
                }
            };
            if job.reply.is_closed() {
                // The caller gave up (the browser left): no hash for nobody.
                continue;
            }
            let now = self.counters.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.counters
                .peak_in_flight
                .fetch_max(now, Ordering::SeqCst);
            metrics::gauge!("idp_password_hashes_in_flight").increment(1.0);
            let started = Instant::now();
            let (op, done) = match job.work {
                Work::Hash { password } => ("hash", Done::Hashed(self.hash(password.as_bytes()))),
                Work::Verify { phc, password } => (
                    "verify",
                    Done::Verified(self.verify(&phc, password.as_bytes())),
                ),
            };
            metrics::histogram!("idp_password_hash_duration_seconds", "op" => op)
                .record(started.elapsed().as_secs_f64());
            self.counters.in_flight.fetch_sub(1, Ordering::SeqCst);
            metrics::gauge!("idp_password_hashes_in_flight").decrement(1.0);
            // The caller may have gone meanwhile; nothing to do then.
            let _ = job.reply.send(done);
        }
    }

    fn hash(&mut self, password: &[u8]) -> Result<String, String> {
        hash_into(&self.argon, &mut self.memory, password).map_err(|e| e.to_string())
    }

    /// Recomputes the stored hash's output with its own algorithm, version and parameters
    /// and compares in constant time (`Output`'s equality), as the argon2 crate's
    /// `verify_password` does, but in this worker's memory when it is large enough.
    fn verify(&mut self, phc: &str, password: &[u8]) -> bool {
        let Ok(parsed) = PasswordHash::new(phc) else {
            return false;
        };
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
            return false;
        };
        let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
            return false;
        };
        let version = match parsed.version.map(Version::try_from).transpose() {
            Ok(v) => v.unwrap_or_default(),
            Err(_) => return false,
        };
        let Ok(params) = Params::try_from(&parsed) else {
            return false;
        };
        if params.m_cost() > self.max_memory_kib {
            tracing::warn!(
                m_cost = params.m_cost(),
                max_memory_kib = self.max_memory_kib,
                "a stored password hash asks for more memory than passwords.max_memory_kib; refused"
            );
            return false;
        }
        let needed = params.block_count();
        let argon = Argon2::new(algorithm, version, params);
        let mut salt_bytes = [0u8; 64];
        let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
            return false;
        };
        let computed = Output::init_with(expected.len(), |out| {
            let result = if needed <= self.memory.len() {
                argon.hash_password_into_with_memory(password, salt, out, &mut self.memory[..])
            } else {
                // An older hash with more memory than configured: memory for this call
                // only (the login that verifies it stores a new hash with the configured
                // cost).
                let mut memory = vec![Block::default(); needed];
                argon.hash_password_into_with_memory(password, salt, out, &mut memory[..])
            };
            result.map_err(Into::into)
        });
        computed.is_ok_and(|computed| computed == expected)
    }
}

/// Hashes `password` with `argon` (argon2id, v19) and a fresh 16-byte salt in `memory`,
/// encoded as the PHC string the argon2 crate's `hash_password` makes.
pub(crate) fn hash_into(
    argon: &Argon2<'_>,
    memory: &mut [Block],
    password: &[u8],
) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    let salt = salt.as_salt();
    let mut salt_bytes = [0u8; 64];
    let raw_salt = salt.decode_b64(&mut salt_bytes)?;
    let len = argon
        .params()
        .output_len()
        .unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let output = Output::init_with(len, |out| {
        argon
            .hash_password_into_with_memory(password, raw_salt, out, &mut *memory)
            .map_err(Into::into)
    })?;
    Ok(PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(argon.params())?,
        salt: Some(salt),
        hash: Some(output),
    }
    .to_string())
}
