//! [`KubeTriggerConfig`]: which Kubernetes objects a kube trigger watches,
//! and where it keeps its checkpoint.

use std::path::PathBuf;

use crate::Result;
use crate::event::invalid;

/// The kinds of change a kube trigger delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// An object appeared (created, or first seen).
    Added,
    /// An object changed.
    Modified,
    /// An object was removed.
    Deleted,
}

impl ChangeKind {
    /// Every kind, in the order they happen to one object.
    pub const ALL: [ChangeKind; 3] = [ChangeKind::Added, ChangeKind::Modified, ChangeKind::Deleted];

    /// The lower-case name: `added`, `modified` or `deleted`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Modified => "modified",
            ChangeKind::Deleted => "deleted",
        }
    }
}

/// Where a kube trigger records what it handled, so that it resumes there
/// after a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckpointStore {
    /// Nowhere: every start lists the objects and delivers each as `added`.
    Memory,
    /// A JSON file, replaced atomically at each update.
    File(PathBuf),
    /// The key `checkpoint.json` of a ConfigMap (created when missing).
    ConfigMap {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
}

impl CheckpointStore {
    /// Parses `file:/PATH` or `configmap:NAMESPACE/NAME` (or `memory`), the
    /// form of the runtime's `FAAS_KUBE_CHECKPOINT`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) naming `key`.
    pub fn parse(key: &str, text: &str) -> Result<Self> {
        let text = text.trim();
        if text == "memory" {
            return Ok(CheckpointStore::Memory);
        }
        if let Some(path) = text.strip_prefix("file:").filter(|p| !p.is_empty()) {
            return Ok(CheckpointStore::File(PathBuf::from(path)));
        }
        if let Some((namespace, name)) = text
            .strip_prefix("configmap:")
            .and_then(|rest| rest.split_once('/'))
            .filter(|(ns, name)| is_dns_label(ns) && is_dns_subdomain(name))
        {
            return Ok(CheckpointStore::ConfigMap {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
            });
        }
        Err(invalid(
            key,
            text,
            "`file:/path/to/checkpoint.json`, `configmap:NAMESPACE/NAME` or `memory`",
        ))
    }
}

/// The settings of a [`KubeTrigger`](super::KubeTrigger).
///
/// | setting | default | what |
/// |---|---|---|
/// | `api_version`, `kind` | (required) | the resource watched: `v1` `ConfigMap`, `apps/v1` `Deployment`, a custom resource's `group/version` and kind; its plural is found by discovery |
/// | [`namespace`](Self::with_namespace) | all namespaces | the namespace watched |
/// | [`label_selector`](Self::with_label_selector) | none | e.g. `app=web,tier!=cache` |
/// | [`field_selector`](Self::with_field_selector) | none | e.g. `metadata.name=web` |
/// | [`changes`](Self::with_changes) | all three | which of added, modified, deleted reach the function (the others are recorded as handled) |
/// | [`checkpoint`](Self::with_checkpoint) | [`CheckpointStore::Memory`] | where what was handled is recorded |
/// | [`max_in_flight`](Self::with_max_in_flight) | the function's policy | calls at once (changes of one object always one after the other) |
///
/// ```
/// use faas_triggers::kube::{CheckpointStore, KubeTriggerConfig};
///
/// let config = KubeTriggerConfig::new("apps/v1", "Deployment")
///     .with_namespace("shop")
///     .with_label_selector("app=web")
///     .with_checkpoint(CheckpointStore::File("/var/lib/faas/deployments.json".into()));
/// config.validate()?;
/// assert_eq!(config.group(), "apps");
///
/// let error = KubeTriggerConfig::new("apps/v1/extra", "Deployment").validate().unwrap_err();
/// assert!(error.to_string().contains("kube.api_version"));
/// # Ok::<(), faas_triggers::Error>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
#[must_use]
pub struct KubeTriggerConfig {
    pub(crate) api_version: String,
    pub(crate) kind: String,
    pub(crate) namespace: Option<String>,
    pub(crate) label_selector: Option<String>,
    pub(crate) field_selector: Option<String>,
    pub(crate) changes: Vec<ChangeKind>,
    pub(crate) checkpoint: CheckpointStore,
    pub(crate) max_in_flight: Option<usize>,
}

impl KubeTriggerConfig {
    /// Watches the objects of `kind` in `api_version` (`v1` for the core
    /// group, else `group/version`).
    pub fn new(api_version: impl Into<String>, kind: impl Into<String>) -> Self {
        KubeTriggerConfig {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: None,
            label_selector: None,
            field_selector: None,
            changes: ChangeKind::ALL.to_vec(),
            checkpoint: CheckpointStore::Memory,
            max_in_flight: None,
        }
    }

    /// Watches one namespace only.
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Watches only the objects whose labels match `selector`.
    pub fn with_label_selector(mut self, selector: impl Into<String>) -> Self {
        self.label_selector = Some(selector.into());
        self
    }

    /// Watches only the objects whose fields match `selector`.
    pub fn with_field_selector(mut self, selector: impl Into<String>) -> Self {
        self.field_selector = Some(selector.into());
        self
    }

    /// Delivers only these kinds of change.
    pub fn with_changes(mut self, changes: impl IntoIterator<Item = ChangeKind>) -> Self {
        self.changes = changes.into_iter().collect();
        self
    }

    /// Records what was handled in `store`.
    pub fn with_checkpoint(mut self, store: CheckpointStore) -> Self {
        self.checkpoint = store;
        self
    }

    /// Runs at most `max` calls at once.
    pub fn with_max_in_flight(mut self, max: usize) -> Self {
        self.max_in_flight = Some(max);
        self
    }

    /// The API group (empty for the core group).
    pub fn group(&self) -> &str {
        self.api_version
            .split_once('/')
            .map_or("", |(group, _)| group)
    }

    /// The API version within the group (`v1`, `v1beta1`, ...).
    pub fn version(&self) -> &str {
        self.api_version
            .split_once('/')
            .map_or(self.api_version.as_str(), |(_, version)| version)
    }

    /// The kind watched.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The namespace watched, `None` for all.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// Where the checkpoint is kept.
    pub fn checkpoint(&self) -> &CheckpointStore {
        &self.checkpoint
    }

    /// Checks every setting that can be checked without a cluster; the
    /// kind's existence and the selectors' grammar are checked by the API
    /// server when the trigger starts.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) naming the
    /// setting (`kube.api_version`, `kube.kind`, `kube.namespace`,
    /// `kube.label_selector`, `kube.field_selector`, `kube.changes`,
    /// `kube.max_in_flight`).
    pub fn validate(&self) -> Result<()> {
        let parts: Vec<&str> = self.api_version.split('/').collect();
        let well_formed = match parts.as_slice() {
            [version] => is_version(version),
            [group, version] => is_dns_subdomain(group) && is_version(version),
            _ => false,
        };
        if !well_formed {
            return Err(invalid(
                "kube.api_version",
                &self.api_version,
                "`v1` for the core group or `GROUP/VERSION`, e.g. `apps/v1`",
            ));
        }
        let mut chars = self.kind.chars();
        if !chars.next().is_some_and(|c| c.is_ascii_uppercase())
            || !chars.all(|c| c.is_ascii_alphanumeric())
        {
            return Err(invalid(
                "kube.kind",
                &self.kind,
                "a kind in CamelCase as it appears in `kind:`, e.g. `Deployment` (not the plural)",
            ));
        }
        if let Some(namespace) = &self.namespace
            && !is_dns_label(namespace)
        {
            return Err(invalid(
                "kube.namespace",
                namespace,
                "a namespace name: lower-case letters, digits and `-`, at most 63",
            ));
        }
        for (key, selector) in [
            ("kube.label_selector", &self.label_selector),
            ("kube.field_selector", &self.field_selector),
        ] {
            if let Some(selector) = selector
                && selector.trim().is_empty()
            {
                return Err(invalid(
                    key,
                    selector,
                    "empty: leave the selector out to watch every object",
                ));
            }
        }
        if self.changes.is_empty() {
            return Err(invalid(
                "kube.changes",
                "[]",
                "at least one of added, modified, deleted",
            ));
        }
        if self.max_in_flight == Some(0) {
            return Err(invalid("kube.max_in_flight", "0", "at least 1"));
        }
        Ok(())
    }
}

/// `v1`, `v2beta1`, `v1alpha3`.
fn is_version(text: &str) -> bool {
    let Some(rest) = text.strip_prefix('v') else {
        return false;
    };
    let digits = rest.chars().take_while(char::is_ascii_digit).count();
    let tail = &rest[digits..];
    digits > 0
        && (tail.is_empty()
            || ["alpha", "beta"].iter().any(|stage| {
                tail.strip_prefix(stage)
                    .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
            }))
}

/// An RFC 1123 label: what a namespace's name is.
pub(crate) fn is_dns_label(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 63
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !text.starts_with('-')
        && !text.ends_with('-')
}

/// An RFC 1123 subdomain: what a group's or an object's name is.
fn is_dns_subdomain(text: &str) -> bool {
    text.len() <= 253 && text.split('.').all(is_dns_label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions_and_kinds() {
        for good in ["v1", "apps/v1", "faas.rs/v1alpha1", "batch/v2beta1"] {
            KubeTriggerConfig::new(good, "Thing").validate().unwrap();
        }
        for bad in [
            "",
            "apps",
            "apps/",
            "/v1",
            "Apps/v1",
            "apps/v1/x",
            "apps/1",
            "v1gamma1",
        ] {
            let error = KubeTriggerConfig::new(bad, "Thing").validate().unwrap_err();
            assert!(
                error.to_string().contains("kube.api_version"),
                "{bad}: {error}"
            );
        }
        for bad in ["", "deployments", "Deploy-ment"] {
            let error = KubeTriggerConfig::new("v1", bad).validate().unwrap_err();
            assert!(error.to_string().contains("kube.kind"), "{bad}: {error}");
        }
        let config = KubeTriggerConfig::new("v1", "ConfigMap");
        assert_eq!((config.group(), config.version()), ("", "v1"));
    }

    #[test]
    fn other_settings() {
        let base = || KubeTriggerConfig::new("v1", "ConfigMap");
        let cases = [
            (base().with_namespace("Shop"), "kube.namespace"),
            (base().with_label_selector(" "), "kube.label_selector"),
            (base().with_field_selector(""), "kube.field_selector"),
            (base().with_changes([]), "kube.changes"),
            (base().with_max_in_flight(0), "kube.max_in_flight"),
        ];
        for (config, key) in cases {
            let error = config.validate().unwrap_err().to_string();
            assert!(error.contains(key), "{key}: {error}");
        }
    }

    #[test]
    fn checkpoint_stores_parse() {
        assert_eq!(
            CheckpointStore::parse("k", "file:/var/lib/c.json").unwrap(),
            CheckpointStore::File("/var/lib/c.json".into())
        );
        assert_eq!(
            CheckpointStore::parse("k", "configmap:shop/deployments-seen").unwrap(),
            CheckpointStore::ConfigMap {
                namespace: "shop".into(),
                name: "deployments-seen".into()
            }
        );
        assert_eq!(
            CheckpointStore::parse("k", "memory").unwrap(),
            CheckpointStore::Memory
        );
        for bad in ["file:", "configmap:shop", "configmap:Shop/x", "/tmp/x"] {
            let error = CheckpointStore::parse("FAAS_KUBE_CHECKPOINT", bad).unwrap_err();
            assert!(error.to_string().contains("FAAS_KUBE_CHECKPOINT"), "{bad}");
        }
    }
}
