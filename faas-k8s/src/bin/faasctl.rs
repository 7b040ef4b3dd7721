//! `faasctl`: deploy, call and watch faas functions on a Kubernetes cluster.
//!
//! See `faasctl --help`, and [`faas_k8s::faasctl`] for the commands and exit codes.

use std::process::ExitCode;

use clap::Parser;
use faas_k8s::faasctl::{FaasctlArgs, run};

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    ExitCode::from(run(FaasctlArgs::parse()).await)
}
