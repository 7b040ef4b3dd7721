//! [`ScaleTarget`]: what the autoscaler scales (a Function, or a Deployment),
//! read through a reflector and written through its scale subresource.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::json;

use super::policy::ScalingPolicy;
use crate::error::{Error, Result};
use crate::gateway::FunctionKey;

/// The annotation that orders which pods a ReplicaSet removes first (lowest first).
pub const POD_DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

/// What the autoscaler writes replicas to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ScaleTarget {
    /// The `Function` resource (`faas.rs/v1alpha1`): its scale subresource, with
    /// each Function's `spec.scaling` as its policy. The operator copies
    /// `spec.replicas` to the Deployment.
    #[default]
    Function,
    /// The Deployment of the same name, with the autoscaler's default policy
    /// (for functions deployed without the operator).
    Deployment,
}

impl ScaleTarget {
    /// The API resource of the target kind.
    pub fn api_resource(&self) -> ApiResource {
        match self {
            ScaleTarget::Function => ApiResource {
                group: "faas.rs".to_owned(),
                version: "v1alpha1".to_owned(),
                api_version: "faas.rs/v1alpha1".to_owned(),
                kind: "Function".to_owned(),
                plural: "functions".to_owned(),
            },
            ScaleTarget::Deployment => ApiResource::erase::<Deployment>(&()),
        }
    }

    /// The API of the target kind in `namespace`.
    pub(crate) fn api(&self, client: Client, namespace: &str) -> Api<DynamicObject> {
        Api::namespaced_with(client, namespace, &self.api_resource())
    }

    /// Writes `replicas` to the scale subresource of `key`.
    pub(crate) async fn write(
        &self,
        client: Client,
        key: &FunctionKey,
        replicas: u32,
    ) -> Result<()> {
        self.api(client, key.namespace())
            .patch_scale(
                key.name(),
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"replicas": replicas}})),
            )
            .await
            .map(|_| ())
            .map_err(|e| {
                Error::kube(
                    format!("scaling {} {key} to {replicas}", self.api_resource().kind),
                    e,
                )
            })
    }
}

/// The replicas a target object asks for: its `spec.replicas`, else what its kind defaults to
/// (a Function without one runs `max(1, spec.scaling.min)`, as the operator deploys it; a
/// Deployment one).
pub(crate) fn desired_replicas(object: &DynamicObject) -> Option<u32> {
    let count = |pointer: &str| {
        object
            .data
            .pointer(pointer)
            .and_then(serde_json::Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
    };
    if let Some(replicas) = count("/spec/replicas") {
        return Some(replicas);
    }
    object.data.get("spec")?;
    Some(count("/spec/scaling/min").unwrap_or(1).max(1))
}

/// The policy of a Function: `spec.scaling` (`min`, `max`, `targetConcurrency`,
/// `scaleToZeroGrace`) over `defaults`.
///
/// # Errors
///
/// [`Error::InvalidConfig`] when a field has the wrong type or the result is
/// inconsistent (`min > max`, a grace that is not a duration).
pub fn policy_from_spec(
    scaling: Option<&serde_json::Value>,
    defaults: &ScalingPolicy,
) -> Result<ScalingPolicy> {
    let mut builder = ScalingPolicy::builder()
        .min_replicas(defaults.min_replicas())
        .max_replicas(defaults.max_replicas())
        .target_concurrency(defaults.target_concurrency())
        .target_pending(defaults.target_pending())
        .scale_to_zero_grace(defaults.scale_to_zero_grace())
        .stable_window(defaults.stable_window())
        .panic_window(defaults.panic_window())
        .panic_threshold(defaults.panic_threshold())
        .max_scale_down_rate(defaults.max_scale_down_rate());
    let Some(scaling) = scaling.filter(|s| !s.is_null()) else {
        return builder.build();
    };
    let invalid = |field: &str, want: &str| {
        Error::InvalidConfig(format!("spec.scaling.{field} must be {want}"))
    };
    let count = |field: &str| -> Result<Option<u32>> {
        match scaling.get(field) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(value) => value
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| invalid(field, "a non-negative integer")),
        }
    };
    if let Some(min) = count("min")? {
        builder = builder.min_replicas(min);
    }
    if let Some(max) = count("max")? {
        builder = builder.max_replicas(max);
    }
    match scaling.get("targetConcurrency") {
        None | Some(serde_json::Value::Null) => {}
        Some(value) => {
            let target = value
                .as_f64()
                .ok_or_else(|| invalid("targetConcurrency", "a positive number"))?;
            builder = builder.target_concurrency(target);
        }
    }
    match scaling.get("scaleToZeroGrace") {
        None | Some(serde_json::Value::Null) => {}
        Some(value) => {
            // Written as Kubernetes writes durations ("30s", "1m30s", "1.5s").
            let grace: Duration = value
                .as_str()
                .and_then(|text| text.parse::<kube::core::Duration>().ok())
                .filter(|d| !d.is_negative())
                .map(Duration::from)
                .ok_or_else(|| invalid("scaleToZeroGrace", "a duration such as \"30s\""))?;
            builder = builder.scale_to_zero_grace(grace);
        }
    }
    builder.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_scaling_overrides_the_defaults() {
        let defaults = ScalingPolicy::default();
        let policy = policy_from_spec(
            Some(&json!({"min": 1, "max": 7, "targetConcurrency": 3, "scaleToZeroGrace": "1m30s"})),
            &defaults,
        )
        .unwrap();
        assert_eq!(policy.min_replicas(), 1);
        assert_eq!(policy.max_replicas(), 7);
        assert_eq!(policy.target_concurrency(), 3.0);
        assert_eq!(policy.scale_to_zero_grace(), Duration::from_secs(90));
        assert_eq!(policy.stable_window(), defaults.stable_window());
        assert_eq!(policy_from_spec(None, &defaults).unwrap(), defaults);

        for bad in [
            json!({"min": -1}),
            json!({"max": "many"}),
            json!({"targetConcurrency": "x"}),
            json!({"scaleToZeroGrace": "soon"}),
            json!({"scaleToZeroGrace": "-5s"}),
            json!({"min": 5, "max": 2}),
        ] {
            assert!(policy_from_spec(Some(&bad), &defaults).is_err(), "{bad}");
        }
    }

    #[test]
    fn replicas_of_an_object() {
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "faas.rs/v1alpha1", "kind": "Function",
            "metadata": {"name": "f"}, "spec": {"replicas": 3},
        }))
        .unwrap();
        assert_eq!(desired_replicas(&object), Some(3));
        // Created without replicas: the operator deploys max(1, scaling.min), and the decider
        // must see those as starting, not as an idle function to take to zero at once.
        for (spec, wanted) in [
            (json!({"image": "i"}), 1),
            (json!({"image": "i", "scaling": {"min": 0}}), 1),
            (json!({"image": "i", "scaling": {"min": 2}}), 2),
        ] {
            let object: DynamicObject = serde_json::from_value(json!({
                "apiVersion": "faas.rs/v1alpha1", "kind": "Function",
                "metadata": {"name": "f"}, "spec": spec,
            }))
            .unwrap();
            assert_eq!(desired_replicas(&object), Some(wanted), "{spec}");
        }
    }
}
