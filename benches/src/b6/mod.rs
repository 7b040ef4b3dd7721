//! B6: pods to Running on a node, the node's memory per pod, and the peers
//! it is measured against in the same run.
//!
//! - [`pods`]: the pods every node gets (same spec; only the placement
//!   differs), created in a namespace of their own and timed from the first
//!   create request to the last pod observed Running.
//! - [`nodes`]: the node processes: faas-vnode's function backend (`b6-node`)
//!   and virtual-kubelet's mock provider, with their resident memory.
//! - [`heap`]: the live heap of the B6 binaries, counted by their allocator.
//!
//! The minimum-work baseline needs no node process: the bench's own client
//! creates each pod with `nodeName` preset and writes its status once
//! (Running, Ready), the least API work any node agent can do per pod
//! ([`pods::Placement::StatusWrittenByClient`]).

pub mod heap;
pub mod nodes;
pub mod pods;
