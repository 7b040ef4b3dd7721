//! The benchmarks of faas and the pieces they share.
//!
//! Every benchmark measures a baseline in the same run and reports the ratio
//! between the two, so that the figures in `BENCHMARKS.md` compare like with
//! like on whatever machine ran them. `cargo xtask bench` runs them all.
//!
//! - [`load`]: a closed-loop HTTP/1.1 load generator with latency histograms.
//! - [`bare`]: the baseline servers (bare hyper 1.x).
//! - [`report`]: the result lines written for `BENCHMARKS.md`.
//! - [`control_plane`]: what a phase cost the control plane (CPU time, API requests).
//! - [`b6`]: the pods and node processes of B6 (faas-vnode, virtual-kubelet's mock).
//! - [`traffic`]: a virtual node, functions and the gateway with the autoscaler (B4, B5, B7).

#[cfg(feature = "cluster")]
pub mod b6;
pub mod bare;
#[cfg(feature = "cluster")]
pub mod control_plane;
pub mod load;
#[cfg(feature = "queues")]
pub mod queue;
pub mod report;
#[cfg(feature = "cluster")]
pub mod traffic;
