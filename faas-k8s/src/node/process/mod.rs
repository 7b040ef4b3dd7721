//! The process backend: every container an OS process, every pod its own loopback address.
//!
//! [`ProcessBackend`] is the [`PodBackend`](crate::node::PodBackend); [`ProcessBackendConfig`]
//! sets it up; [`ImageMap`] says which executable an image runs.
//!
//! This module also holds the pieces every backend of the node shares: [`AddressPool`] (pod
//! addresses, one pool for all backends of a node), [`EventHub`] (change notifications) and the
//! container status bookkeeping and log selection used by the function backend.

mod address;
mod adopt;
mod backend;
mod config;
mod events;
mod group;
mod image_map;
pub(crate) mod log;
mod pod;
pub(crate) mod procfs;
mod run;
mod spawn;
mod state;
pub(crate) mod status;

pub use address::{AddressPool, DEFAULT_POD_CIDR, Ipv4Cidr, ParseCidrError};
pub use backend::ProcessBackend;
pub use config::{DEFAULT_MAX_PODS, ProcessBackendConfig, ShutdownPolicy, machine_capacity};
pub use events::EventHub;
pub use image_map::ImageMap;

use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`, carrying on after a panic elsewhere poisoned it (the guarded data is always left
/// consistent: no code here panics half-way through an update).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A fresh, empty directory for one unit test.
#[cfg(test)]
pub(crate) fn test_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir()
        .join(format!("faas-k8s-test-{}", std::process::id()))
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a test directory");
    dir
}
