//! Resource limits through cgroups: a cgroup per pod and one per container under a parent the
//! node owns, with the containers' CPU and memory limits written into them.
//!
//! Which interface is used is decided once, when the backend starts ([`CgroupSupport::detect`]):
//!
//! - **cgroup v2** when the unified hierarchy offers the `memory` and `cpu` controllers (and the
//!   node may enable them for its parent): `memory.max`, `cpu.max`, `cpu.weight` (from the CPU
//!   request, converted from shares as the kubelet converts them) and `pids.max`.
//! - **cgroup v1** otherwise, when the `memory` and `cpu` hierarchies are mounted:
//!   `memory.limit_in_bytes`, `cpu.cfs_quota_us` over `cpu.cfs_period_us`, `cpu.shares` from the
//!   CPU request, and `pids.max` where the `pids` hierarchy is mounted.
//! - **none** when the node does not run as root or no controller is there: limits are not
//!   enforced and the node says why (a `LimitsNotEnforced` Event on every pod that sets one).
//!
//! A pod's cgroup holds the sum of its containers' limits when every container sets one (as a
//! kubelet sizes a pod's cgroup), and a `pids.max` when the backend is given a pod PID limit.
//! Swap is not limited: the node is meant to run without swap, as a kubelet is by default.
//!
//! Written against the cgroup file interface directly: it is a handful of files per pod, and
//! both versions, the placement of a new process and the OOM accounting stay in one place.

mod placement;
mod tree;

use std::io;
use std::path::{Path, PathBuf};

use crate::node::backend::ContainerResources;

pub(crate) use placement::{Gate, Placement};
use tree::Version;

/// The CFS period the CPU quota is written against, as the kubelet uses it (100 ms).
const CPU_PERIOD_US: u64 = 100_000;
/// The smallest quota the kernel accepts.
const MIN_CPU_QUOTA_US: u64 = 1_000;
/// The shares of a container that requests no CPU, as the kubelet gives it.
const MIN_CPU_SHARES: u64 = 2;
/// The largest `cpu.shares` value.
const MAX_CPU_SHARES: u64 = 262_144;

/// Whether this node enforces limits, and how.
#[derive(Clone, Debug)]
pub(crate) enum CgroupSupport {
    /// Limits are written into cgroups under the node's parent.
    Enforced(Cgroups),
    /// Limits are not enforced, for the reason given.
    Unavailable(String),
}

impl CgroupSupport {
    /// Finds the cgroup interface of this machine and prepares the node's parent `parent` (a
    /// relative path, the same in every hierarchy) in it.
    pub(crate) fn detect(parent: &Path, pod_pids_limit: Option<u64>) -> Self {
        if !nix::unistd::geteuid().is_root() {
            return Self::Unavailable(
                "the node does not run as root, so it cannot make cgroups".to_owned(),
            );
        }
        match Version::detect() {
            Ok(version) => match version.prepare_parent(parent) {
                Ok(()) => Self::Enforced(Cgroups {
                    version,
                    parent: parent.to_owned(),
                    pod_pids_limit,
                }),
                Err(err) => Self::Unavailable(format!(
                    "the node cannot prepare its cgroup {} ({}): {err}",
                    parent.display(),
                    version.name()
                )),
            },
            Err(reason) => Self::Unavailable(reason),
        }
    }

    /// The cgroups, when limits are enforced.
    pub(crate) fn cgroups(&self) -> Option<&Cgroups> {
        match self {
            Self::Enforced(cgroups) => Some(cgroups),
            Self::Unavailable(_) => None,
        }
    }
}

/// The node's cgroups: where they are and how they are written.
#[derive(Clone, Debug)]
pub(crate) struct Cgroups {
    version: Version,
    /// The node's parent, relative to each hierarchy's root.
    parent: PathBuf,
    pod_pids_limit: Option<u64>,
}

/// What a pod's own cgroup is limited to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct PodLimits {
    pub(crate) memory_bytes: Option<u64>,
    pub(crate) cpu_limit_millis: Option<u64>,
    pub(crate) cpu_request_millis: u64,
}

impl PodLimits {
    /// A pod's limits from its containers' and init containers', as the kubelet sizes a pod's
    /// cgroup: a limit only when every container sets one, the larger of the containers' sum
    /// and the largest init container's (init containers run one at a time).
    pub(crate) fn of(containers: &[ContainerResources], init: &[ContainerResources]) -> Self {
        let total = |get: fn(&ContainerResources) -> Option<u64>| -> Option<u64> {
            let sum = containers
                .iter()
                .map(get)
                .try_fold(0u64, |sum, v| Some(sum.saturating_add(v?)))?;
            let init = init
                .iter()
                .map(get)
                .try_fold(0u64, |max, v| Some(max.max(v?)))?;
            Some(sum.max(init))
        };
        let request = |c: &ContainerResources| c.cpu_request_millis.unwrap_or(0);
        Self {
            memory_bytes: total(|c| c.memory_limit_bytes),
            cpu_limit_millis: total(|c| c.cpu_limit_millis),
            cpu_request_millis: containers
                .iter()
                .map(request)
                .sum::<u64>()
                .max(init.iter().map(request).max().unwrap_or(0)),
        }
    }
}

/// The values written for one cgroup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CgroupLimits {
    pub(crate) memory_bytes: Option<u64>,
    /// The CFS quota per [`CPU_PERIOD_US`], `None` for no quota.
    pub(crate) cpu_quota_us: Option<u64>,
    pub(crate) cpu_shares: u64,
    pub(crate) pids: Option<u64>,
}

impl CgroupLimits {
    fn new(
        memory: Option<u64>,
        cpu_limit: Option<u64>,
        cpu_request: u64,
        pids: Option<u64>,
    ) -> Self {
        Self {
            memory_bytes: memory,
            cpu_quota_us: cpu_limit
                .map(|millis| (millis * CPU_PERIOD_US / 1000).max(MIN_CPU_QUOTA_US)),
            cpu_shares: (cpu_request * 1024 / 1000).clamp(MIN_CPU_SHARES, MAX_CPU_SHARES),
            pids,
        }
    }

    /// `cpu.weight` (cgroup v2) for these shares, as the kubelet converts them.
    pub(crate) fn cpu_weight(&self) -> u64 {
        1 + ((self.cpu_shares - MIN_CPU_SHARES) * 9999) / (MAX_CPU_SHARES - MIN_CPU_SHARES)
    }
}

impl Cgroups {
    /// `cgroup v1` or `cgroup v2`.
    pub(crate) fn version_name(&self) -> &'static str {
        self.version.name()
    }

    /// The relative path of a pod's cgroup.
    fn pod_path(&self, uid: &str) -> PathBuf {
        self.parent.join(pod_dir_name(uid))
    }

    /// The relative path of a container's cgroup.
    fn container_path(&self, uid: &str, container: &str) -> PathBuf {
        self.pod_path(uid).join(container)
    }

    /// Makes (or brings up to date) the cgroups of a pod and of each named container.
    pub(crate) fn create_pod(
        &self,
        uid: &str,
        pod: PodLimits,
        containers: &[(&str, ContainerResources)],
    ) -> io::Result<()> {
        let pod_path = self.pod_path(uid);
        self.version.make(
            &pod_path,
            &CgroupLimits::new(
                pod.memory_bytes,
                pod.cpu_limit_millis,
                pod.cpu_request_millis,
                self.pod_pids_limit,
            ),
            true,
        )?;
        for (name, resources) in containers {
            self.version.make(
                &pod_path.join(name),
                &CgroupLimits::new(
                    resources.memory_limit_bytes,
                    resources.cpu_limit_millis,
                    resources.cpu_request_millis.unwrap_or(0),
                    None,
                ),
                false,
            )?;
        }
        Ok(())
    }

    /// How many processes of a container the kernel killed for its memory limit so far.
    pub(crate) fn oom_kills(&self, uid: &str, container: &str) -> u64 {
        self.version.oom_kills(&self.container_path(uid, container))
    }

    /// How a new process of a container is put into its cgroup.
    pub(crate) fn placement(&self, uid: &str, container: &str) -> Placement {
        self.version.placement(&self.container_path(uid, container))
    }

    /// Removes a pod's cgroups, killing what is left in them first.
    pub(crate) fn remove_pod(&self, uid: &str) -> io::Result<()> {
        self.version.remove(&self.pod_path(uid))
    }

    /// Removes the node's parent once no pod cgroup is left in it (the node stopped every pod);
    /// a parent still in use stays.
    pub(crate) fn remove_parent_if_empty(&self) {
        for dir in self.version.dirs(&self.parent) {
            let _ = std::fs::remove_dir(dir);
        }
    }

    /// Removes the cgroups of pods the node no longer has (left by an earlier node process whose
    /// records are gone), killing what still runs in them; returns the uids it removed.
    pub(crate) fn remove_orphans(&self, keep: &dyn Fn(&str) -> bool) -> Vec<String> {
        let mut removed = Vec::new();
        for uid in self.version.children(&self.parent) {
            let Some(uid) = uid.strip_prefix(POD_PREFIX) else {
                continue;
            };
            if keep(uid) {
                continue;
            }
            match self.remove_pod(uid) {
                Ok(()) => removed.push(uid.to_owned()),
                Err(err) => {
                    tracing::warn!(pod_uid = uid, error = %err, "cannot remove an orphaned pod cgroup");
                }
            }
        }
        removed
    }
}

/// Pod cgroups are named `pod<uid>`, as the kubelet names them.
const POD_PREFIX: &str = "pod";

fn pod_dir_name(uid: &str) -> String {
    // Pod uids are UUIDs; anything that could climb out of the parent is replaced.
    let clean: String = uid
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{POD_PREFIX}{clean}")
}

/// The default parent for a node whose state lives in `state_dir`: `faas-vnode/<hash>`, the
/// same for every node process over the same directory, different for nodes side by side.
pub(crate) fn default_parent(state_dir: &Path) -> PathBuf {
    let path = std::fs::canonicalize(state_dir).unwrap_or_else(|_| state_dir.to_owned());
    // FNV-1a: stable across builds, which the standard library's hasher is not promised to be.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in path.as_os_str().as_encoded_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    PathBuf::from("faas-vnode").join(format!("{hash:016x}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limited(memory: Option<u64>, cpu: Option<u64>, request: Option<u64>) -> ContainerResources {
        ContainerResources::default()
            .with_memory_limit(memory)
            .with_cpu(request, cpu)
    }

    #[test]
    fn a_pod_is_limited_only_when_every_container_is() {
        let both = PodLimits::of(
            &[
                limited(Some(100), Some(500), Some(250)),
                limited(Some(50), Some(250), None),
            ],
            &[limited(Some(400), Some(100), Some(1000))],
        );
        assert_eq!(
            both,
            PodLimits {
                memory_bytes: Some(400),
                cpu_limit_millis: Some(750),
                cpu_request_millis: 1000,
            }
        );
        let partly = PodLimits::of(
            &[limited(Some(100), None, None), limited(None, None, None)],
            &[],
        );
        assert_eq!(partly, PodLimits::default());
    }

    #[test]
    fn cpu_values_follow_the_kubelet() {
        let limits = CgroupLimits::new(None, Some(500), 250, None);
        assert_eq!(limits.cpu_quota_us, Some(50_000));
        assert_eq!(limits.cpu_shares, 256);
        let tiny = CgroupLimits::new(None, Some(1), 0, None);
        assert_eq!((tiny.cpu_quota_us, tiny.cpu_shares), (Some(1_000), 2));
        assert_eq!(tiny.cpu_weight(), 1);
        assert_eq!(CgroupLimits::new(None, None, 1000, None).cpu_weight(), 39);
    }

    #[test]
    fn parents_differ_per_state_directory_and_names_stay_inside() {
        let a = default_parent(Path::new("/var/lib/faas-vnode/a"));
        assert_eq!(a, default_parent(Path::new("/var/lib/faas-vnode/a")));
        assert_ne!(a, default_parent(Path::new("/var/lib/faas-vnode/b")));
        assert!(a.starts_with("faas-vnode"));
        assert_eq!(pod_dir_name("../x"), "pod___x");
    }
}
