//! The `faas-vnode` command line, built inside the end-to-end crate so tests can run a virtual node
//! as a child process (and kill it) through `env!("CARGO_BIN_EXE_faas-test-vnode")`.

use std::process::ExitCode;

use clap::Parser;
use faas_k8s::node::cli::{VnodeArgs, run};

#[tokio::main]
async fn main() -> ExitCode {
    faas_k8s::cli::init_logging("info");
    faas_k8s::cli::exit_code(run(VnodeArgs::parse()).await)
}
