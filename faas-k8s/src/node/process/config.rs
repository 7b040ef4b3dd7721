//! How a [`ProcessBackend`](super::ProcessBackend) is set up.

use std::path::PathBuf;
use std::time::Duration;

use super::ImageMap;
use crate::node::address::AddressPool;
use crate::node::backend::Capacity;
use crate::node::machine::machine_capacity;
use crate::node::network::PodNetwork;

/// What becomes of the processes when the backend goes away.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShutdownPolicy {
    /// Leave them running, with their records in the state directory, for the next backend over
    /// the same directory to adopt (the node may only be restarting).
    #[default]
    LeaveRunning,
    /// Stop every pod: `SIGTERM` to each process group, up to `grace` to exit, then `SIGKILL`.
    /// When the backend is dropped rather than shut down there is no time to wait: they get
    /// `SIGKILL` straight away.
    StopAll {
        /// How long the processes get to exit after `SIGTERM`.
        grace: Duration,
    },
}

/// The configuration of a [`ProcessBackend`](super::ProcessBackend).
///
/// ```
/// use std::time::Duration;
/// use faas_k8s::node::process::{ImageMap, ProcessBackendConfig, ShutdownPolicy};
///
/// let config = ProcessBackendConfig::new("/var/lib/faas-vnode/node-1")
///     .with_images(ImageMap::new().with_prefix("local/", "/opt/faas/bin"))
///     .with_log_max_bytes(1024 * 1024)
///     .with_on_drop(ShutdownPolicy::StopAll { grace: Duration::from_secs(5) });
/// assert_eq!(config.log_max_bytes, 1024 * 1024);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ProcessBackendConfig {
    /// Where pod records, output pipes, logs and default working directories live; one per node.
    pub state_dir: PathBuf,
    /// Which executable each image runs.
    pub images: ImageMap,
    /// Where pod addresses come from (default `127.1.0.0/16`); share one pool between backends of
    /// one node.
    pub addresses: AddressPool,
    /// A container's log file is rotated when it would grow past this many bytes (one rotated
    /// file is kept). Default 10 MiB.
    pub log_max_bytes: u64,
    /// What the node advertises; `None` (the default) measures the machine: its CPU count, its
    /// memory, [`DEFAULT_MAX_PODS`](crate::node::DEFAULT_MAX_PODS) pods. Creating more pods than this fails.
    pub capacity: Option<Capacity>,
    /// What happens to running processes when the backend is dropped (default: left running).
    pub on_drop: ShutdownPolicy,
    /// How long a running container gets between `SIGTERM` and `SIGKILL` when the node restarts
    /// it (a failed liveness probe). Default 10 s.
    pub restart_grace: Duration,
    /// How often a process adopted from an earlier node process (and so not a child that can be
    /// waited for) is checked for exit. Default 200 ms.
    pub adopted_poll_interval: Duration,
    /// Environment every container starts with, before its own: by default `PATH` (the node's own)
    /// and `HOME=/`. Processes inherit nothing else from the node.
    pub base_env: Vec<(String, String)>,
    /// Where pod addresses live and processes run: loopback addresses of the host (the default),
    /// or a network namespace (then `addresses` must be a range routed into it). The backend
    /// prepares it when it starts and puts each pod's address on it.
    pub network: PodNetwork,
    /// Enforce CPU and memory limits through cgroups where the node can (it runs as root and
    /// finds the controllers; see the backend's documentation). Default `true`.
    pub enforce_limits: bool,
    /// The node's cgroup, relative to the root of each cgroup hierarchy, under which every pod
    /// gets its own. `None` (the default) uses `faas-vnode/<hash of the state directory>`: the same
    /// for every node process over one state directory, different for nodes side by side. Pod
    /// cgroups found there that belong to no recorded pod are removed when the backend starts.
    pub cgroup_parent: Option<PathBuf>,
    /// The most processes a pod may run (`pids.max` of its cgroup, the kubelet's `podPidsLimit`);
    /// `None` (the default) sets no limit.
    pub pod_pids_limit: Option<u64>,
    /// The program that holds the terminal of a container started with `tty: true`, run as
    /// `<program> terminal-holder ...`: `faas-vnode` itself, or any program that serves
    /// [`cli::run`](crate::node::cli) (see the `terminal` notes of
    /// [`ProcessBackend`](super::ProcessBackend)). `None` (the default) refuses such containers.
    pub terminal_holder: Option<PathBuf>,
}

impl ProcessBackendConfig {
    /// Defaults with the given state directory.
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        let path = std::env::var("PATH").unwrap_or_else(|_| {
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()
        });
        Self {
            state_dir: state_dir.into(),
            images: ImageMap::new(),
            addresses: AddressPool::default(),
            log_max_bytes: 10 * 1024 * 1024,
            capacity: None,
            on_drop: ShutdownPolicy::default(),
            restart_grace: Duration::from_secs(10),
            adopted_poll_interval: Duration::from_millis(200),
            base_env: vec![("PATH".into(), path), ("HOME".into(), "/".into())],
            network: PodNetwork::default(),
            enforce_limits: true,
            cgroup_parent: None,
            pod_pids_limit: None,
            terminal_holder: None,
        }
    }

    /// Sets whether limits are enforced through cgroups where the node can.
    #[must_use]
    pub fn with_enforce_limits(mut self, enforce: bool) -> Self {
        self.enforce_limits = enforce;
        self
    }

    /// Sets the node's cgroup, relative to the root of each cgroup hierarchy.
    #[must_use]
    pub fn with_cgroup_parent(mut self, parent: impl Into<PathBuf>) -> Self {
        self.cgroup_parent = Some(parent.into());
        self
    }

    /// Sets the most processes a pod may run.
    #[must_use]
    pub fn with_pod_pids_limit(mut self, limit: Option<u64>) -> Self {
        self.pod_pids_limit = limit;
        self
    }

    /// Sets the image map.
    #[must_use]
    pub fn with_images(mut self, images: ImageMap) -> Self {
        self.images = images;
        self
    }

    /// Sets the address pool.
    #[must_use]
    pub fn with_addresses(mut self, addresses: AddressPool) -> Self {
        self.addresses = addresses;
        self
    }

    /// Sets the log size cap.
    #[must_use]
    pub fn with_log_max_bytes(mut self, bytes: u64) -> Self {
        self.log_max_bytes = bytes;
        self
    }

    /// Sets the advertised capacity.
    #[must_use]
    pub fn with_capacity(mut self, capacity: Capacity) -> Self {
        self.capacity = Some(capacity);
        self
    }

    /// Sets what happens to the processes when the backend is dropped.
    #[must_use]
    pub fn with_on_drop(mut self, policy: ShutdownPolicy) -> Self {
        self.on_drop = policy;
        self
    }

    /// Sets the grace given to a container the node restarts while it runs.
    #[must_use]
    pub fn with_restart_grace(mut self, grace: Duration) -> Self {
        self.restart_grace = grace;
        self
    }

    /// Sets how often adopted processes are checked.
    #[must_use]
    pub fn with_adopted_poll_interval(mut self, interval: Duration) -> Self {
        self.adopted_poll_interval = interval;
        self
    }

    /// Sets the environment every container starts with.
    #[must_use]
    pub fn with_base_env(mut self, env: Vec<(String, String)>) -> Self {
        self.base_env = env;
        self
    }

    /// Sets the program that holds the terminals of `tty: true` containers.
    #[must_use]
    pub fn with_terminal_holder(mut self, program: impl Into<PathBuf>) -> Self {
        self.terminal_holder = Some(program.into());
        self
    }

    /// Sets the pod network.
    #[must_use]
    pub fn with_network(mut self, network: PodNetwork) -> Self {
        self.network = network;
        self
    }

    /// The capacity to advertise: the configured one, or the machine's.
    pub fn effective_capacity(&self) -> Capacity {
        self.capacity.clone().unwrap_or_else(machine_capacity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_the_machine_unless_configured() {
        let machine = ProcessBackendConfig::new("/tmp/x").effective_capacity();
        assert!(machine.cpu.parse::<u32>().unwrap() >= 1);
        assert!(machine.memory.ends_with("Ki"));
        assert_eq!(machine.pods, crate::node::DEFAULT_MAX_PODS);
        let fixed = ProcessBackendConfig::new("/tmp/x")
            .with_capacity(Capacity::new("2", "4Gi", 5))
            .effective_capacity();
        assert_eq!(
            (fixed.cpu.as_str(), fixed.memory.as_str(), fixed.pods),
            ("2", "4Gi", 5)
        );
    }
}
