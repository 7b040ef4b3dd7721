//! The virtual node: a kubelet without a machine.
//!
//! The virtual node registers a Node, keeps its Lease renewed, watches the Pods bound to it and runs
//! them on a [`PodBackend`](backend::PodBackend).

pub mod backend;
pub mod process;

pub use backend::{
    BackendError, Capacity, ContainerLaunch, ContainerRuntimeStatus, ContainerState, LogOptions,
    LogStream, PodBackend, PodEvents, PodKey, PodLaunch, PodRuntimeStatus, Terminated,
};
