//! [`Reconnect`]: the back-off of a source that waits for its server.

use std::time::Duration;

use faas_core::RetryPolicy;
use faas_core::trigger::Readiness;
use tokio_util::sync::CancellationToken;

/// Waits between connection attempts (exponential with jitter, 100 ms up
/// to 10 s, the same schedule as a function's retries) and keeps the
/// source's readiness: not ready while it waits, ready once connected.
#[derive(Debug)]
pub(crate) struct Reconnect {
    source: String,
    readiness: Readiness,
    schedule: RetryPolicy,
    failures: u32,
}

impl Reconnect {
    /// The back-off of `source` (a name such as `nats stream ORDERS`).
    pub(crate) fn new(source: impl Into<String>, readiness: Readiness) -> Self {
        Reconnect {
            source: source.into(),
            readiness,
            schedule: RetryPolicy::default()
                .with_initial_backoff(Duration::from_millis(100))
                .with_max_backoff(Duration::from_secs(10)),
            failures: 0,
        }
    }

    /// The source is connected: ready, and the schedule starts over.
    pub(crate) fn connected(&mut self) {
        if self.failures > 0 {
            tracing::info!(source = %self.source, failures = self.failures, "connected again");
        }
        self.failures = 0;
        self.readiness.ready(&self.source);
    }

    /// The source failed: not ready; waits its turn. Returns false when
    /// `shutdown` came first.
    pub(crate) async fn failed(
        &mut self,
        error: &(dyn std::fmt::Display + Sync),
        shutdown: &CancellationToken,
    ) -> bool {
        let delay = self.failed_now(error);
        tokio::select! {
            () = tokio::time::sleep(delay) => true,
            () = shutdown.cancelled() => false,
        }
    }

    /// The source failed: not ready; returns how long to wait before the
    /// next attempt, for a source that keeps serving meanwhile.
    pub(crate) fn failed_now(&mut self, error: &(dyn std::fmt::Display + Sync)) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let delay = self.schedule.backoff(self.failures);
        tracing::warn!(source = %self.source, %error, ?delay, "cannot reach the server; trying again");
        self.readiness
            .not_ready(&self.source, format!("{}: {error}", self.source));
        delay
    }

    /// Forgets the source's readiness (it stopped).
    pub(crate) fn stopped(&self) {
        self.readiness.ready(&self.source);
    }
}
