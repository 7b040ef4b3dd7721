//! `faas-gateway`: the gateway, the activator and the autoscaler in one process.
//!
//! ```text
//! faas-gateway --kubeconfig target/cluster/kubeconfig --listen 127.0.0.1:8080 \
//!     --basic-auth-dir /var/secrets/gateway
//! ```
//!
//! Logs go to stderr through `tracing` (`RUST_LOG` filters, default `info`). SIGINT or SIGTERM
//! stop accepting calls; held and running calls finish within `--drain-timeout`.

use std::process::ExitCode;

use clap::Parser;
use faas_k8s::gateway::cli::{GatewayArgs, run};

#[tokio::main]
async fn main() -> ExitCode {
    faas_k8s::cli::init_logging("info");
    faas_k8s::cli::exit_code(run(GatewayArgs::parse()).await)
}
