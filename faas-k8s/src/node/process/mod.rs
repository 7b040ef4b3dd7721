//! The process backend: every container an OS process, every pod its own loopback address.
//!
//! [`ProcessBackend`] is the [`PodBackend`](crate::node::PodBackend); [`ProcessBackendConfig`]
//! sets it up; [`ImageMap`] says which executable an image runs. What every backend shares (pod
//! addresses, change notifications, the pod table) lives in [`crate::node`].

mod adopt;
mod backend;
mod cgroup;
mod config;
mod exec;
mod group;
mod identity;
mod image_map;
mod inspect;
mod isolate;
pub(crate) mod log;
mod pod;
mod run;
mod spawn;
mod state;
mod stdin;
mod terminal;

pub use backend::ProcessBackend;
pub use config::{ProcessBackendConfig, ShutdownPolicy};
pub use image_map::ImageMap;
#[cfg(all(feature = "cli", test))]
pub(crate) use terminal::HOLDER_COMMAND as TERMINAL_HOLDER_COMMAND;
#[cfg(feature = "cli")]
pub(crate) use terminal::hold as hold_terminal;

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
