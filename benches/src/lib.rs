//! The benchmarks of faas and the pieces they share.
//!
//! Every benchmark measures a baseline in the same run and reports the ratio
//! between the two, so that the figures in `BENCHMARKS.md` compare like with
//! like on whatever machine ran them. `cargo xtask bench` runs them all.
//!
//! - [`load`]: a closed-loop HTTP/1.1 load generator with latency histograms.
//! - [`bare`]: the baseline servers (bare hyper 1.x).
//! - [`report`]: the result lines written for `BENCHMARKS.md`.
//! - [`traffic`]: a virtual node, functions and the gateway with the autoscaler (B4, B5, B7).

pub mod bare;
pub mod load;
pub mod report;
pub mod traffic;
