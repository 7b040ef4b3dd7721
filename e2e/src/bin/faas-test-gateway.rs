//! The `faas-gateway` command line, built inside the end-to-end crate so tests can run it as a
//! child process (and kill it) through `env!("CARGO_BIN_EXE_faas-test-gateway")`.

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
        Err(error) => {
            eprintln!("faas-test-gateway: {error}");
            ExitCode::FAILURE
        }
    }
}
