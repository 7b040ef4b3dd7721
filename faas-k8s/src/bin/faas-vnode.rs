//! `faas-vnode`: a virtual node that runs the Pods bound to it as local processes.
//!
//! ```text
//! faas-vnode --kubeconfig target/cluster/kubeconfig --node-name vnode-1 \
//!     --image-map images.conf --pod-cidr 127.1.0.0/16 \
//!     --kubelet-cert kubelet.crt --kubelet-key kubelet.key --client-ca ca.crt
//! ```
//!
//! Logs go to stderr through `tracing` (`RUST_LOG` filters, default `info`). SIGINT or SIGTERM stop
//! the node and leave its pods running for the next `faas-vnode` of the same name to adopt.

use std::process::ExitCode;

fn main() -> ExitCode {
    faas_k8s::node::cli::main()
}
