//! The virtual node: a kubelet without a machine.
//!
//! A [`VirtualNode`] registers a Node (labels `type=virtual-kubelet`, taint
//! `virtual-kubelet.io/provider=faas:NoSchedule`, capacity from its backend), renews its Lease in
//! `kube-node-lease`, watches the Pods bound to it and runs them on a [`PodBackend`]: it resolves
//! their environment (ConfigMaps, Secrets, downward API, `$(VAR)`), restarts crashing containers
//! with back-off per `restartPolicy`, runs their probes, writes their status, stops them with their
//! grace period when they are deleted, and serves their logs to `kubectl logs` through the kubelet
//! API. After a restart of the node it adopts what still runs and stops what no Pod owns.
//!
//! Backends: [`process::ProcessBackend`] runs each container as an OS process on an address of
//! its own; [`function::FunctionBackend`] serves, in-process, the registered function a pod's image
//! names.
//!
//! | module | concept |
//! |---|---|
//! | [`backend`] | the [`PodBackend`] boundary and its data types |
//! | `config` | [`NodeConfig`] and its builder |
//! | `registration`, `lease` | the Node object and its Lease |
//! | `pods` | the pod watcher, the per-pod state machine and status |
//! | `env`, `expand`, `quantity` | environment resolution as a kubelet does it |
//! | `probe`, `backoff` | probes and restart back-off |
//! | `kubelet_api` | the TLS kubelet API (container logs) |
//! | [`network`] | where pods get their addresses: loopback, or a network namespace |
//! | [`process`], [`function`] | the backends |
//! | `cli` (feature `cli`) | the `faas-vnode` command line, reusable by programs that embed functions |

pub mod backend;
mod backoff;
#[cfg(feature = "cli")]
pub mod cli;
mod config;
mod env;
mod expand;
pub mod function;
mod kubelet_api;
mod lease;
pub mod network;
mod pods;
mod probe;
pub mod process;
mod quantity;
mod registration;
#[cfg(test)]
mod testing;
mod virtual_node;

pub use backend::{
    BackendError, Capacity, ContainerLaunch, ContainerRuntimeStatus, ContainerState, LogOptions,
    LogStream, PodBackend, PodEvents, PodKey, PodLaunch, PodRuntimeStatus, Terminated,
};
pub use config::{
    KubeletTls, NodeAddress, NodeConfig, NodeConfigBuilder, NodeTaint, PROVIDER_TAINT_KEY,
};
pub use virtual_node::{ShutdownHandle, VirtualNode};
