//! The virtual node of benchmark B6: `faas-vnode`'s command line, with an
//! `echo` function registered so that `--backend function` pods whose image
//! is `faas.dev/function/echo` serve it in-process.

use std::process::ExitCode;

use bytes::Bytes;
use clap::Parser;
use faas_core::{FunctionDefinition, Registry};
use faas_k8s::node::cli::{VnodeArgs, run_with_functions};

async fn echo(body: Bytes) -> Bytes {
    body
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let registry = Registry::new();
    if let Err(err) = registry.register(FunctionDefinition::from_handler("echo", echo)) {
        eprintln!("b6-node: {err}");
        return ExitCode::FAILURE;
    }
    match run_with_functions(VnodeArgs::parse(), registry).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("b6-node: {err}");
            ExitCode::FAILURE
        }
    }
}
