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
    faas_k8s::cli::init_logging("info");
    faas_k8s::cli::exit_code(run(OperatorArgs::parse()).await)
}
