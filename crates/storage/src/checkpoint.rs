//! SQLite's write-ahead log, copied back into the database file off the request path.
//!
//! In WAL mode every commit appends to the `-wal` file; a checkpoint copies those pages into
//! the database file, flushing the log before and the file after (<https://sqlite.org/wal.html>,
//! "Checkpointing"). By default the connection whose commit takes the log past 1000 pages
//! runs that checkpoint inside its commit, so under a steady write load one request in a few
//! hundred waited for two `fdatasync` calls and the whole copy. Measured on the opaque token
//! row of `make bench` (one core, SQLite): the writer thread slept in those flushes for runs
//! of 0.5-2 ms while every other request waited on its commit, 14% of the core idle and a
//! p99 of 6 ms. Here one thread per database checkpoints on its own connection every
//! `database.sqlite_checkpoint_interval`: PASSIVE passes copy the log while writers and
//! readers go on, and a short RESTART then rewinds it (see [`checkpoint`]). Commits only
//! checkpoint as a backstop, when the log has grown to [`BACKSTOP_PAGES`] because this
//! thread could not keep up (it cannot open the file, or writers never pause).
//!
//! Durability is unchanged: a commit is in the log (written, not flushed, under
//! `synchronous = NORMAL`) when it returns, with or without a checkpoint, and the log is
//! flushed before any of it is copied. The thread is stopped and joined before the pool's
//! connections close, so the last of them checkpoints once more and removes the log, as
//! SQLite does when a process's last connection closes.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Duration;

use diesel::{Connection, RunQueryDsl, SqliteConnection};

use crate::StorageError;

/// Pages of log from which a commit checkpoints after all (SQLite's `wal_autocheckpoint`):
/// 256 MiB of 4 KiB pages, eight times what one interval held at the opaque token row's
/// peak (about 32,000 pages a second), so it only acts when the thread falls behind. Also
/// the size (`journal_size_limit`, in bytes) to which a rewound log file is truncated.
pub(crate) const BACKSTOP_PAGES: u32 = 65_536;

/// The background checkpoint. Dropping it stops the thread and waits for it (at most one
/// checkpoint), with the [`Database`] that owns it.
///
/// [`Database`]: crate::Database
pub(crate) struct Checkpointer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::warn!("SQLite checkpoint thread panicked");
        }
    }
}

/// One row of `PRAGMA wal_checkpoint`: whether it could not run, the frames in the log and
/// the frames now copied into the database file.
#[derive(diesel::QueryableByName)]
struct WalCheckpoint {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    busy: i32,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    log: i32,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    checkpointed: i32,
}

impl Checkpointer {
    /// Starts the thread. `target` opens the existing database file without creating it;
    /// `pragmas` are the pool's.
    pub(crate) fn start(
        target: String,
        pragmas: String,
        interval: Duration,
    ) -> Result<Self, StorageError> {
        let (stop, stopped) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || run(&target, &pragmas, interval, &stopped))
            .map_err(|e| {
                StorageError::Connect(format!("cannot start the checkpoint thread: {e}"))
            })?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

/// Checkpoints every `interval` until the sender is dropped. A failure (the file removed, a
/// full disk) is logged and the connection opened again on the next tick.
fn run(target: &str, pragmas: &str, interval: Duration, stopped: &Receiver<()>) {
    let pragmas = format!("{pragmas} PRAGMA busy_timeout = {RESTART_WAIT_MS};");
    let mut conn = None;
    while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
        if conn.is_none() {
            conn = SqliteConnection::establish(target)
                .map_err(|e| e.to_string())
                .and_then(|mut c| {
                    diesel::connection::SimpleConnection::batch_execute(&mut c, &pragmas)
                        .map(|()| c)
                        .map_err(|e| e.to_string())
                })
                .inspect_err(|e| tracing::warn!(error = %e, "SQLite checkpoint: cannot open"))
                .ok();
        }
        let Some(c) = conn.as_mut() else {
            metrics::counter!("sqlite_checkpoint_failures_total").increment(1);
            continue;
        };
        if let Err(e) = checkpoint(c) {
            metrics::counter!("sqlite_checkpoint_failures_total").increment(1);
            tracing::warn!(error = %e, "SQLite checkpoint failed");
            conn = None;
        }
    }
}

/// Frames in the log from which a checkpoint also restarts it: SQLite's own automatic
/// checkpoint threshold (`wal_autocheckpoint`, 1000 pages).
const RESTART_FRAMES: i32 = 1000;

/// How long a RESTART checkpoint waits for the write lock and then for readers of old
/// frames; writers wait for it meanwhile, so it gives up early and tries again next round.
const RESTART_WAIT_MS: u32 = 50;

/// PASSIVE checkpoints in one round at most, each copying what the previous one left.
const MAX_PASSES: usize = 4;

/// Frames appended during a PASSIVE pass that a RESTART may copy while writers wait.
const SMALL_REMAINDER: i32 = 64;

/// One round: PASSIVE checkpoints copy what they can while writers go on, until a pass
/// leaves few frames behind (under steady writes the first pass, copying a whole interval,
/// leaves the frames written meanwhile); when the log holds [`RESTART_FRAMES`] or more, a
/// RESTART checkpoint then copies that small remainder and makes the next commit write the
/// log from its start.
///
/// The RESTART is what keeps the log's size bounded: a log is only rewound by a writer that
/// finds every frame copied, which under steady writes never happens after PASSIVE
/// checkpoints alone (frames are appended while they run). RESTART takes the write lock in
/// a pause between commits and holds off writers (they wait in their busy handler) while it
/// copies the remainder and flushes; when it finds no pause within [`RESTART_WAIT_MS`] it
/// gives up and the next round tries again. Like SQLite's own checkpoint, which readers
/// that never pause starve, a writer that never pauses keeps the log growing until it does.
fn checkpoint(conn: &mut SqliteConnection) -> diesel::QueryResult<()> {
    let passive = |conn: &mut SqliteConnection| {
        diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)").get_result::<WalCheckpoint>(conn)
    };
    let mut last = passive(conn)?;
    for _ in 1..MAX_PASSES {
        let next = passive(conn)?;
        let appended = next.log - last.log;
        last = next;
        if appended <= SMALL_REMAINDER {
            break;
        }
    }
    if last.log >= 0 {
        metrics::gauge!("sqlite_wal_frames").set(f64::from(last.log));
    }
    if last.log < RESTART_FRAMES {
        return Ok(());
    }
    let restart =
        diesel::sql_query("PRAGMA wal_checkpoint(RESTART)").get_result::<WalCheckpoint>(conn)?;
    if restart.busy != 0 {
        tracing::debug!(
            log = restart.log,
            checkpointed = restart.checkpointed,
            "SQLite checkpoint: the log could not be restarted (open read transactions)"
        );
    }
    Ok(())
}
