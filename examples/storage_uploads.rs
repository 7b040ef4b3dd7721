//! Storage: every complete file that lands in a directory is handled once,
//! with its path, size and SHA-256, even across restarts.
//!
//! ```sh
//! cargo run -p faas-examples --features events --example storage_uploads
//! cp some-file /tmp/uploads/   # in another shell
//! ```
//!
//! Handled files are recorded in `<dir>/.faas/handled.jsonl`; stop it, add
//! files, start it again: only the new ones are handled.

use std::error::Error;

use faas_core::{Json, Registry, function, functions};
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
    std::fs::create_dir_all("/tmp/uploads")?;
    // The function runtime watches the directory the function declares and
    // serves HTTP on PORT (8080).
    faas_triggers::serve(Registry::try_from_iter(functions![catalogue])?).await?;
    Ok(())
}
