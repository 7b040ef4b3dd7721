//! The pod as a worker keeps it, and the specs its pods share.
//!
//! A worker needs its pod's metadata, spec and status for as long as the pod runs. Kept as one
//! `Pod` each, a thousand replicas of one Deployment hold a thousand copies of the same spec
//! (k8s-openapi's `Container` alone is over 2 KiB before any of its strings). A [`PodRecord`]
//! keeps the spec behind an `Arc` that [`SpecCache`] hands out: pods whose specs are equal share
//! one, so a replica costs its metadata and its status only.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::sync::{Arc, Mutex, Weak};

use k8s_openapi::api::core::v1::{Pod, PodSpec, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::super::lock;

/// One pod as its worker keeps it: a `Pod` whose spec is shared with the pods that have the same.
#[derive(Debug)]
pub(crate) struct PodRecord {
    pub(crate) metadata: ObjectMeta,
    spec: Option<Arc<PodSpec>>,
    pub(crate) status: Option<PodStatus>,
}

impl PodRecord {
    /// Keeps `pod`, its spec shared through `specs`.
    pub(crate) fn new(pod: Pod, specs: &SpecCache) -> Self {
        Self {
            metadata: pod.metadata,
            spec: pod.spec.map(|spec| specs.share(spec)),
            status: pod.status,
        }
    }

    /// The pod's spec.
    pub(crate) fn spec(&self) -> Option<&PodSpec> {
        self.spec.as_deref()
    }

    /// Takes in a newer version of the pod; an unchanged spec keeps the one held (no lookup).
    pub(crate) fn update(&mut self, pod: Pod, specs: &SpecCache) {
        self.metadata = pod.metadata;
        self.status = pod.status;
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
            status: self.status.clone(),
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
        assert_eq!(
            record.status.as_ref().unwrap().phase.as_deref(),
            Some("Running")
        );

        record.update(pod("a", "local/v2"), &specs);
        assert!(std::ptr::eq(record.spec().unwrap(), other.spec().unwrap()));
        assert_eq!(specs.len(), 1);
    }
}
