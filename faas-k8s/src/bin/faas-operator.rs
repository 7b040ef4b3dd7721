//! `faas-operator`: reconciles Function resources into Deployments and Services.
//!
//! ```text
//! faas-operator crd | kubectl apply -f -          # the Function resource
//! faas-operator rbac | kubectl apply -f -         # its least-privilege roles
//! faas-operator run --leader-elect                # reconcile until SIGTERM
//! ```
//!
//! Logs go to stderr through `tracing` (`RUST_LOG` filters, default `info`).

use std::process::ExitCode;

use clap::Parser;
use faas_k8s::operator::cli::{OperatorArgs, run};

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(OperatorArgs::parse()).await {
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
