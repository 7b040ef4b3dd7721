//! A process's log: what a container writes, stored with a timestamp per line (see
//! [`crate::node::log`]), read back the way a kubelet serves `kubectl logs`.
//!
//! - [`file`]: the per-container log file with its size cap and one rotated predecessor.
//! - [`pump`]: copies a container's output pipe into its log file.
//! - [`read`]: reads a container's log files back, following them if asked.

pub(crate) mod file;
pub(crate) mod pump;
pub(crate) mod read;
