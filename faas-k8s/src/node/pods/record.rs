//! The pod as a worker keeps it, and the specs its pods share.
//!
//! A worker needs its pod's metadata, spec and status for as long as the pod runs. Kept as one
//! `Pod` each, a thousand replicas of one Deployment hold a thousand copies of the same spec
//! (k8s-openapi's `Container` alone is over 2 KiB before any of its strings). A [`PodRecord`]
//! keeps the spec behind an `Arc` that [`SharedPodParts`] hands out: pods whose specs are equal
//! share one, so a replica costs its metadata and its status only. Its labels and annotations are
//! shared the same way (replicas carry the same ones, and a map of even one entry allocates a
//! node sized for eleven).
//!
//! The status is the API server's, which the worker builds its next status on and compares it
//! with; it is read only when the worker writes one. Deserialized, a running pod's status takes
//! about 3 KiB in some 25 allocations (every condition, container state and address is a struct
//! of optional fields); its JSON text takes about 1 KiB in one. So the record keeps the text and
//! parses it when a status is to be built, and keeps apart the three fields read in between
//! (phase, pod IP, start time).

use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::sync::{Arc, Mutex, Weak};

use k8s_openapi::api::core::v1::{Pod, PodSpec, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

use super::super::lock;

/// One pod as its worker keeps it: a `Pod` whose spec is shared with the pods that have the same.
#[derive(Debug)]
pub(crate) struct PodRecord {
    /// Without its labels and annotations, held apart.
    metadata: ObjectMeta,
    labels: Option<Arc<StringMap>>,
    annotations: Option<Arc<StringMap>>,
    spec: Option<Arc<PodSpec>>,
    status: Option<RecordedStatus>,
}

/// Labels or annotations.
type StringMap = BTreeMap<String, String>;

/// A pod's status as its JSON text, and the fields read between status writes.
#[derive(Debug)]
struct RecordedStatus {
    json: Box<str>,
    phase: Option<String>,
    pod_ip: Option<String>,
    start_time: Option<Time>,
}

impl RecordedStatus {
    fn new(status: PodStatus) -> Self {
        // Serializing a value of this type cannot fail (no map with non-string keys).
        let json = serde_json::to_string(&status)
            .unwrap_or_default()
            .into_boxed_str();
        Self {
            json,
            phase: status.phase,
            pod_ip: status.pod_ip,
            start_time: status.start_time,
        }
    }
}

impl PodRecord {
    /// Keeps `pod`, its spec, labels and annotations shared through `shared`.
    pub(crate) fn new(mut pod: Pod, shared: &SharedPodParts) -> Self {
        Self {
            labels: pod.metadata.labels.take().map(|m| shared.maps.share(m)),
            annotations: pod
                .metadata
                .annotations
                .take()
                .map(|m| shared.maps.share(m)),
            metadata: pod.metadata,
            spec: pod.spec.map(|spec| shared.specs.share(spec)),
            status: pod.status.map(RecordedStatus::new),
        }
    }

    /// The pod's metadata without its labels and annotations (see [`labels`](Self::labels),
    /// [`annotations`](Self::annotations) and [`full_metadata`](Self::full_metadata)).
    pub(crate) fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    /// `metadata.labels`.
    pub(crate) fn labels(&self) -> Option<&StringMap> {
        self.labels.as_deref()
    }

    /// `metadata.annotations`.
    pub(crate) fn annotations(&self) -> Option<&StringMap> {
        self.annotations.as_deref()
    }

    /// The whole metadata (a copy).
    pub(crate) fn full_metadata(&self) -> ObjectMeta {
        ObjectMeta {
            labels: self.labels().cloned(),
            annotations: self.annotations().cloned(),
            ..self.metadata.clone()
        }
    }

    /// The pod's spec.
    pub(crate) fn spec(&self) -> Option<&PodSpec> {
        self.spec.as_deref()
    }

    /// The pod's status as the API server has it (parsed anew on every call).
    pub(crate) fn status(&self) -> Option<PodStatus> {
        let recorded = self.status.as_ref()?;
        match serde_json::from_str(&recorded.json) {
            Ok(status) => Some(status),
            Err(e) => {
                // Text this record wrote from a status itself: never seen, but not fatal.
                tracing::warn!(error = %e, "a recorded pod status does not parse back");
                None
            }
        }
    }

    /// Whether the pod has a status at all.
    pub(crate) fn has_status(&self) -> bool {
        self.status.is_some()
    }

    /// `status.phase`.
    pub(crate) fn phase(&self) -> Option<&str> {
        self.status.as_ref()?.phase.as_deref()
    }

    /// `status.podIP`.
    pub(crate) fn pod_ip(&self) -> Option<&str> {
        self.status.as_ref()?.pod_ip.as_deref()
    }

    /// `status.startTime`.
    pub(crate) fn start_time(&self) -> Option<&Time> {
        self.status.as_ref()?.start_time.as_ref()
    }

    /// Takes in a newer version of the pod; what is unchanged keeps the copy held (no lookup).
    pub(crate) fn update(&mut self, mut pod: Pod, shared: &SharedPodParts) {
        self.labels = keep_or_share(pod.metadata.labels.take(), self.labels.take(), &shared.maps);
        self.annotations = keep_or_share(
            pod.metadata.annotations.take(),
            self.annotations.take(),
            &shared.maps,
        );
        self.metadata = pod.metadata;
        self.status = pod.status.map(RecordedStatus::new);
        self.spec = keep_or_share(pod.spec, self.spec.take(), &shared.specs);
    }

    /// The pod as one `Pod` again (a copy), for what takes a whole pod.
    pub(crate) fn to_pod(&self) -> Pod {
        Pod {
            metadata: self.full_metadata(),
            spec: self.spec().cloned(),
            status: self.status(),
        }
    }
}

/// `held` when `new` equals it, else the shared copy of `new`.
fn keep_or_share<T: Serialize + PartialEq>(
    new: Option<T>,
    held: Option<Arc<T>>,
    shared: &SharedValues<T>,
) -> Option<Arc<T>> {
    match (new, held) {
        (Some(new), Some(held)) if *held == new => Some(held),
        (new, _) => new.map(|value| shared.share(value)),
    }
}

/// What the node's pods share: specs, and label and annotation maps.
#[derive(Debug, Default)]
pub(crate) struct SharedPodParts {
    specs: SharedValues<PodSpec>,
    maps: SharedValues<StringMap>,
}

impl SharedPodParts {
    /// How many distinct specs pods hold now.
    #[cfg(test)]
    pub(crate) fn specs(&self) -> usize {
        self.specs.len()
    }
}

/// Values of one kind, each kept once: [`share`](Self::share) returns the `Arc` of an equal value
/// some pod already holds, else keeps this one. Entries go with the last pod that holds them.
#[derive(Debug)]
struct SharedValues<T> {
    /// By a hash of the value's JSON form; equal hashes are told apart by comparing the values.
    values: Mutex<HashMap<u64, Vec<Weak<T>>>>,
    hasher: std::hash::RandomState,
}

impl<T> Default for SharedValues<T> {
    fn default() -> Self {
        Self {
            values: Mutex::default(),
            hasher: std::hash::RandomState::default(),
        }
    }
}

impl<T: Serialize + PartialEq> SharedValues<T> {
    /// The shared copy of `value`.
    fn share(&self, value: T) -> Arc<T> {
        let Some(hash) = self.hash(&value) else {
            return Arc::new(value);
        };
        let mut values = lock(&self.values);
        let bucket = values.entry(hash).or_default();
        bucket.retain(|weak| weak.strong_count() > 0);
        if let Some(held) = bucket
            .iter()
            .filter_map(Weak::upgrade)
            .find(|held| **held == value)
        {
            return held;
        }
        let value = Arc::new(value);
        bucket.push(Arc::downgrade(&value));
        // Buckets whose pods are all gone are dropped once in a while, not left to pile up.
        if values.len() > 64 && values.len().is_power_of_two() {
            values.retain(|_, bucket| {
                bucket.retain(|weak| weak.strong_count() > 0);
                !bucket.is_empty()
            });
        }
        value
    }

    /// How many distinct values pods hold now.
    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.values)
            .values()
            .flatten()
            .filter(|weak| weak.strong_count() > 0)
            .count()
    }

    /// A hash of the value's JSON form, written straight into the hasher (nothing allocated).
    fn hash(&self, value: &T) -> Option<u64> {
        let mut writer = HashWriter(self.hasher.build_hasher());
        serde_json::to_writer(&mut writer, value).ok()?;
        Some(writer.0.finish())
    }
}

/// An [`io::Write`] that feeds what is written to a hasher.
struct HashWriter<H>(H);

impl<H: Hasher> io::Write for HashWriter<H> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, image: &str) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "shop", "uid": name, "labels": {"app": "shop"},
                         "annotations": {"by": name}},
            "spec": {"nodeName": "vn", "containers": [{"name": "app", "image": image}]},
            "status": {"phase": "Pending"},
        }))
        .unwrap()
    }

    #[test]
    fn pods_with_equal_specs_share_one_and_keep_their_own_metadata() {
        let specs = SharedPodParts::default();
        let a = PodRecord::new(pod("a", "local/app"), &specs);
        let b = PodRecord::new(pod("b", "local/app"), &specs);
        let c = PodRecord::new(pod("c", "local/other"), &specs);
        assert!(std::ptr::eq(a.spec().unwrap(), b.spec().unwrap()));
        assert!(std::ptr::eq(a.labels().unwrap(), c.labels().unwrap()));
        assert!(!std::ptr::eq(
            a.annotations().unwrap(),
            b.annotations().unwrap()
        ));
        assert!(a.metadata().labels.is_none(), "held apart");
        assert_eq!(a.full_metadata(), pod("a", "local/app").metadata);
        assert!(!std::ptr::eq(a.spec().unwrap(), c.spec().unwrap()));
        assert_eq!(specs.specs(), 2);
        assert_eq!(b.metadata.name.as_deref(), Some("b"));
        assert_eq!(b.to_pod(), pod("b", "local/app"));
        assert_eq!(b.phase(), Some("Pending"));

        drop((a, b));
        assert_eq!(specs.specs(), 1, "a spec goes with its last pod");
    }

    #[test]
    fn an_update_keeps_an_unchanged_spec_and_shares_a_changed_one() {
        let specs = SharedPodParts::default();
        let other = PodRecord::new(pod("other", "local/v2"), &specs);
        let mut record = PodRecord::new(pod("a", "local/v1"), &specs);
        let before: *const PodSpec = record.spec().unwrap();

        let mut newer = pod("a", "local/v1");
        newer.status.as_mut().unwrap().phase = Some("Running".into());
        record.update(newer, &specs);
        assert!(std::ptr::eq(record.spec().unwrap(), before));
        assert_eq!(record.phase(), Some("Running"));

        record.update(pod("a", "local/v2"), &specs);
        assert!(std::ptr::eq(record.spec().unwrap(), other.spec().unwrap()));
        assert_eq!(specs.specs(), 1);
    }

    #[test]
    fn a_recorded_status_reads_back_as_it_came() {
        let status: PodStatus = serde_json::from_value(serde_json::json!({
            "phase": "Running", "podIP": "127.2.0.5", "podIPs": [{"ip": "127.2.0.5"}],
            "hostIP": "10.0.0.1", "qosClass": "BestEffort", "startTime": "2026-01-02T03:04:05Z",
            "conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-02T03:04:06Z"},
                {"type": "example.com/gate", "status": "False", "lastTransitionTime": null},
            ],
            "containerStatuses": [{"name": "app", "image": "local/app", "imageID": "", "ready": true,
                "restartCount": 2, "started": true,
                "state": {"running": {"startedAt": "2026-01-02T03:04:05Z"}},
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                    "startedAt": "2026-01-02T03:00:00Z", "finishedAt": "2026-01-02T03:01:00Z"}},
                "allocatedResources": {"cpu": "100m"}}],
        }))
        .unwrap();
        let mut with_status = pod("a", "local/app");
        with_status.status = Some(status.clone());
        let record = PodRecord::new(with_status, &SharedPodParts::default());
        assert_eq!(record.status(), Some(status));
        assert_eq!(record.pod_ip(), Some("127.2.0.5"));
        assert_eq!(
            record.start_time().map(|t| t.0.as_second()),
            Some(1_767_323_045)
        );

        let mut without = pod("b", "local/app");
        without.status = None;
        let record = PodRecord::new(without, &SharedPodParts::default());
        assert!(record.status().is_none() && record.phase().is_none());
    }
}
