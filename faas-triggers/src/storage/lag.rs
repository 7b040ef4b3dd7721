//! [`StorageLag`]: the files not yet handled, for the autoscaler.

use async_trait::async_trait;
use faas_core::trigger::{Lag, LagSource};

use super::config::StorageTriggerConfig;
use super::journal;
use super::scan::{files, stat, version_of};

/// The work a storage trigger holds: the complete or incomplete files in
/// its directory whose version its journal does not record. It reads the
/// directory and the journal at each call, so it can run in another process
/// that sees the same volume.
#[derive(Debug)]
pub struct StorageLag {
    function: String,
    config: StorageTriggerConfig,
}

impl StorageLag {
    pub(crate) fn new(function: String, config: StorageTriggerConfig) -> Self {
        StorageLag { function, config }
    }
}

#[async_trait]
impl LagSource for StorageLag {
    fn function(&self) -> &str {
        &self.function
    }

    async fn lag(&self) -> Result<Lag, faas_core::Error> {
        let config = self.config.clone();
        let count = tokio::task::spawn_blocking(move || -> std::io::Result<u64> {
            let handled = journal::read(&config.journal())?;
            let pending = files(&config.dir, config.recursive)
                .into_iter()
                .filter_map(|path| {
                    let seen = stat(&path)?;
                    Some(version_of(&config.dir, &path, &seen))
                })
                .filter(|version| !handled.contains(version))
                .count();
            Ok(u64::try_from(pending).unwrap_or(u64::MAX))
        })
        .await
        .map_err(faas_core::Error::Join)?
        .map_err(|error| faas_core::Error::trigger("storage lag", error))?;
        Ok(Lag::pending(count))
    }
}
