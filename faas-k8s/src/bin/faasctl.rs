//! `faasctl`: deploy, call and watch faas functions on a Kubernetes cluster.
//!
//! See `faasctl --help`, and [`faas_k8s::faasctl`] for the commands and exit codes.

use std::process::ExitCode;

use clap::Parser;
use faas_k8s::faasctl::{FaasctlArgs, run};

#[tokio::main]
async fn main() -> ExitCode {
    faas_k8s::cli::init_logging("warn");
    ExitCode::from(run(FaasctlArgs::parse()).await)
}
