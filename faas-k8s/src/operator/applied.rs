//! [`AppliedObjects`]: the objects the operator applied that its watch has not delivered yet.
//!
//! A reconcile decides whether to write by comparing what it would apply with the live object
//! (see [`drift`](super::drift)). The live object comes from a reflector's cache, which lags the
//! API server: a reconcile that runs right after an apply (woken by the other object's watch
//! event, or by a Pod) may find the object just written missing from the cache, or older, and
//! apply it again. That write changes nothing but is still a request, and with many Functions
//! applied at once it is most of the operator's surplus writes.
//!
//! The apply's response is the object as the API server stored it. It is kept here until the
//! watch delivers that version (or a newer one, or its deletion), and a reconcile compares
//! against whichever of the two is newer. The same holds for a Function's status: the Function a
//! status write returned stands in for the cached one until the cache has it, so a reconcile
//! woken meanwhile does not write the same status twice. Resource versions are compared as numbers: the API
//! server guarantees they are comparable integers (Kubernetes 1.35 made it part of the API).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use kube::Resource;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use tokio::time::Instant;

use super::stats::OperatorStats;

/// How long an applied object is trusted over the cache at most: longer than any watch lag seen,
/// short enough that a deletion missed in a race is healed soon after.
const MAX_LAG: Duration = Duration::from_secs(30);

/// One object as the apply returned it.
struct Remembered<K> {
    version: u64,
    object: Arc<K>,
    at: Instant,
}

/// Objects of kind `K` the operator applied, kept until its watch has seen them; cheap to clone
/// (the watch and the reconciles share one table).
pub(crate) struct AppliedObjects<K: Resource<DynamicType = ()>> {
    table: Arc<Mutex<HashMap<ObjectRef<K>, Remembered<K>>>>,
    stats: Arc<OperatorStats>,
}

impl<K: Resource<DynamicType = ()>> Clone for AppliedObjects<K> {
    fn clone(&self) -> Self {
        AppliedObjects {
            table: self.table.clone(),
            stats: self.stats.clone(),
        }
    }
}

/// The resource version of `object` as a number, when it is one.
fn version<K: Resource>(object: &K) -> Option<u64> {
    object.meta().resource_version.as_deref()?.parse().ok()
}

impl<K: Resource<DynamicType = ()>> AppliedObjects<K> {
    /// An empty table that records the watch lag in `stats`.
    pub(crate) fn new(stats: Arc<OperatorStats>) -> Self {
        AppliedObjects {
            table: Arc::new(Mutex::new(HashMap::new())),
            stats,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectRef<K>, Remembered<K>>> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps `object`, as an apply returned it, until the watch delivers it.
    pub(crate) fn remember(&self, object: K) {
        let Some(version) = version(&object) else {
            return;
        };
        let key = ObjectRef::from_obj(&object);
        self.lock().insert(
            key,
            Remembered {
                version,
                object: Arc::new(object),
                at: Instant::now(),
            },
        );
    }

    /// Forgets what the watch has caught up with: an object it delivered at the applied version
    /// or later, or one it saw deleted. Called after the reflector stored the event.
    pub(crate) fn observe(&self, event: &watcher::Event<K>) {
        match event {
            watcher::Event::Apply(object) | watcher::Event::InitApply(object) => {
                let key = ObjectRef::from_obj(object);
                let mut table = self.lock();
                if let Some(remembered) = table.get(&key)
                    && version(object).is_some_and(|seen| seen >= remembered.version)
                {
                    self.stats.record_watch_lag(remembered.at.elapsed());
                    table.remove(&key);
                }
            }
            watcher::Event::Delete(object) => {
                self.lock().remove(&ObjectRef::from_obj(object));
            }
            watcher::Event::Init | watcher::Event::InitDone => {}
        }
    }

    /// The newer of the cached object and the one last applied under `key`.
    pub(crate) fn freshest(&self, key: &ObjectRef<K>, cached: Option<Arc<K>>) -> Option<Arc<K>> {
        let mut table = self.lock();
        let Some(remembered) = table.get(key) else {
            return cached;
        };
        let caught_up = cached
            .as_deref()
            .and_then(version)
            .is_some_and(|seen| seen >= remembered.version);
        if caught_up {
            table.remove(key);
            return cached;
        }
        if remembered.at.elapsed() > MAX_LAG {
            self.stats.trust_expired.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                object = %key,
                applied_version = remembered.version,
                cached_version = ?cached.as_deref().and_then(version),
                "the watch has not delivered an applied object in time: believing the cache"
            );
            table.remove(key);
            return cached;
        }
        Some(remembered.object.clone())
    }

    /// Forgets the object `key` names (its Function is gone).
    pub(crate) fn forget(&self, key: &ObjectRef<K>) {
        self.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Service;
    use kube::api::ObjectMeta;

    use super::*;

    fn service(version: &str) -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some("f".into()),
                namespace: Some("ns".into()),
                resource_version: Some(version.into()),
                ..ObjectMeta::default()
            },
            ..Service::default()
        }
    }

    fn key() -> ObjectRef<Service> {
        ObjectRef::new("f").within("ns")
    }

    fn version_of(object: Option<Arc<Service>>) -> Option<String> {
        object.and_then(|s| s.metadata.resource_version.clone())
    }

    #[test]
    fn an_applied_object_stands_in_for_a_cache_that_has_not_seen_it() {
        let applied = AppliedObjects::<Service>::new(Arc::default());
        applied.remember(service("20"));
        assert_eq!(
            version_of(applied.freshest(&key(), None)).as_deref(),
            Some("20")
        );
        let stale = Some(Arc::new(service("9")));
        assert_eq!(
            version_of(applied.freshest(&key(), stale)).as_deref(),
            Some("20"),
            "versions compare as numbers, not as strings"
        );
        let newer = Some(Arc::new(service("21")));
        assert_eq!(
            version_of(applied.freshest(&key(), newer)).as_deref(),
            Some("21")
        );
        assert_eq!(
            applied.freshest(&key(), None),
            None,
            "once the cache caught up, the cache alone is the truth"
        );
    }

    #[test]
    fn the_watch_catching_up_or_a_deletion_forgets_the_applied_object() {
        let applied = AppliedObjects::<Service>::new(Arc::default());
        applied.remember(service("20"));
        applied.observe(&watcher::Event::Apply(service("19")));
        assert!(applied.freshest(&key(), None).is_some(), "an older event");
        applied.observe(&watcher::Event::Apply(service("20")));
        assert!(applied.freshest(&key(), None).is_none());

        applied.remember(service("30"));
        applied.observe(&watcher::Event::Delete(service("30")));
        assert!(
            applied.freshest(&key(), None).is_none(),
            "a deleted object is not taken as applied: drift is healed"
        );

        applied.remember(service("40"));
        applied.forget(&key());
        assert!(applied.freshest(&key(), None).is_none());
    }
}
