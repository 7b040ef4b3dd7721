//! [`DetachedCreates`]: Service creates that run on their own, apart from the reconcile that
//! started them.
//!
//! Creating a Service waits for the API server to allocate its cluster IP, and the API server
//! allocates them one after another: with many Functions created at once a Service create takes
//! seconds, most of it waiting for its turn. A Function's readiness does not depend on its
//! Service, so a reconcile that awaited the create would hold up its Function's status and, worse,
//! hold one of the controller's reconcile slots, so that the Deployments of Functions behind it
//! are created late. The reconcile starts the create and goes on; the create's answer is kept
//! like any other write's, and the Service's watch event wakes the Function again.
//!
//! While a create is in flight, no other reconcile writes the same Service. A create that failed
//! is tried again by the next reconcile, awaited this time, so that a refusal is reported on the
//! Function the usual way.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use k8s_openapi::api::core::v1::Service;
use kube::runtime::reflector::ObjectRef;

/// Where a detached create of one Service stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CreateState {
    /// Started and not answered yet.
    InFlight,
    /// Answered with a failure: the next attempt is awaited.
    Failed,
}

/// The detached Service creates, per Service.
#[derive(Default)]
pub(crate) struct DetachedCreates {
    creates: Mutex<HashMap<ObjectRef<Service>, CreateState>>,
}

impl DetachedCreates {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectRef<Service>, CreateState>> {
        self.creates.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Where the create of `key` stands, forgetting a failure (the caller retries it).
    pub(crate) fn take(&self, key: &ObjectRef<Service>) -> Option<CreateState> {
        let mut creates = self.lock();
        let state = creates.get(key).copied();
        if state == Some(CreateState::Failed) {
            creates.remove(key);
        }
        state
    }

    /// Records that a create of `key` was started.
    pub(crate) fn started(&self, key: ObjectRef<Service>) {
        self.lock().insert(key, CreateState::InFlight);
    }

    /// Records the end of the create of `key`: forgotten when it succeeded, kept as failed
    /// otherwise.
    pub(crate) fn finished(&self, key: &ObjectRef<Service>, succeeded: bool) {
        let mut creates = self.lock();
        if succeeded {
            creates.remove(key);
        } else if let Some(state) = creates.get_mut(key) {
            *state = CreateState::Failed;
        }
    }

    /// Forgets `key` (its Function is gone).
    pub(crate) fn forget(&self, key: &ObjectRef<Service>) {
        self.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_create_is_handed_back_once_and_a_successful_one_forgotten() {
        let creates = DetachedCreates::default();
        let key = ObjectRef::new("f").within("ns");
        assert_eq!(creates.take(&key), None);
        creates.started(key.clone());
        assert_eq!(creates.take(&key), Some(CreateState::InFlight));
        assert_eq!(
            creates.take(&key),
            Some(CreateState::InFlight),
            "still in flight"
        );
        creates.finished(&key, false);
        assert_eq!(creates.take(&key), Some(CreateState::Failed));
        assert_eq!(creates.take(&key), None, "the caller retries it");
        creates.started(key.clone());
        creates.finished(&key, true);
        assert_eq!(creates.take(&key), None);
        creates.started(key.clone());
        creates.forget(&key);
        creates.finished(&key, false);
        assert_eq!(
            creates.take(&key),
            None,
            "a forgotten create stays forgotten"
        );
    }
}
