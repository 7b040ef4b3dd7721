//! The `faasctl` command line, built inside the end-to-end crate so tests can run it as a child
//! process through `env!("CARGO_BIN_EXE_faas-test-faasctl")`.

use std::process::ExitCode;

use clap::Parser;
use faas_k8s::faasctl::{FaasctlArgs, run};

#[tokio::main]
async fn main() -> ExitCode {
    ExitCode::from(run(FaasctlArgs::parse()).await)
}
