//! The quickstart: a hello HTTP function and a cron tick on the local executor.
//!
//! ```sh
//! cargo run --example quickstart          # 127.0.0.1:8080
//! cargo run --example quickstart -- 3000  # or PORT=3000
//! ```
//!
//! The functions live in the `faas_examples::quickstart` module
//! (`examples/src/quickstart.rs`) so the integration tests run the very same
//! app; the README shows them. Then, from another terminal:
//!
//! ```sh
//! curl -s -X POST http://127.0.0.1:8080/hello -H 'content-type: application/json' -d '{"name":"world"}'
//! ```
//!
//! Ctrl-C stops accepting connections, lets the calls in flight finish and exits.

use std::process::ExitCode;

use faas_examples::{listen_addr, quickstart, report};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    // The program, not the library, decides where logs go: `RUST_LOG=debug` for more.
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();

    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{}", report(&error));
            ExitCode::FAILURE
        }
    }
}

async fn run() -> faas_examples::Result<()> {
    let app = quickstart::app(listen_addr()?).await?;
    tracing::info!(
        "try: curl -s -X POST http://{}/hello -H 'content-type: application/json' -d '{{\"name\":\"world\"}}'",
        app.local_addr()
    );
    app.shutdown_on_signal().run().await
}
