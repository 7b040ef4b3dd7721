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

use clap::Parser;
use faas_k8s::node::cli::{VnodeArgs, run};

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(VnodeArgs::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut message = e.to_string();
            let mut source = e.source();
            while let Some(s) = source {
                message.push_str(": ");
                message.push_str(&s.to_string());
                source = s.source();
            }
            tracing::error!("{message}");
            ExitCode::FAILURE
        }
    }
}
