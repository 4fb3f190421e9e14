//! Background upkeep that runs every so often until the process stops: one helper for
//! every periodic task of the services (metric upkeep, pool gauges, purges, key
//! maintenance), so each behaves alike on shutdown and after a stall.

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::Instrument;

/// When a periodic task first runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstRun {
    /// At once, then every interval.
    Immediately,
    /// After one interval, then every interval (for work the caller has just done itself).
    AfterInterval,
}

/// Spawns `task` to run every `every` until `stop` completes, and returns its handle.
///
/// Guarantees:
/// - runs never overlap: the next run starts at the earliest one interval after the
///   previous one began; a run that took longer than the interval is followed at once by
///   the next, and the schedule then continues from there
///   ([`MissedTickBehavior::Delay`]: no burst of catch-up runs after a stall or a
///   suspended machine);
/// - `stop` is honoured between runs and while waiting; a run in progress is finished
///   first, so a task never stops halfway through its work;
/// - each run is inside a `periodic` span with `task = name`, so its logs say which task
///   wrote them.
///
/// Must be called inside a Tokio runtime. An `every` of zero is treated as one millisecond.
pub fn spawn_periodic<F, Fut>(
    name: &'static str,
    every: Duration,
    first: FirstRun,
    stop: impl Future<Output = ()> + Send + 'static,
    mut task: F,
) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let every = every.max(Duration::from_millis(1));
    tokio::spawn(async move {
        let start = match first {
            FirstRun::Immediately => Instant::now(),
            FirstRun::AfterInterval => Instant::now() + every,
        };
        let mut tick = tokio::time::interval_at(start, every);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                biased;
                () = &mut stop => break,
                _ = tick.tick() => {
                    task()
                        .instrument(tracing::debug_span!("periodic", task = name))
                        .await;
                }
            }
        }
        tracing::debug!(task = name, "periodic task stopped");
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::Shutdown;

    fn counter() -> (
        Arc<AtomicU32>,
        impl FnMut() -> std::future::Ready<()> + Send + 'static,
    ) {
        let runs = Arc::new(AtomicU32::new(0));
        let counted = Arc::clone(&runs);
        (runs, move || {
            counted.fetch_add(1, Ordering::SeqCst);
            std::future::ready(())
        })
    }

    /// Lets the spawned task run until it waits on the (paused) clock again.
    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn runs_every_interval_from_the_start_until_shutdown() {
        let shutdown = Shutdown::new();
        let (runs, task) = counter();
        let handle = spawn_periodic(
            "test",
            Duration::from_secs(10),
            FirstRun::Immediately,
            shutdown.waiter(),
            task,
        );
        settle().await;
        assert_eq!(runs.load(Ordering::SeqCst), 1, "first run at once");
        tokio::time::advance(Duration::from_secs(9)).await;
        settle().await;
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_secs(1)).await;
        settle().await;
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        tokio::time::advance(Duration::from_secs(20)).await;
        settle().await;
        assert_eq!(runs.load(Ordering::SeqCst), 3, "no burst to catch up");
        tokio::time::advance(Duration::from_secs(10)).await;
        settle().await;
        assert_eq!(runs.load(Ordering::SeqCst), 4);

        shutdown.trigger();
        handle.await.unwrap();
        tokio::time::advance(Duration::from_secs(60)).await;
        settle().await;
        assert_eq!(runs.load(Ordering::SeqCst), 4, "nothing after shutdown");
    }

    #[tokio::test(start_paused = true)]
    async fn can_wait_one_interval_before_the_first_run() {
        let shutdown = Shutdown::new();
        let (runs, task) = counter();
        let handle = spawn_periodic(
            "test",
            Duration::from_secs(10),
            FirstRun::AfterInterval,
            shutdown.waiter(),
            task,
        );
        settle().await;
        assert_eq!(runs.load(Ordering::SeqCst), 0);
        tokio::time::advance(Duration::from_secs(10)).await;
        settle().await;
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_secs(10)).await;
        settle().await;
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        shutdown.trigger();
        handle.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_triggered_shutdown_prevents_every_run() {
        let shutdown = Shutdown::new();
        shutdown.trigger();
        let (runs, task) = counter();
        spawn_periodic(
            "test",
            Duration::from_secs(1),
            FirstRun::Immediately,
            shutdown.waiter(),
            task,
        )
        .await
        .unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_in_progress_finishes_before_the_task_stops() {
        let shutdown = Shutdown::new();
        let finished = Arc::new(AtomicU32::new(0));
        let done = Arc::clone(&finished);
        let handle = spawn_periodic(
            "slow",
            Duration::from_secs(10),
            FirstRun::Immediately,
            shutdown.waiter(),
            move || {
                let done = Arc::clone(&done);
                async move {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    done.fetch_add(1, Ordering::SeqCst);
                }
            },
        );
        settle().await;
        shutdown.trigger();
        tokio::time::advance(Duration::from_secs(5)).await;
        handle.await.unwrap();
        assert_eq!(finished.load(Ordering::SeqCst), 1);
    }
}
