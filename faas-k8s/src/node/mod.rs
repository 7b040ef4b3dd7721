//! The virtual node: a kubelet without a machine.
//!
//! A [`VirtualNode`] registers a Node (labels `type=virtual-kubelet`, taint
//! `virtual-kubelet.io/provider=faas:NoSchedule`, capacity from its backend), renews its Lease in
//! `kube-node-lease`, watches the Pods bound to it and runs them on a [`PodBackend`]: it resolves
//! their environment (ConfigMaps, Secrets, downward API, Service variables, `$(VAR)`) and their
//! volumes, runs their init containers in order, restarts crashing containers with back-off per
//! `restartPolicy`, runs their probes and lifecycle hooks, honours `activeDeadlineSeconds` and
//! readiness gates, writes their status, stops them with their grace period when they are
//! deleted, and serves their logs (`kubectl logs`, also `--previous`) through the kubelet API,
//! which the API server authorizes. After a restart of the node it adopts what still runs and
//! stops what no Pod owns. When one of its tasks dies the node stops and reports itself not
//! ready rather than stay Ready running nothing.
//!
//! The pod workers' requests to the API server (status writes, deletions, Events) are capped,
//! [`DEFAULT_MAX_API_REQUESTS`] in flight by default
//! ([`NodeConfigBuilder::max_api_requests`]; `faas-vnode --max-api-requests`, or the
//! `FAAS_VNODE_MAX_API_REQUESTS` variable): a burst of pods bound at once then holds that many
//! connections and their buffers, not one per pod.
//!
//! Backends: [`process::ProcessBackend`] runs each container as an OS process on an address of
//! its own; [`function::FunctionBackend`] serves, in-process, the registered function a pod's image
//! names.
//!
//! | module | concept |
//! |---|---|
//! | [`backend`] | the [`PodBackend`] boundary and its data types |
//! | `address`, `events`, `machine` | what every backend shares: pod addresses ([`AddressPool`]), change notifications ([`EventHub`]), the machine's capacity |
//! | `pod_table`, `container_status`, `log` | the pod bookkeeping every backend keeps, container states, stored log lines |
//! | `config` | [`NodeConfig`] and its builder |
//! | `registration`, `lease` | the Node object and its Lease |
//! | `pods` | the pod watcher, the per-pod state machine and status |
//! | `env`, `expand`, `quantity`, `service_env` | environment resolution as a kubelet does it |
//! | `volumes`, `hosts` | volumes, hostname and `/etc/hosts` as a kubelet gives them |
//! | `probe`, `hooks`, `backoff` | probes, lifecycle hooks and restart back-off |
//! | `kubelet_api`, `kubelet_auth` | the TLS kubelet API (container logs) and who may use it |
//! | [`exec`], `streaming` | `kubectl exec`, `attach` and `port-forward`: sessions in containers, and the SPDY streams the API server opens to the node |
//! | [`network`] | where pods get their addresses: loopback, or a network namespace |
//! | [`process`], [`function`] | the backends |
//! | `cli` (feature `cli`) | the `faas-vnode` command line, reusable by programs that embed functions |

mod address;
pub mod backend;
mod backoff;
#[cfg(feature = "cli")]
pub mod cli;
mod config;
mod container_status;
mod env;
mod events;
pub mod exec;
mod expand;
pub mod function;
mod hooks;
mod hosts;
mod kubelet_api;
mod kubelet_auth;
mod lease;
mod log;
mod machine;
pub mod network;
mod pod_table;
mod pods;
mod probe;
pub mod process;
mod quantity;
mod registration;
mod service_env;
mod streaming;
#[cfg(test)]
mod testing;
mod virtual_node;
mod volumes;

pub use address::{AddressPool, DEFAULT_POD_CIDR};
pub use backend::{
    BackendError, Capacity, ContainerLaunch, ContainerResources, ContainerRuntimeStatus,
    ContainerState, ContainerUsage, LogOptions, LogStream, MountLaunch, PodBackend, PodEvents,
    PodKey, PodLaunch, PodRuntimeStatus, Terminated, VolumeFile, VolumeLaunch,
};
pub use config::{
    DEFAULT_MAX_API_REQUESTS, KubeletTls, NodeAddress, NodeConfig, NodeConfigBuilder, NodeTaint,
    PROVIDER_TAINT_KEY,
};
pub use events::EventHub;
pub use machine::{DEFAULT_MAX_PODS, machine_capacity};
pub use virtual_node::{ShutdownHandle, VirtualNode};

use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`, carrying on after a panic elsewhere poisoned it (the guarded data is always left
/// consistent: no code here panics half-way through an update).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
