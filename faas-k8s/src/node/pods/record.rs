//! The pod as a worker keeps it, and the specs its pods share.
//!
//! A worker needs its pod's metadata, spec and status for as long as the pod runs. Kept as one
//! `Pod` each, a thousand replicas of one Deployment hold a thousand copies of the same spec
//! (k8s-openapi's `Container` alone is over 2 KiB before any of its strings). A [`PodRecord`]
//! keeps the spec behind an `Arc` that [`SpecCache`] hands out: pods whose specs are equal share
//! one, so a replica costs its metadata and its status only.
//!
//! The status is the API server's, which the worker builds its next status on and compares it
//! with; it is read only when the worker writes one. Deserialized, a running pod's status takes
//! about 3 KiB in some 25 allocations (every condition, container state and address is a struct
//! of optional fields); its JSON text takes about 1 KiB in one. So the record keeps the text and
//! parses it when a status is to be built, and keeps apart the three fields read in between
//! (phase, pod IP, start time).

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::sync::{Arc, Mutex, Weak};

use k8s_openapi::api::core::v1::{Pod, PodSpec, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

use super::super::lock;

/// One pod as its worker keeps it: a `Pod` whose spec is shared with the pods that have the same.
#[derive(Debug)]
pub(crate) struct PodRecord {
    pub(crate) metadata: ObjectMeta,
    spec: Option<Arc<PodSpec>>,
    status: Option<RecordedStatus>,
}

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
    /// Keeps `pod`, its spec shared through `specs`.
    pub(crate) fn new(pod: Pod, specs: &SpecCache) -> Self {
        Self {
            metadata: pod.metadata,
            spec: pod.spec.map(|spec| specs.share(spec)),
            status: pod.status.map(RecordedStatus::new),
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

    /// Takes in a newer version of the pod; an unchanged spec keeps the one held (no lookup).
    pub(crate) fn update(&mut self, pod: Pod, specs: &SpecCache) {
        self.metadata = pod.metadata;
        self.status = pod.status.map(RecordedStatus::new);
        self.spec = match (pod.spec, self.spec.take()) {
            (Some(new), Some(held)) if *held == new => Some(held),
            (new, _) => new.map(|spec| specs.share(spec)),
        };
    }

    /// The pod as one `Pod` again (a copy), for what takes a whole pod.
    pub(crate) fn to_pod(&self) -> Pod {
        Pod {
            metadata: self.metadata.clone(),
            spec: self.spec().cloned(),
            status: self.status(),
        }
    }
}

/// The specs of the node's pods, each kept once: [`share`](Self::share) returns the `Arc` of an
/// equal spec already held by some pod, else keeps this one. Entries go with the last pod that
/// holds them.
#[derive(Debug, Default)]
pub(crate) struct SpecCache {
    /// By a hash of the spec's JSON form; equal hashes are told apart by comparing the specs.
    specs: Mutex<HashMap<u64, Vec<Weak<PodSpec>>>>,
    hasher: std::hash::RandomState,
}

impl SpecCache {
    /// The shared copy of `spec`.
    pub(crate) fn share(&self, spec: PodSpec) -> Arc<PodSpec> {
        let Some(hash) = self.hash(&spec) else {
            return Arc::new(spec);
        };
        let mut specs = lock(&self.specs);
        let bucket = specs.entry(hash).or_default();
        bucket.retain(|weak| weak.strong_count() > 0);
        if let Some(held) = bucket
            .iter()
            .filter_map(Weak::upgrade)
            .find(|held| **held == spec)
        {
            return held;
        }
        let spec = Arc::new(spec);
        bucket.push(Arc::downgrade(&spec));
        // Buckets whose pods are all gone are dropped once in a while, not left to pile up.
        if specs.len() > 64 && specs.len().is_power_of_two() {
            specs.retain(|_, bucket| {
                bucket.retain(|weak| weak.strong_count() > 0);
                !bucket.is_empty()
            });
        }
        spec
    }

    /// How many distinct specs pods hold now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        lock(&self.specs)
            .values()
            .flatten()
            .filter(|weak| weak.strong_count() > 0)
            .count()
    }

    /// A hash of the spec's JSON form, written straight into the hasher (nothing allocated).
    fn hash(&self, spec: &PodSpec) -> Option<u64> {
        let mut writer = HashWriter(self.hasher.build_hasher());
        serde_json::to_writer(&mut writer, spec).ok()?;
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
            "metadata": {"name": name, "namespace": "shop", "uid": name},
            "spec": {"nodeName": "vn", "containers": [{"name": "app", "image": image}]},
            "status": {"phase": "Pending"},
        }))
        .unwrap()
    }

    #[test]
    fn pods_with_equal_specs_share_one_and_keep_their_own_metadata() {
        let specs = SpecCache::default();
        let a = PodRecord::new(pod("a", "local/app"), &specs);
        let b = PodRecord::new(pod("b", "local/app"), &specs);
        let c = PodRecord::new(pod("c", "local/other"), &specs);
        assert!(std::ptr::eq(a.spec().unwrap(), b.spec().unwrap()));
        assert!(!std::ptr::eq(a.spec().unwrap(), c.spec().unwrap()));
        assert_eq!(specs.len(), 2);
        assert_eq!(b.metadata.name.as_deref(), Some("b"));
        assert_eq!(b.to_pod(), pod("b", "local/app"));
        assert_eq!(b.phase(), Some("Pending"));

        drop((a, b));
        assert_eq!(specs.len(), 1, "a spec goes with its last pod");
    }

    #[test]
    fn an_update_keeps_an_unchanged_spec_and_shares_a_changed_one() {
        let specs = SpecCache::default();
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
        assert_eq!(specs.len(), 1);
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
        let record = PodRecord::new(with_status, &SpecCache::default());
        assert_eq!(record.status(), Some(status));
        assert_eq!(record.pod_ip(), Some("127.2.0.5"));
        assert_eq!(
            record.start_time().map(|t| t.0.as_second()),
            Some(1_767_323_045)
        );

        let mut without = pod("b", "local/app");
        without.status = None;
        let record = PodRecord::new(without, &SpecCache::default());
        assert!(record.status().is_none() && record.phase().is_none());
    }
}
