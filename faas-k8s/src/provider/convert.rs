//! Between faas-core's provider types and the `Function` resource.

use std::collections::BTreeMap;

use faas_core::{FunctionDeployment, FunctionStatus, ProviderError, TriggerSpec};
use kube::ResourceExt as _;

use crate::function::{
    Function, FunctionPolicy, FunctionScaling, FunctionSpec, FunctionTrigger, ReadyReason,
};

/// The Function resource a deployment asks for.
///
/// # Errors
///
/// [`ProviderError::Invalid`] when the deployment names no image or a number does not fit.
pub fn function_for(deployment: &FunctionDeployment) -> Result<Function, ProviderError> {
    let image = deployment
        .image
        .clone()
        .filter(|image| !image.is_empty())
        .ok_or_else(|| ProviderError::Invalid {
            message: format!(
                "deploying `{}` on Kubernetes needs an image (`--image` in faasctl)",
                deployment.name
            ),
        })?;
    let number = |value: u64, what: &str| {
        i32::try_from(value).map_err(|_| ProviderError::Invalid {
            message: format!("{what} {value} is too large"),
        })
    };
    let mut spec = FunctionSpec::new(image);
    for (name, value) in &deployment.env {
        spec = spec.with_env(name, value);
    }
    for secret in &deployment.secrets {
        spec = spec.with_secret(secret);
    }
    spec.triggers = deployment
        .triggers
        .iter()
        .cloned()
        .map(FunctionTrigger::from)
        .collect();
    if let Some(hints) = &deployment.scaling {
        let mut scaling =
            FunctionScaling::default().with_min(number(hints.min_replicas.into(), "min replicas")?);
        if let Some(max) = hints.max_replicas {
            scaling = scaling.with_max(number(max.into(), "max replicas")?);
        }
        if let Some(target) = hints.target_concurrency {
            scaling = scaling.with_target_concurrency(number(target.into(), "target concurrency")?);
        }
        spec = spec.with_scaling(scaling);
    }
    if deployment.timeout.is_some()
        || deployment.max_in_flight.is_some()
        || deployment.max_attempts.is_some()
    {
        let mut policy = FunctionPolicy::default();
        if let Some(timeout) = deployment.timeout {
            policy = policy.with_deadline(timeout);
        }
        if let Some(max_in_flight) = deployment.max_in_flight {
            policy = policy.with_max_in_flight(number(max_in_flight as u64, "max in flight")?);
        }
        if let Some(max_attempts) = deployment.max_attempts {
            policy = policy.with_max_attempts(number(max_attempts.into(), "max attempts")?);
        }
        spec = spec.with_policy(policy);
    }
    let mut function = Function::new(&deployment.name, spec);
    function.metadata.namespace = deployment.namespace.clone();
    if !deployment.labels.is_empty() {
        function.metadata.labels = Some(deployment.labels.clone());
    }
    if !deployment.annotations.is_empty() {
        function.metadata.annotations = Some(deployment.annotations.clone());
    }
    Ok(function)
}

/// Whether a `Ready` reason means the function will not become ready by itself.
fn is_failure(reason: &str) -> bool {
    ![
        ReadyReason::Ready,
        ReadyReason::Progressing,
        ReadyReason::ScaledToZero,
    ]
    .iter()
    .any(|ok| ok.as_str() == reason)
}

/// What a provider reports about `function`.
///
/// It is ready when the operator reports it `Ready` for its current generation with a
/// replica serving; a status the operator has not yet written for the current generation
/// counts as progressing.
pub fn status_of(function: &Function) -> FunctionStatus {
    let status = function.status.clone().unwrap_or_default();
    let current = status.observed_generation == function.metadata.generation;
    let wanted = function.spec.desired_replicas();
    let replicas = u32::try_from(if current {
        status.replicas.unwrap_or(wanted)
    } else {
        wanted
    })
    .unwrap_or(0);
    let available = u32::try_from(status.ready_replicas.unwrap_or(0)).unwrap_or(0);
    let triggers = function
        .spec
        .triggers
        .iter()
        .cloned()
        .filter_map(|trigger| TriggerSpec::try_from(trigger).ok())
        .collect();
    let mut report = FunctionStatus::new(function.name_any())
        .with_image(function.spec.image.clone())
        .with_namespace(function.namespace().unwrap_or_default())
        .with_replicas(replicas, available)
        .with_labels(function.labels().clone())
        .with_annotations(
            function
                .annotations()
                .iter()
                .filter(|(key, _)| !key.starts_with("kubectl.kubernetes.io/"))
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect::<BTreeMap<_, _>>(),
        )
        .with_triggers(triggers);
    let condition = status.ready_condition().filter(|_| current);
    report = match condition {
        Some(condition) => {
            let serving = condition.status == "True"
                && condition.reason == ReadyReason::Ready.as_str()
                && available > 0;
            report.with_readiness(
                serving,
                condition.reason.clone(),
                condition.message.clone(),
                is_failure(&condition.reason),
            )
        }
        None => report.with_readiness(
            false,
            ReadyReason::Progressing.as_str(),
            "the operator has not reported on this generation yet",
            false,
        ),
    };
    report
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use faas_core::ScalingHints;

    use super::*;
    use crate::function::{FunctionStatus as CrStatus, ready_condition};

    #[test]
    fn a_deployment_becomes_a_function() {
        let deployment = FunctionDeployment::new("resize")
            .with_image("registry.local/resize:1")
            .with_namespace("media")
            .with_env("WIDTH", "1024")
            .with_label("team", "media")
            .with_trigger(TriggerSpec::http("/resize"))
            .with_timeout(Duration::from_secs(10))
            .with_scaling(ScalingHints::default().with_max_replicas(5));
        let function = function_for(&deployment).unwrap();
        assert_eq!(function.metadata.namespace.as_deref(), Some("media"));
        assert_eq!(function.spec.env[0].name, "WIDTH");
        assert_eq!(function.spec.triggers, [FunctionTrigger::http("/resize")]);
        assert_eq!(function.spec.scaling.as_ref().unwrap().max, Some(5));
        let deadline = function.spec.policy.as_ref().unwrap().deadline.unwrap();
        assert_eq!(Duration::from(deadline), Duration::from_secs(10));
        let missing = function_for(&FunctionDeployment::new("x")).unwrap_err();
        assert!(matches!(missing, ProviderError::Invalid { .. }));
    }

    #[test]
    fn only_a_current_ready_condition_makes_it_ready() {
        let mut function = function_for(
            &FunctionDeployment::new("f")
                .with_image("i")
                .with_namespace("n"),
        )
        .unwrap();
        function.metadata.generation = Some(2);
        function.status = Some(CrStatus {
            conditions: vec![ready_condition(ReadyReason::Ready, "1 of 1", Some(2), None)],
            observed_generation: Some(2),
            replicas: Some(1),
            ready_replicas: Some(1),
            ..CrStatus::default()
        });
        assert!(status_of(&function).is_ready());
        function.metadata.generation = Some(3);
        let stale = status_of(&function);
        assert!(!stale.is_ready());
        assert_eq!(stale.reason.as_deref(), Some("Progressing"));
        function.status.as_mut().unwrap().observed_generation = Some(3);
        function.status.as_mut().unwrap().conditions = vec![ready_condition(
            ReadyReason::SecretMissing,
            "Secret creds not found",
            Some(3),
            None,
        )];
        let failing = status_of(&function);
        assert!(failing.failed && !failing.is_ready());
    }
}
