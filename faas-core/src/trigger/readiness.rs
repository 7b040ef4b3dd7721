//! [`Readiness`]: whether the host's event sources can take work, for the
//! runtime's `/_/ready`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// The sources of a host that are not ready, each with its reason.
///
/// An event source that cannot reach its broker or database at start does
/// not fail the host: it marks itself [`not_ready`](Self::not_ready), keeps
/// trying with back-off, and marks itself [`ready`](Self::ready) once
/// connected. The runtime answers `/_/ready` with 503 while any source is
/// not ready, so Kubernetes sends the pod no traffic and a rollout waits.
/// Cheap to clone; clones share the state.
///
/// ```
/// use faas_core::trigger::Readiness;
///
/// let readiness = Readiness::default();
/// assert!(readiness.is_ready());
/// readiness.not_ready("nats orders", "connection refused");
/// assert!(!readiness.is_ready());
/// assert_eq!(readiness.waiting_for()[0].1, "connection refused");
/// readiness.ready("nats orders");
/// assert!(readiness.is_ready());
/// ```
#[derive(Clone, Default)]
pub struct Readiness {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    waiting: Mutex<BTreeMap<String, String>>,
    count: AtomicUsize,
}

impl Readiness {
    /// Whether every source is ready.
    pub fn is_ready(&self) -> bool {
        self.shared.count.load(Ordering::Acquire) == 0
    }

    /// Marks `source` not ready for `reason`.
    pub fn not_ready(&self, source: &str, reason: impl Into<String>) {
        let mut waiting = self.lock();
        waiting.insert(source.to_owned(), reason.into());
        self.shared.count.store(waiting.len(), Ordering::Release);
    }

    /// Marks `source` ready.
    pub fn ready(&self, source: &str) {
        if self.is_ready() {
            return;
        }
        let mut waiting = self.lock();
        waiting.remove(source);
        self.shared.count.store(waiting.len(), Ordering::Release);
    }

    /// The sources not ready, with their reasons, by name.
    pub fn waiting_for(&self) -> Vec<(String, String)> {
        self.lock()
            .iter()
            .map(|(source, reason)| (source.clone(), reason.clone()))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.shared
            .waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for Readiness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Readiness")
            .field("waiting_for", &self.waiting_for())
            .finish()
    }
}
