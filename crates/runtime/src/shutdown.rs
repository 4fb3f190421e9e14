use std::time::Duration;

use config::{ConfigError, Validate};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

/// The `shutdown` section: how long in-flight requests may take to finish once a stop was
/// asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownConfig {
    /// Upper bound for draining in-flight HTTP and gRPC requests (`10s`).
    #[serde(with = "humantime_serde")]
    pub grace_period: Duration,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self {
            grace_period: Duration::from_secs(10),
        }
    }
}

impl Validate for ShutdownConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.grace_period > Duration::from_secs(300) {
            return Err(ConfigError::new("grace_period", "must be at most 5m"));
        }
        Ok(())
    }
}

/// One stop signal shared by every server and background task of a process.
///
/// Cloning is cheap; [`Shutdown::trigger`] or a SIGTERM/SIGINT (after
/// [`Shutdown::on_signals`]) wakes every [`Shutdown::wait`]er.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
}

impl Shutdown {
    /// A fresh, untriggered signal.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks everything to stop.
    pub fn trigger(&self) {
        self.token.cancel();
    }

    /// Whether a stop was asked for.
    pub fn is_triggered(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Completes once a stop was asked for.
    pub async fn wait(&self) {
        self.token.cancelled().await;
    }

    /// A `'static` future completing on stop, for APIs that take ownership of the signal.
    pub fn waiter(&self) -> impl Future<Output = ()> + Send + 'static {
        self.token.clone().cancelled_owned()
    }

    /// Triggers this signal on SIGTERM or SIGINT (ctrl-c). Must run inside a Tokio runtime.
    pub fn on_signals(&self) {
        let this = self.clone();
        tokio::spawn(async move {
            let received = wait_for_signal().await;
            tracing::info!(signal = received, "stop requested, draining");
            this.trigger();
        });
    }
}

#[cfg(unix)]
async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        },
        _ => {
            let _ = tokio::signal::ctrl_c().await;
            "ctrl-c"
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() -> &'static str {
    let _ = tokio::signal::ctrl_c().await;
    "ctrl-c"
}
