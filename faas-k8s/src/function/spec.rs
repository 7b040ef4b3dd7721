//! The parts of a [`FunctionSpec`]: invocation policy, scaling, placement, and the spec's builders.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{EnvVar, ResourceRequirements};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{FunctionSpec, FunctionTrigger};

/// The port the function runtime serves in every function pod.
pub const FUNCTION_PORT: i32 = 8080;
/// The name of the function's port, on the container and on the Service.
pub const FUNCTION_PORT_NAME: &str = "http";
/// How long a stopping replica waits for calls in flight when the spec does not say.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The CEL rule every duration field carries: a Go-style duration (`30s`, `1m30s`, `500ms`).
pub(crate) const DURATION_RULE: &str = "self.matches('^([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+$')";

/// How a function is called: the deadline of one call, attempts for event deliveries, the
/// limit of calls in flight per replica, and where failed events go.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct FunctionPolicy {
    /// The deadline of one call (a Go-style duration such as `10s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": DURATION_RULE,
        "message": "policy.deadline must be a duration such as 10s, 1m30s or 500ms"
    }]))]
    pub deadline: Option<kube::core::Duration>,
    /// Attempts in all for an event delivery (1 = no retry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_attempts: Option<i32>,
    /// The delay after the first failed attempt, doubling after each further one (a Go-style
    /// duration such as `500ms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": DURATION_RULE,
        "message": "policy.backoff must be a duration such as 500ms, 2s or 1m"
    }]))]
    pub backoff: Option<kube::core::Duration>,
    /// The limit of calls in flight per replica; calls beyond it are refused with 429.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_in_flight: Option<i32>,
    /// Where events that failed every attempt go (a queue subject or URL the trigger
    /// understands).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter: Option<String>,
}

impl FunctionPolicy {
    /// Sets the deadline of one call.
    #[must_use]
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline.into());
        self
    }

    /// Sets the attempts in all for an event delivery.
    #[must_use]
    pub fn with_max_attempts(mut self, max_attempts: i32) -> Self {
        self.max_attempts = Some(max_attempts);
        self
    }

    /// Sets the delay after the first failed attempt.
    #[must_use]
    pub fn with_backoff(mut self, backoff: Duration) -> Self {
        self.backoff = Some(backoff.into());
        self
    }

    /// Sets the limit of calls in flight per replica.
    #[must_use]
    pub fn with_max_in_flight(mut self, max_in_flight: i32) -> Self {
        self.max_in_flight = Some(max_in_flight);
        self
    }

    /// Sets the dead-letter destination.
    #[must_use]
    pub fn with_dead_letter(mut self, dead_letter: impl Into<String>) -> Self {
        self.dead_letter = Some(dead_letter.into());
        self
    }
}

/// How a function scales: the autoscaler keeps the replicas between `min` and `max`, aiming for
/// `targetConcurrency` calls in flight per replica, and scales to zero (when `min` is 0) after
/// `scaleToZeroGrace` without calls.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "!has(self.min) || !has(self.max) || self.min <= self.max",
    "message": "scaling.min must not be greater than scaling.max"
}]))]
#[non_exhaustive]
pub struct FunctionScaling {
    /// Replicas kept without traffic; 0 lets the function scale to zero.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub min: Option<i32>,
    /// The most replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max: Option<i32>,
    /// Calls in flight per replica the autoscaler aims for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub target_concurrency: Option<i32>,
    /// How long a function with `min` 0 stays up without calls (a Go-style duration such as
    /// `30s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": DURATION_RULE,
        "message": "scaling.scaleToZeroGrace must be a duration such as 30s, 1m30s or 500ms"
    }]))]
    pub scale_to_zero_grace: Option<kube::core::Duration>,
}

impl FunctionScaling {
    /// Sets the replicas kept without traffic.
    #[must_use]
    pub fn with_min(mut self, min: i32) -> Self {
        self.min = Some(min);
        self
    }

    /// Sets the most replicas.
    #[must_use]
    pub fn with_max(mut self, max: i32) -> Self {
        self.max = Some(max);
        self
    }

    /// Sets the calls in flight per replica to aim for.
    #[must_use]
    pub fn with_target_concurrency(mut self, target_concurrency: i32) -> Self {
        self.target_concurrency = Some(target_concurrency);
        self
    }

    /// Sets how long the function stays up without calls before scaling to zero.
    #[must_use]
    pub fn with_scale_to_zero_grace(mut self, grace: Duration) -> Self {
        self.scale_to_zero_grace = Some(grace.into());
        self
    }
}

/// Where a function's pods run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Placement {
    /// On any node, the virtual node included: the pods tolerate the virtual node's taint.
    #[default]
    Any,
    /// Only on a virtual node: the pods tolerate its taint and select `type: virtual-kubelet`.
    VirtualNode,
}

impl FunctionSpec {
    /// A spec that runs `image`, everything else unset.
    pub fn new(image: impl Into<String>) -> Self {
        FunctionSpec {
            image: image.into(),
            command: Vec::new(),
            args: Vec::new(),
            env: Vec::new(),
            env_from: Vec::new(),
            secrets: Vec::new(),
            resources: None,
            ports: Vec::new(),
            triggers: Vec::new(),
            policy: None,
            replicas: None,
            scaling: None,
            placement: None,
            drain_timeout: None,
            pod_labels: BTreeMap::new(),
            pod_annotations: BTreeMap::new(),
        }
    }

    /// Sets the command, replacing the image's entrypoint.
    #[must_use]
    pub fn with_command(mut self, command: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.command = command.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the arguments.
    #[must_use]
    pub fn with_args(mut self, args: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    /// Adds an environment variable with a literal value.
    #[must_use]
    pub fn with_env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push(EnvVar {
            name: name.into(),
            value: Some(value.into()),
            value_from: None,
        });
        self
    }

    /// Adds a Secret whose keys become environment variables.
    #[must_use]
    pub fn with_secret(mut self, secret: impl Into<String>) -> Self {
        self.secrets.push(secret.into());
        self
    }

    /// Sets the container's compute resources.
    #[must_use]
    pub fn with_resources(mut self, resources: ResourceRequirements) -> Self {
        self.resources = Some(resources);
        self
    }

    /// Adds a trigger.
    #[must_use]
    pub fn with_trigger(mut self, trigger: FunctionTrigger) -> Self {
        self.triggers.push(trigger);
        self
    }

    /// Sets the invocation policy.
    #[must_use]
    pub fn with_policy(mut self, policy: FunctionPolicy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Sets the replicas wanted.
    #[must_use]
    pub fn with_replicas(mut self, replicas: i32) -> Self {
        self.replicas = Some(replicas);
        self
    }

    /// Sets the scaling.
    #[must_use]
    pub fn with_scaling(mut self, scaling: FunctionScaling) -> Self {
        self.scaling = Some(scaling);
        self
    }

    /// Sets where the pods run.
    #[must_use]
    pub fn with_placement(mut self, placement: Placement) -> Self {
        self.placement = Some(placement);
        self
    }

    /// Sets how long a stopping replica waits for calls in flight.
    #[must_use]
    pub fn with_drain_timeout(mut self, drain_timeout: Duration) -> Self {
        self.drain_timeout = Some(drain_timeout.into());
        self
    }

    /// Adds a label to the pods.
    #[must_use]
    pub fn with_pod_label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.pod_labels.insert(name.into(), value.into());
        self
    }

    /// Adds an annotation to the pods.
    #[must_use]
    pub fn with_pod_annotation(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        self.pod_annotations.insert(name.into(), value.into());
        self
    }

    /// The replicas the Deployment should have: `replicas`, else `scaling.min`, else 1.
    pub fn desired_replicas(&self) -> i32 {
        self.replicas.unwrap_or_else(|| {
            self.scaling
                .as_ref()
                .and_then(|scaling| scaling.min)
                .unwrap_or(1)
                .max(1)
        })
    }

    /// How long a stopping replica waits for calls in flight.
    pub fn drain_timeout(&self) -> Duration {
        self.drain_timeout
            .map_or(DEFAULT_DRAIN_TIMEOUT, Duration::from)
    }

    /// Where the pods run.
    pub fn placement(&self) -> Placement {
        self.placement.unwrap_or_default()
    }
}
