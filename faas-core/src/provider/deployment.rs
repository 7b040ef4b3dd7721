//! [`FunctionDeployment`]: what to deploy, as a platform receives it.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::definition::{ScalingHints, TriggerSpec};
use crate::policy::InvocationPolicy;

/// A request to deploy or update a function, as an OpenFaaS-style platform
/// receives it.
///
/// `image` names what runs: a container image for a cluster provider, a
/// catalogue entry for [`LocalProvider`](crate::LocalProvider) (the deployment's
/// name when absent). The policy fields override the function's own policy when set.
///
/// Durations are written as text (`"30s"`, `"1m 30s"`) in JSON.
///
/// ```
/// use std::time::Duration;
/// use faas_core::{FunctionDeployment, ScalingHints};
///
/// let deployment = FunctionDeployment::new("resize")
///     .with_image("registry.local/resize:1.2")
///     .with_env("MAX_WIDTH", "1024")
///     .with_label("team", "media")
///     .with_timeout(Duration::from_secs(10))
///     .with_scaling(ScalingHints::default().with_max_replicas(5));
/// let json = serde_json::to_value(&deployment).unwrap();
/// assert_eq!(json["timeout"], "10s");
/// let back: FunctionDeployment = serde_json::from_value(json).unwrap();
/// assert_eq!(back, deployment);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FunctionDeployment {
    /// The deployed name, unique on the platform.
    pub name: String,
    /// What runs: an image, or a catalogue entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The namespace, for platforms that have them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Environment variables.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Names of secrets to make available to the function.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    /// What starts it; when empty, the function's own triggers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub triggers: Vec<TriggerSpec>,
    /// How it should scale; when absent, the function's own hints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling: Option<ScalingHints>,
    /// The deadline of one call.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "duration_text"
    )]
    pub timeout: Option<Duration>,
    /// The limit of calls in flight (per replica).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<usize>,
    /// Attempts in all for event deliveries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
}

impl FunctionDeployment {
    /// A deployment of `name`, everything else unset.
    pub fn new(name: impl Into<String>) -> Self {
        FunctionDeployment {
            name: name.into(),
            ..Self::default()
        }
    }

    /// Sets the image (or catalogue entry).
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

    /// Adds an environment variable.
    #[must_use]
    pub fn with_env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(name.into(), value.into());
        self
    }

    /// Adds a label.
    #[must_use]
    pub fn with_label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(name.into(), value.into());
        self
    }

    /// Adds an annotation.
    #[must_use]
    pub fn with_annotation(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.annotations.insert(name.into(), value.into());
        self
    }

    /// Adds a secret.
    #[must_use]
    pub fn with_secret(mut self, secret: impl Into<String>) -> Self {
        self.secrets.push(secret.into());
        self
    }

    /// Adds a trigger.
    #[must_use]
    pub fn with_trigger(mut self, trigger: TriggerSpec) -> Self {
        self.triggers.push(trigger);
        self
    }

    /// Sets the scaling hints.
    #[must_use]
    pub fn with_scaling(mut self, scaling: ScalingHints) -> Self {
        self.scaling = Some(scaling);
        self
    }

    /// Sets the deadline of one call.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the limit of calls in flight.
    #[must_use]
    pub fn with_max_in_flight(mut self, max_in_flight: usize) -> Self {
        self.max_in_flight = Some(max_in_flight);
        self
    }

    /// Sets the attempts in all for event deliveries.
    #[must_use]
    pub fn with_max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = Some(max_attempts);
        self
    }

    /// The function this deployment names (the default namespace when it names none).
    pub fn reference(&self) -> super::FunctionRef {
        super::FunctionRef::new(
            self.namespace
                .clone()
                .unwrap_or_else(|| super::DEFAULT_NAMESPACE.to_owned()),
            self.name.clone(),
        )
    }

    /// `policy` with this deployment's overrides applied.
    pub fn apply_to_policy(&self, mut policy: InvocationPolicy) -> InvocationPolicy {
        if let Some(timeout) = self.timeout {
            policy = policy.with_timeout(timeout);
        }
        if let Some(max_in_flight) = self.max_in_flight {
            policy = policy.with_max_in_flight(max_in_flight);
        }
        if let Some(max_attempts) = self.max_attempts {
            let retry = policy.retry().clone().with_max_attempts(max_attempts);
            policy = policy.with_retry(retry);
        }
        policy
    }
}

/// `Option<Duration>` as human-readable text (`"1m 30s"`).
mod duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(duration) => {
                serializer.serialize_str(&humantime::format_duration(*duration).to_string())
            }
            None => serializer.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        match Option::<String>::deserialize(deserializer)? {
            Some(text) => humantime::parse_duration(&text).map(Some).map_err(|error| {
                serde::de::Error::custom(format!("invalid duration `{text}`: {error}"))
            }),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_apply_to_the_policy() {
        let deployment = FunctionDeployment::new("f")
            .with_timeout(Duration::from_secs(3))
            .with_max_in_flight(7)
            .with_max_attempts(9);
        let policy = deployment.apply_to_policy(InvocationPolicy::default());
        assert_eq!(policy.timeout(), Some(Duration::from_secs(3)));
        assert_eq!(policy.max_in_flight(), Some(7));
        assert_eq!(policy.retry().max_attempts, 9);
        let untouched = FunctionDeployment::new("f").apply_to_policy(InvocationPolicy::default());
        assert_eq!(untouched.timeout(), InvocationPolicy::default().timeout());
    }

    #[test]
    fn json_shape() {
        let json = serde_json::to_value(FunctionDeployment::new("f")).unwrap();
        assert_eq!(json, serde_json::json!({"name": "f"}));
        let parsed: FunctionDeployment = serde_json::from_str(
            r#"{"name":"g","timeout":"1m 30s","triggers":[{"kind":"cron","schedule":"@daily"}]}"#,
        )
        .unwrap();
        assert_eq!(parsed.timeout, Some(Duration::from_secs(90)));
        assert_eq!(parsed.triggers, [TriggerSpec::cron("@daily")]);
        let bad = serde_json::from_str::<FunctionDeployment>(r#"{"name":"g","timeout":"soon"}"#)
            .unwrap_err();
        assert!(bad.to_string().contains("soon"));
    }
}
