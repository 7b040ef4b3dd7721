//! The virtual node of benchmark B6: `faas-vnode`'s command line, with an
//! `echo` function registered so that `--backend function` pods whose image
//! is `faas.dev/function/echo` serve it in-process.
//!
//! Its allocator counts the live heap; with `B6_HEAP_FILE` set, the figure is
//! written to that file twice a second for the bench to read.
//!
//! Built with the `dhat-heap` feature, it profiles its heap instead and writes
//! the profile (to `B6_DHAT_FILE`, default `dhat-heap.json`) on SIGUSR1, so
//! the bench can take it while the pods run: the live blocks at that moment,
//! by allocation site, are what the pods hold.

use std::alloc::System;
use std::process::ExitCode;

use bytes::Bytes;
use clap::Parser;
use faas_benches::b6::heap::{HEAP_FILE_ENV, report_to_file};
use faas_core::{FunctionDefinition, Registry};
use faas_k8s::node::cli::{VnodeArgs, run_with_functions};
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

#[cfg(not(feature = "dhat-heap"))]
#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;
#[cfg(feature = "dhat-heap")]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[cfg(feature = "dhat-heap")]
#[global_allocator]
static PROFILED: dhat::Alloc = dhat::Alloc;

async fn echo(body: Bytes) -> Bytes {
    body
}

/// Profiles the heap from now on and writes the profile when SIGUSR1 comes.
#[cfg(feature = "dhat-heap")]
fn profile_until_sigusr1() {
    let file = std::env::var_os("B6_DHAT_FILE").unwrap_or_else(|| "dhat-heap.json".into());
    // Async code nests deeply: keep enough frames to see whose future allocated.
    let profiler = dhat::Profiler::builder()
        .file_name(std::path::PathBuf::from(file))
        .trim_backtraces(Some(40))
        .build();
    let mut signal = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())
        .expect("a SIGUSR1 handler");
    tokio::spawn(async move {
        signal.recv().await;
        drop(profiler);
    });
}

#[tokio::main]
async fn main() -> ExitCode {
    #[cfg(feature = "dhat-heap")]
    profile_until_sigusr1();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Some(path) = std::env::var_os(HEAP_FILE_ENV) {
        tokio::spawn(report_to_file(ALLOCATOR, path.into()));
    }
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
