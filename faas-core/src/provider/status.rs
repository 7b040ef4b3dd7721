//! [`FunctionStatus`]: what a platform reports about a deployed function.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::definition::TriggerSpec;

/// What a platform reports about a deployed function.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FunctionStatus {
    /// The deployed name.
    pub name: String,
    /// What runs: an image, or a catalogue entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The namespace, for platforms that have them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Replicas wanted.
    pub replicas: u32,
    /// Replicas ready to serve.
    pub available_replicas: u32,
    /// Calls finished (each attempt of a retried delivery counts).
    pub invocation_count: u64,
    /// Calls running now.
    pub in_flight: u64,
    /// Labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// What starts it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub triggers: Vec<TriggerSpec>,
    /// Whether it serves calls now.
    #[serde(default)]
    pub ready: bool,
    /// Why it is, or is not, ready, in the platform's words (e.g. `Progressing`,
    /// `SecretMissing`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What the platform says about its readiness, for a person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Whether it cannot become ready until something is fixed (as opposed to on its way).
    #[serde(default)]
    pub failed: bool,
}

impl FunctionStatus {
    /// A status of `name` with every count at zero.
    pub fn new(name: impl Into<String>) -> Self {
        FunctionStatus {
            name: name.into(),
            ..Self::default()
        }
    }

    /// Sets the image.
    #[must_use]
    pub fn with_image(mut self, image: impl Into<String>) -> Self {
        self.image = Some(image.into());
        self
    }

    /// Sets the namespace.
    #[must_use]
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Sets the wanted and available replicas; the function counts as ready when a replica is
    /// available (see [`with_readiness`](Self::with_readiness) to say otherwise).
    #[must_use]
    pub fn with_replicas(mut self, replicas: u32, available_replicas: u32) -> Self {
        self.replicas = replicas;
        self.available_replicas = available_replicas;
        self.ready = available_replicas > 0;
        self
    }

    /// Sets whether it is ready, why, and whether it is failing.
    #[must_use]
    pub fn with_readiness(
        mut self,
        ready: bool,
        reason: impl Into<String>,
        message: impl Into<String>,
        failed: bool,
    ) -> Self {
        self.ready = ready;
        self.reason = Some(reason.into());
        self.message = Some(message.into());
        self.failed = failed;
        self
    }

    /// Sets the call counts.
    #[must_use]
    pub fn with_invocations(mut self, invocation_count: u64, in_flight: u64) -> Self {
        self.invocation_count = invocation_count;
        self.in_flight = in_flight;
        self
    }

    /// Sets the labels.
    #[must_use]
    pub fn with_labels(mut self, labels: BTreeMap<String, String>) -> Self {
        self.labels = labels;
        self
    }

    /// Sets the annotations.
    #[must_use]
    pub fn with_annotations(mut self, annotations: BTreeMap<String, String>) -> Self {
        self.annotations = annotations;
        self
    }

    /// Sets the triggers.
    #[must_use]
    pub fn with_triggers(mut self, triggers: Vec<TriggerSpec>) -> Self {
        self.triggers = triggers;
        self
    }

    /// Whether it serves calls now.
    pub fn is_ready(&self) -> bool {
        self.ready
    }

    /// The function this status is about (the default namespace when the platform has none).
    pub fn reference(&self) -> super::FunctionRef {
        super::FunctionRef::new(
            self.namespace
                .clone()
                .unwrap_or_else(|| super::DEFAULT_NAMESPACE.to_owned()),
            self.name.clone(),
        )
    }
}
