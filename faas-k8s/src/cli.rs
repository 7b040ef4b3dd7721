//! What every binary of this crate does around its own work (feature `cli`): logs to stderr
//! through `tracing`, filtered by `RUST_LOG`, and a failure reported with its causes on one line
//! and exit status 1.
//!
//! ```no_run
//! use std::process::ExitCode;
//!
//! # async fn run() -> faas_k8s::Result<()> { Ok(()) }
//! #[tokio::main]
//! async fn main() -> ExitCode {
//!     faas_k8s::cli::init_logging("info");
//!     faas_k8s::cli::exit_code(run().await)
//! }
//! ```

use std::process::ExitCode;

use crate::error::ErrorChain;

/// Installs the process's log subscriber: stderr, `RUST_LOG` when set, else `default` (such as
/// `"info"`). Only binaries call this; a library never installs a subscriber.
///
/// # Panics
///
/// When a global subscriber is already installed.
pub fn init_logging(default: &str) {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default)),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// Success, or the error logged with its causes ([`ErrorChain`]) and exit status 1.
pub fn exit_code<E: Into<Box<dyn std::error::Error>>>(result: Result<(), E>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let e = e.into();
            tracing::error!("{}", ErrorChain(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}
