//! [`OperatorStats`]: counts of what the operator did and why, for tests, benchmarks and metrics.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Counts of what the operator did, and why it wrote what it wrote.
///
/// Every Deployment or Service write has one reason: the object did not exist
/// ([`creates`](Self::creates)) or differed from what its Function says
/// ([`corrections`](Self::corrections): a spec change, drift, or an object whose watch event had
/// not arrived in time). The watch lag is the time from an apply's answer to the watch
/// delivering that version, over every apply the watch caught up with.
///
/// ```
/// use faas_k8s::operator::OperatorStats;
///
/// let stats = OperatorStats::default();
/// assert_eq!(stats.object_writes(), 0);
/// assert_eq!(stats.watch_lag_max(), std::time::Duration::ZERO);
/// ```
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct OperatorStats {
    /// Reconciles run.
    pub reconciles: AtomicU64,
    /// Deployments and Services written (created, or corrected by server-side apply).
    pub object_writes: AtomicU64,
    /// Object writes of an object the operator had not seen (creates).
    pub creates: AtomicU64,
    /// Object writes of an object that differed from what its Function says.
    pub corrections: AtomicU64,
    /// Objects the operator had created whose fields it made its applied fields before it
    /// first applied over them (see the operator's field ownership).
    pub ownership_moves: AtomicU64,
    /// Applied objects the watch had not delivered within the trust window, after which the
    /// cache alone is believed again.
    pub trust_expired: AtomicU64,
    /// Function statuses written.
    pub status_writes: AtomicU64,
    /// Reconciles that failed and were retried with back-off.
    pub failures: AtomicU64,
    /// Reconciles woken during a Function's back-off that waited for it instead of repeating
    /// the failed requests at once.
    pub held_back: AtomicU64,
    /// Writes the API server refused for lack of permission.
    pub forbidden: AtomicU64,
    /// Applies whose version the watch delivered.
    pub watch_catch_ups: AtomicU64,
    /// The sum of the watch lags of those applies, in microseconds.
    pub watch_lag_total_micros: AtomicU64,
    /// The longest watch lag seen, in microseconds.
    pub watch_lag_max_micros: AtomicU64,
    /// The time spent in reconciles, summed, in microseconds (from the reconcile's start to its
    /// answer, the API requests it waited for included).
    pub reconcile_total_micros: AtomicU64,
    /// The longest reconcile, in microseconds.
    pub reconcile_max_micros: AtomicU64,
    /// Reconciles of Functions whose objects and status already said everything: they wrote
    /// nothing.
    pub idle_reconciles: AtomicU64,
}

impl OperatorStats {
    /// Reconciles run so far.
    pub fn reconciles(&self) -> u64 {
        self.reconciles.load(Ordering::Relaxed)
    }

    /// Deployments and Services written so far.
    pub fn object_writes(&self) -> u64 {
        self.object_writes.load(Ordering::Relaxed)
    }

    /// Object writes of objects that did not exist so far.
    pub fn creates(&self) -> u64 {
        self.creates.load(Ordering::Relaxed)
    }

    /// Object writes of objects that differed so far.
    pub fn corrections(&self) -> u64 {
        self.corrections.load(Ordering::Relaxed)
    }

    /// Created objects whose fields became the operator's applied fields so far.
    pub fn ownership_moves(&self) -> u64 {
        self.ownership_moves.load(Ordering::Relaxed)
    }

    /// Applied objects whose watch event did not arrive within the trust window so far.
    pub fn trust_expired(&self) -> u64 {
        self.trust_expired.load(Ordering::Relaxed)
    }

    /// Statuses written so far.
    pub fn status_writes(&self) -> u64 {
        self.status_writes.load(Ordering::Relaxed)
    }

    /// Reconciles that failed so far.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Reconciles that waited for their Function's back-off so far.
    pub fn held_back(&self) -> u64 {
        self.held_back.load(Ordering::Relaxed)
    }

    /// Writes refused for lack of permission so far.
    pub fn forbidden(&self) -> u64 {
        self.forbidden.load(Ordering::Relaxed)
    }

    /// The mean time from an apply's answer to its watch event.
    pub fn watch_lag_mean(&self) -> Duration {
        let count = self.watch_catch_ups.load(Ordering::Relaxed);
        let total = self.watch_lag_total_micros.load(Ordering::Relaxed);
        Duration::from_micros(total.checked_div(count).unwrap_or(0))
    }

    /// The longest time from an apply's answer to its watch event.
    pub fn watch_lag_max(&self) -> Duration {
        Duration::from_micros(self.watch_lag_max_micros.load(Ordering::Relaxed))
    }

    /// The mean time a reconcile took.
    pub fn reconcile_mean(&self) -> Duration {
        let count = self.reconciles.load(Ordering::Relaxed);
        let total = self.reconcile_total_micros.load(Ordering::Relaxed);
        Duration::from_micros(total.checked_div(count).unwrap_or(0))
    }

    /// The longest reconcile.
    pub fn reconcile_max(&self) -> Duration {
        Duration::from_micros(self.reconcile_max_micros.load(Ordering::Relaxed))
    }

    /// Reconciles that wrote nothing so far.
    pub fn idle_reconciles(&self) -> u64 {
        self.idle_reconciles.load(Ordering::Relaxed)
    }

    /// Records a reconcile that took `took`.
    pub(crate) fn record_reconcile(&self, took: Duration) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.reconcile_total_micros
            .fetch_add(micros, Ordering::Relaxed);
        self.reconcile_max_micros
            .fetch_max(micros, Ordering::Relaxed);
    }

    /// Records that the watch delivered an applied version `lag` after the apply answered.
    pub(crate) fn record_watch_lag(&self, lag: Duration) {
        let micros = u64::try_from(lag.as_micros()).unwrap_or(u64::MAX);
        self.watch_catch_ups.fetch_add(1, Ordering::Relaxed);
        self.watch_lag_total_micros
            .fetch_add(micros, Ordering::Relaxed);
        self.watch_lag_max_micros
            .fetch_max(micros, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watch_lag_is_a_mean_and_a_maximum() {
        let stats = OperatorStats::default();
        assert_eq!(stats.watch_lag_mean(), Duration::ZERO);
        stats.record_watch_lag(Duration::from_millis(10));
        stats.record_watch_lag(Duration::from_millis(30));
        assert_eq!(stats.watch_lag_mean(), Duration::from_millis(20));
        assert_eq!(stats.watch_lag_max(), Duration::from_millis(30));
    }

    #[test]
    fn the_reconcile_time_is_a_mean_over_reconciles_and_a_maximum() {
        let stats = OperatorStats::default();
        assert_eq!(stats.reconcile_mean(), Duration::ZERO);
        for millis in [2, 6] {
            stats.reconciles.fetch_add(1, Ordering::Relaxed);
            stats.record_reconcile(Duration::from_millis(millis));
        }
        assert_eq!(stats.reconcile_mean(), Duration::from_millis(4));
        assert_eq!(stats.reconcile_max(), Duration::from_millis(6));
    }
}
