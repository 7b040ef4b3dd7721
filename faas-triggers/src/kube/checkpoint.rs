//! The checkpoint of a kube trigger: which version of which object it
//! handled, kept in a file or a ConfigMap so that a restart resumes there.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde::{Deserialize, Serialize};

use super::config::CheckpointStore;

/// The ConfigMap key that holds the checkpoint.
pub(crate) const CONFIG_MAP_KEY: &str = "checkpoint.json";
/// The field manager of the checkpoint's server-side apply.
const FIELD_MANAGER: &str = "faas-triggers";

/// One object whose latest change was handled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Handled {
    /// The object's namespace (`None` for a cluster-scoped object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) namespace: Option<String>,
    /// Its name.
    pub(crate) name: String,
    /// The resourceVersion whose change was handled.
    pub(crate) resource_version: String,
}

/// What a kube trigger handled: every live object at the version handled
/// (by uid), and the collection's resourceVersion up to which every change
/// received was handled (where a restart watches from).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Checkpoint {
    /// Watch from here on a restart; `None`: list instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) resource_version: Option<String>,
    /// The objects handled, by uid.
    #[serde(default)]
    pub(crate) objects: BTreeMap<String, Handled>,
}

/// Reads and writes a [`Checkpoint`] where the configuration says.
pub(crate) enum Store {
    Memory,
    File(PathBuf),
    ConfigMap {
        api: Box<Api<ConfigMap>>,
        name: String,
    },
}

impl Store {
    pub(crate) fn new(store: &CheckpointStore, client: &Client) -> Self {
        match store {
            CheckpointStore::Memory => Store::Memory,
            CheckpointStore::File(path) => Store::File(path.clone()),
            CheckpointStore::ConfigMap { namespace, name } => Store::ConfigMap {
                api: Box::new(Api::namespaced(client.clone(), namespace)),
                name: name.clone(),
            },
        }
    }

    /// Where it is, for logs and errors.
    pub(crate) fn describe(&self) -> String {
        match self {
            Store::Memory => "memory".to_owned(),
            Store::File(path) => format!("file {}", path.display()),
            Store::ConfigMap { api, name } => {
                format!("ConfigMap {}/{name}", api.namespace().unwrap_or_default())
            }
        }
    }

    /// The checkpoint stored (empty when there is none yet).
    pub(crate) async fn load(&self) -> Result<Checkpoint, String> {
        let text = match self {
            Store::Memory => return Ok(Checkpoint::default()),
            Store::File(path) => match tokio::fs::read_to_string(path).await {
                Ok(text) => text,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                    return Ok(Checkpoint::default());
                }
                Err(error) => return Err(error.to_string()),
            },
            Store::ConfigMap { api, name } => {
                match api.get_opt(name).await.map_err(|e| e.to_string())? {
                    None => return Ok(Checkpoint::default()),
                    Some(map) => match map.data.and_then(|mut data| data.remove(CONFIG_MAP_KEY)) {
                        Some(text) => text,
                        None => return Ok(Checkpoint::default()),
                    },
                }
            }
        };
        serde_json::from_str(&text).map_err(|error| format!("not a checkpoint: {error}"))
    }

    /// Replaces the stored checkpoint with `checkpoint`.
    pub(crate) async fn save(&self, checkpoint: &Checkpoint) -> Result<(), String> {
        match self {
            Store::Memory => Ok(()),
            Store::File(path) => {
                let text = serde_json::to_vec(checkpoint).map_err(|e| e.to_string())?;
                write_atomically(path, text)
                    .await
                    .map_err(|e| e.to_string())
            }
            Store::ConfigMap { api, name } => {
                let text = serde_json::to_string(checkpoint).map_err(|e| e.to_string())?;
                let patch = serde_json::json!({
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": { "name": name },
                    "data": { CONFIG_MAP_KEY: text },
                });
                api.patch(
                    name,
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &Patch::Apply(patch),
                )
                .await
                .map(drop)
                .map_err(|e| e.to_string())
            }
        }
    }
}

/// Writes `text` to a temporary file beside `path`, syncs it and renames it
/// over `path`: a reader sees the old checkpoint or the new one, never half.
async fn write_atomically(path: &Path, text: Vec<u8>) -> std::io::Result<()> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        use std::io::Write as _;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let mut temporary = path.clone().into_os_string();
        temporary.push(".tmp");
        let temporary = PathBuf::from(temporary);
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(&text)?;
        file.sync_data()?;
        std::fs::rename(&temporary, &path)
    })
    .await
    .map_err(std::io::Error::other)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_file_checkpoint_round_trips() {
        let dir =
            std::env::temp_dir().join(format!("faas-kube-checkpoint-{}", uuid::Uuid::new_v4()));
        let path = dir.join("nested").join("checkpoint.json");
        let store = Store::File(path.clone());
        assert_eq!(store.load().await.unwrap(), Checkpoint::default());
        let mut checkpoint = Checkpoint {
            resource_version: Some("42".into()),
            ..Checkpoint::default()
        };
        checkpoint.objects.insert(
            "uid-1".into(),
            Handled {
                namespace: Some("shop".into()),
                name: "web".into(),
                resource_version: "40".into(),
            },
        );
        store.save(&checkpoint).await.unwrap();
        assert_eq!(store.load().await.unwrap(), checkpoint);
        std::fs::write(&path, "{not json").unwrap();
        assert!(store.load().await.unwrap_err().contains("not a checkpoint"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
