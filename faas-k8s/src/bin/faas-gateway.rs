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
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(GatewayArgs::parse()).await {
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
