use std::time::Duration;

use tokio::task::JoinSet;

use crate::{GrpcServer, RuntimeError, Shutdown};

/// Runs a service's servers together and stops them together.
///
/// On [`Shutdown`] (signal or trigger) every HTTP server stops accepting and drains, the
/// gRPC server does the same, and [`Supervisor::run`] returns once all have finished or the
/// grace period (plus one second) has passed. If any server fails, the others are stopped
/// too and the first error is returned.
pub struct Supervisor {
    shutdown: Shutdown,
    grace: Duration,
    http: Vec<(&'static str, actix_web::dev::Server)>,
    grpc: Option<GrpcServer>,
}

impl Supervisor {
    /// A supervisor stopping on `shutdown`, draining for at most `grace`.
    pub fn new(shutdown: Shutdown, grace: Duration) -> Self {
        Self {
            shutdown,
            grace,
            http: Vec::new(),
            grpc: None,
        }
    }

    /// Adds an actix-web server (built with `disable_signals()`).
    #[must_use]
    pub fn http(mut self, name: &'static str, server: actix_web::dev::Server) -> Self {
        self.http.push((name, server));
        self
    }

    /// Adds the gRPC server.
    #[must_use]
    pub fn grpc(mut self, server: GrpcServer) -> Self {
        self.grpc = Some(server);
        self
    }

    /// Runs until shutdown or the first server failure.
    pub async fn run(self) -> Result<(), RuntimeError> {
        let mut tasks: JoinSet<Result<(), RuntimeError>> = JoinSet::new();
        let mut handles = Vec::new();
        for (name, server) in self.http {
            handles.push(server.handle());
            tasks.spawn(async move {
                server
                    .await
                    .map_err(|source| RuntimeError::Http { name, source })
            });
        }
        if let Some(grpc) = self.grpc {
            tasks.spawn(async move { grpc.serve.await.map_err(RuntimeError::from) });
        }

        let mut first_error = None;
        tokio::select! {
            () = self.shutdown.wait() => {}
            Some(joined) = tasks.join_next() => {
                first_error = outcome(joined).err();
                if let Some(e) = &first_error {
                    tracing::error!(error = %e, "a server stopped unexpectedly; stopping the others");
                }
            }
        }
        self.shutdown.trigger();
        let stops = handles.iter().map(|h| h.stop(true));
        let drain = async {
            futures_util::future::join_all(stops).await;
            while let Some(joined) = tasks.join_next().await {
                if let Err(e) = outcome(joined)
                    && first_error.is_none()
                {
                    first_error = Some(e);
                }
            }
        };
        if tokio::time::timeout(self.grace + Duration::from_secs(1), drain)
            .await
            .is_err()
        {
            tracing::warn!(grace = ?self.grace, "grace period over; abandoning in-flight requests");
        }
        match first_error {
            Some(e) => Err(e),
            None => {
                tracing::info!("stopped");
                Ok(())
            }
        }
    }
}

fn outcome(
    joined: Result<Result<(), RuntimeError>, tokio::task::JoinError>,
) -> Result<(), RuntimeError> {
    joined.map_err(|_| RuntimeError::TaskAborted)?
}
