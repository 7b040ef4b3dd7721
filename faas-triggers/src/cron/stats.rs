//! [`CronStats`]: what a cron trigger did, readable while it runs.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of a [`CronTrigger`](super::CronTrigger), over all its jobs.
/// Cheap to clone; clones share the counters.
#[derive(Clone, Default)]
pub struct CronStats {
    inner: Arc<Counters>,
}

#[derive(Default)]
struct Counters {
    fired: AtomicU64,
    succeeded: AtomicU64,
    failed: AtomicU64,
    skipped_overlap: AtomicU64,
    missed: AtomicU64,
    running: AtomicU64,
}

impl CronStats {
    /// Runs started (one per tick fired).
    pub fn fired(&self) -> u64 {
        self.inner.fired.load(Ordering::Acquire)
    }

    /// Runs whose delivery succeeded (after retries, if any).
    pub fn succeeded(&self) -> u64 {
        self.inner.succeeded.load(Ordering::Acquire)
    }

    /// Runs whose delivery failed after its last attempt.
    pub fn failed(&self) -> u64 {
        self.inner.failed.load(Ordering::Acquire)
    }

    /// Ticks not fired because the job's previous run was still going.
    pub fn skipped_overlap(&self) -> u64 {
        self.inner.skipped_overlap.load(Ordering::Acquire)
    }

    /// Ticks missed while the trigger could not run (a pause, a clock jump),
    /// per the job's [`MissedTicks`](super::MissedTicks) policy.
    pub fn missed(&self) -> u64 {
        self.inner.missed.load(Ordering::Acquire)
    }

    /// Runs going on now.
    pub fn running(&self) -> u64 {
        self.inner.running.load(Ordering::Acquire)
    }

    /// Runs finished, successful or not.
    pub fn finished(&self) -> u64 {
        self.succeeded() + self.failed()
    }

    pub(crate) fn record_fired(&self) {
        self.inner.fired.fetch_add(1, Ordering::AcqRel);
        self.inner.running.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn record_finished(&self, success: bool) {
        let counter = if success {
            &self.inner.succeeded
        } else {
            &self.inner.failed
        };
        counter.fetch_add(1, Ordering::AcqRel);
        self.inner.running.fetch_sub(1, Ordering::AcqRel);
    }

    pub(crate) fn record_skipped_overlap(&self) {
        self.inner.skipped_overlap.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn record_missed(&self, count: u64) {
        self.inner.missed.fetch_add(count, Ordering::AcqRel);
    }
}

impl fmt::Debug for CronStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CronStats")
            .field("fired", &self.fired())
            .field("succeeded", &self.succeeded())
            .field("failed", &self.failed())
            .field("skipped_overlap", &self.skipped_overlap())
            .field("missed", &self.missed())
            .field("running", &self.running())
            .finish()
    }
}
