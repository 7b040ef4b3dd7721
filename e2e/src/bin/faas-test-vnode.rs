//! The `faas-vnode` command line, built inside the end-to-end crate so tests can run a virtual node
//! as a child process (and kill it) through `env!("CARGO_BIN_EXE_faas-test-vnode")`.

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
            eprintln!("faas-test-vnode: {e}");
            ExitCode::FAILURE
        }
    }
}
