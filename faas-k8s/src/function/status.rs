//! [`FunctionStatus`]: what the operator reports on a `Function`.

use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::FUNCTION_LABEL;

/// The type of the condition that says whether a function serves calls.
pub const READY_CONDITION: &str = "Ready";

/// What the operator last saw of a function.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct FunctionStatus {
    /// The conditions; `Ready` says whether the function serves calls, and why not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Replicas wanted (the `scale` subresource's status).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Replicas ready to serve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// The label selector of the function's pods, as text (the `scale` subresource's selector).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// Where the function is served inside the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl FunctionStatus {
    /// The `Ready` condition, when reported.
    pub fn ready_condition(&self) -> Option<&Condition> {
        self.conditions
            .iter()
            .find(|condition| condition.type_ == READY_CONDITION)
    }

    /// Whether the `Ready` condition is `True`.
    pub fn is_ready(&self) -> bool {
        self.ready_condition()
            .is_some_and(|condition| condition.status == "True")
    }
}

/// Why a function is, or is not, ready: the `reason` of its `Ready` condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReadyReason {
    /// Every wanted replica is ready.
    Ready,
    /// The Deployment is rolling out or replicas are starting.
    Progressing,
    /// The function is scaled to zero: nothing serves until it is scaled up.
    ScaledToZero,
    /// The spec is valid for the API server but not for the operator.
    InvalidSpec,
    /// A Secret the function names does not exist.
    SecretMissing,
    /// A pod cannot start because its image cannot be pulled or run.
    ImageMissing,
    /// A ResourceQuota refuses the function's pods.
    QuotaExceeded,
    /// The operator is not allowed to write the function's objects.
    Forbidden,
    /// The Deployment failed to progress for another reason.
    DeploymentFailed,
}

impl ReadyReason {
    /// The reason as written in the condition (`CamelCase`).
    pub fn as_str(self) -> &'static str {
        match self {
            ReadyReason::Ready => "Ready",
            ReadyReason::Progressing => "Progressing",
            ReadyReason::ScaledToZero => "ScaledToZero",
            ReadyReason::InvalidSpec => "InvalidSpec",
            ReadyReason::SecretMissing => "SecretMissing",
            ReadyReason::ImageMissing => "ImageMissing",
            ReadyReason::QuotaExceeded => "QuotaExceeded",
            ReadyReason::Forbidden => "Forbidden",
            ReadyReason::DeploymentFailed => "DeploymentFailed",
        }
    }

    /// Whether a function with this reason is ready (`status: "True"`): it serves, or it is
    /// scaled to zero and served on demand.
    pub fn is_ready(self) -> bool {
        matches!(self, ReadyReason::Ready | ReadyReason::ScaledToZero)
    }

    /// Whether the reason is a failure a person must fix (as opposed to a state that passes by
    /// itself, like a rollout in progress).
    pub fn is_failure(self) -> bool {
        !matches!(
            self,
            ReadyReason::Ready | ReadyReason::Progressing | ReadyReason::ScaledToZero
        )
    }
}

impl fmt::Display for ReadyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `Ready` condition for `generation` with `reason` and `message`.
///
/// The transition time is kept from `previous` when the status has not changed, so a steady
/// function's condition stays byte-for-byte the same.
pub fn ready_condition(
    reason: ReadyReason,
    message: impl Into<String>,
    generation: Option<i64>,
    previous: Option<&Condition>,
) -> Condition {
    let status = if reason.is_ready() { "True" } else { "False" };
    let last_transition_time = previous
        .filter(|previous| previous.status == status)
        .map(|previous| previous.last_transition_time.clone())
        .unwrap_or_else(|| Time(k8s_openapi::jiff::Timestamp::now()));
    Condition {
        type_: READY_CONDITION.to_owned(),
        status: status.to_owned(),
        reason: reason.as_str().to_owned(),
        message: message.into(),
        observed_generation: generation,
        last_transition_time,
    }
}

/// The label selector of function `name`'s pods, as text: `faas.rs/function=<name>`.
pub fn function_selector(name: &str) -> String {
    format!("{FUNCTION_LABEL}={name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_condition_keeps_its_transition_time_while_its_status_holds() {
        let first = ready_condition(ReadyReason::Progressing, "starting", Some(1), None);
        let same = ready_condition(
            ReadyReason::DeploymentFailed,
            "stuck",
            Some(2),
            Some(&first),
        );
        assert_eq!(same.last_transition_time, first.last_transition_time);
        assert_eq!(same.status, "False");
        assert_eq!(same.reason, "DeploymentFailed");
        let status = FunctionStatus {
            conditions: vec![ready_condition(
                ReadyReason::Ready,
                "",
                Some(2),
                Some(&same),
            )],
            ..FunctionStatus::default()
        };
        assert!(status.is_ready());
        assert!(!ReadyReason::SecretMissing.is_ready());
        assert!(ReadyReason::SecretMissing.is_failure());
        assert!(!ReadyReason::Progressing.is_failure());
    }
}
