//! The `faas-gateway` command line, built inside the end-to-end crate so tests can run it as a
//! child process (and kill it) through `env!("CARGO_BIN_EXE_faas-test-gateway")`.

use std::process::ExitCode;

use clap::Parser;
use faas_k8s::gateway::cli::{GatewayArgs, run};

#[tokio::main]
async fn main() -> ExitCode {
    faas_k8s::cli::init_logging("info");
    faas_k8s::cli::exit_code(run(GatewayArgs::parse()).await)
}
