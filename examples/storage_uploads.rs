//! Storage: every complete file that lands in a directory is handled once,
//! with its path, size and SHA-256, even across restarts.
//!
//! ```sh
//! cargo run -p faas-examples --features events --example storage_uploads -- /tmp/uploads
//! cp some-file /tmp/uploads/   # in another shell
//! ```
//!
//! Handled files are recorded in `<dir>/.faas/handled.jsonl`; stop it, add
//! files, start it again: only the new ones are handled.

use std::error::Error;

use faas_core::{Json, LocalExecutor, Registry, TriggerSpec, function, functions};
use faas_triggers::storage::{StorageTrigger, StorageTriggerConfig};
use serde::Deserialize;

#[derive(Deserialize)]
struct Upload {
    path: String,
    size: u64,
    sha256: String,
}

/// Catalogues an upload.
#[function(trigger = storage(dir = "/tmp/uploads"))]
async fn catalogue(Json(upload): Json<Upload>) -> String {
    tracing::info!(path = %upload.path, size = upload.size, sha256 = %upload.sha256, "catalogued");
    format!("catalogued {}", upload.path)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    tracing_subscriber::fmt().init();
    let registry = Registry::try_from_iter(functions![catalogue])?;
    let mut executor = LocalExecutor::builder(registry.clone());
    for function in registry.iter() {
        for spec in &function.meta().triggers {
            if let TriggerSpec::Storage { dir } = spec {
                // The directory from the command line, else the declared one.
                let dir = std::env::args().nth(1).unwrap_or_else(|| dir.clone());
                std::fs::create_dir_all(&dir)?;
                tracing::info!(%dir, "watching");
                executor = executor.trigger(StorageTrigger::new(
                    function.name(),
                    StorageTriggerConfig::new(dir),
                )?);
            }
        }
    }
    executor.build().shutdown_on_signal().run().await?;
    Ok(())
}
