//! From what the cluster shows to a `Function`'s status: the `Ready` condition's reason and
//! message, replicas, selector and URL.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;

use super::resources::function_url;
use crate::function::{Function, FunctionStatus, ReadyReason, function_selector, ready_condition};

/// What the reconciler learnt before judging readiness.
#[derive(Debug, Default)]
pub(crate) struct Observed<'a> {
    /// The function's Deployment, when it exists.
    pub(crate) deployment: Option<&'a Deployment>,
    /// The function's pods.
    pub(crate) pods: Vec<&'a Pod>,
    /// Secrets the function names that do not exist.
    pub(crate) missing_secrets: Vec<String>,
    /// Why the operator could not write the function's objects, when it could not.
    pub(crate) refused: Option<(ReadyReason, String)>,
    /// Whether the function's Service is not there yet (its create still in flight): a Function
    /// is not Ready before it can be called through its Service.
    pub(crate) service_missing: bool,
}

/// Container waiting reasons that mean the image cannot run.
const IMAGE_REASONS: [&str; 4] = [
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
];

/// The first image failure among `pods`: the waiting reason and its message.
fn image_failure(pods: &[&Pod]) -> Option<String> {
    pods.iter()
        .flat_map(|pod| {
            pod.status
                .iter()
                .flat_map(|status| status.container_statuses.iter().flatten())
        })
        .find_map(|status| {
            let waiting = status.state.as_ref()?.waiting.as_ref()?;
            let reason = waiting.reason.as_deref()?;
            IMAGE_REASONS.contains(&reason).then(|| {
                format!(
                    "{reason}: {}",
                    waiting
                        .message
                        .as_deref()
                        .unwrap_or("the image cannot be run")
                )
            })
        })
}

/// The reason and message of the `Ready` condition.
pub(crate) fn judge(function: &Function, observed: &Observed<'_>) -> (ReadyReason, String) {
    let name = function.metadata.name.as_deref().unwrap_or_default();
    if let Some((reason, message)) = &observed.refused {
        return (*reason, message.clone());
    }
    if !observed.missing_secrets.is_empty() {
        return (
            ReadyReason::SecretMissing,
            format!(
                "Secret {} not found in namespace {}: create it, or remove it from spec.secrets",
                observed.missing_secrets.join(", "),
                function.metadata.namespace.as_deref().unwrap_or_default()
            ),
        );
    }
    if let Some(message) = image_failure(&observed.pods) {
        return (ReadyReason::ImageMissing, message);
    }
    let Some(deployment) = observed.deployment else {
        return (
            ReadyReason::Progressing,
            format!("creating Deployment {name}"),
        );
    };
    let status = deployment.status.clone().unwrap_or_default();
    for condition in status.conditions.iter().flatten() {
        let message = condition.message.clone().unwrap_or_default();
        if condition.type_.as_deref() == Some("ReplicaFailure")
            && condition.status.as_deref() == Some("True")
        {
            let reason = if message.contains("exceeded quota") || message.contains("quota") {
                ReadyReason::QuotaExceeded
            } else {
                ReadyReason::DeploymentFailed
            };
            return (reason, message);
        }
        if condition.type_.as_deref() == Some("Progressing")
            && condition.status.as_deref() == Some("False")
            && condition.reason.as_deref() == Some("ProgressDeadlineExceeded")
        {
            return (ReadyReason::DeploymentFailed, message);
        }
    }
    let wanted = function.spec.desired_replicas();
    let generation_seen = match (status.observed_generation, deployment.metadata.generation) {
        (Some(observed), Some(generation)) => observed >= generation,
        _ => false,
    };
    let ready = status.ready_replicas.unwrap_or(0);
    let updated = status.updated_replicas.unwrap_or(0);
    let total = status.replicas.unwrap_or(0);
    if wanted == 0 {
        return if total == 0 {
            (
                ReadyReason::ScaledToZero,
                "scaled to zero: no replica runs until the function is scaled up".to_owned(),
            )
        } else {
            (
                ReadyReason::Progressing,
                format!("scaling to zero: {total} replica(s) still running"),
            )
        };
    }
    if generation_seen && updated >= wanted && ready >= wanted && total == updated {
        if observed.service_missing {
            return (
                ReadyReason::Progressing,
                format!("{ready} of {wanted} replica(s) ready; creating Service {name}"),
            );
        }
        (
            ReadyReason::Ready,
            format!("{ready} of {wanted} replica(s) ready"),
        )
    } else {
        let mut message = format!("{ready} of {wanted} replica(s) ready, {updated} up to date");
        if let Some(unscheduled) = unscheduled(&observed.pods) {
            message.push_str("; ");
            message.push_str(&unscheduled);
        }
        (ReadyReason::Progressing, message)
    }
}

/// Why the first of `pods` the scheduler could not place waits, in the scheduler's words.
fn unscheduled(pods: &[&Pod]) -> Option<String> {
    pods.iter().find_map(|pod| {
        let condition = pod
            .status
            .as_ref()?
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "PodScheduled" && c.status == "False")?;
        Some(format!(
            "pod {} is not scheduled: {}",
            pod.metadata.name.as_deref().unwrap_or_default(),
            condition
                .message
                .as_deref()
                .or(condition.reason.as_deref())
                .unwrap_or("no node fits it")
        ))
    })
}

/// What a Function's readiness reads from one of its pods, hashed: an image that cannot run, or
/// the scheduler's reason for not placing it (with the pod's name, which the message names);
/// `None` when the pod shows neither, or is going away. Everything else about a pod (scheduled,
/// started, ready) reaches the Function through its Deployment's status.
pub(crate) fn pod_signal(pod: &Pod) -> Option<u64> {
    use std::hash::{DefaultHasher, Hash as _, Hasher as _};
    if pod.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let pods = [pod];
    let signal = (image_failure(&pods), unscheduled(&pods));
    if signal == (None, None) {
        return None;
    }
    let mut hasher = DefaultHasher::new();
    signal.hash(&mut hasher);
    Some(hasher.finish())
}

/// The status to report for `function` given what was observed; the `Ready` condition keeps its
/// transition time while its status holds.
pub(crate) fn status(function: &Function, observed: &Observed<'_>) -> FunctionStatus {
    let (reason, message) = judge(function, observed);
    let previous = function.status.as_ref();
    let generation = function.metadata.generation;
    let condition = ready_condition(
        reason,
        message,
        generation,
        previous.and_then(FunctionStatus::ready_condition),
    );
    let name = function.metadata.name.as_deref().unwrap_or_default();
    let deployment_status = observed
        .deployment
        .and_then(|deployment| deployment.status.as_ref());
    let mut status = previous.cloned().unwrap_or_default();
    status
        .conditions
        .retain(|existing| existing.type_ != condition.type_);
    status.conditions.push(condition);
    status.observed_generation = generation;
    status.replicas = Some(function.spec.desired_replicas());
    status.ready_replicas = Some(
        deployment_status
            .and_then(|status| status.ready_replicas)
            .unwrap_or(0),
    );
    status.selector = Some(function_selector(name));
    status.url = Some(function_url(function));
    status
}

/// Whether two statuses say the same, ignoring the transition time of conditions.
pub(crate) fn same_status(a: Option<&FunctionStatus>, b: &FunctionStatus) -> bool {
    a.is_some_and(|a| a == b)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::{DeploymentCondition, DeploymentStatus};
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateWaiting, ContainerStatus, PodStatus,
    };

    use super::*;
    use crate::function::FunctionSpec;

    fn function(replicas: i32) -> Function {
        let mut function = Function::new("f", FunctionSpec::new("img").with_replicas(replicas));
        function.metadata.namespace = Some("ns".into());
        function.metadata.generation = Some(2);
        function
    }

    fn deployment(ready: i32, updated: i32, total: i32) -> Deployment {
        let mut deployment = Deployment::default();
        deployment.metadata.generation = Some(5);
        deployment.status = Some(DeploymentStatus {
            observed_generation: Some(5),
            ready_replicas: Some(ready),
            updated_replicas: Some(updated),
            replicas: Some(total),
            ..DeploymentStatus::default()
        });
        deployment
    }

    #[test]
    fn ready_when_every_wanted_replica_is_ready_and_up_to_date() {
        let f = function(2);
        let d = deployment(2, 2, 2);
        let observed = Observed {
            deployment: Some(&d),
            ..Observed::default()
        };
        assert_eq!(judge(&f, &observed).0, ReadyReason::Ready);
        let observed = Observed {
            deployment: Some(&d),
            service_missing: true,
            ..Observed::default()
        };
        assert_eq!(
            judge(&f, &observed).0,
            ReadyReason::Progressing,
            "not Ready before its Service exists"
        );
        let rolling = deployment(2, 1, 3);
        let observed = Observed {
            deployment: Some(&rolling),
            ..Observed::default()
        };
        assert_eq!(judge(&f, &observed).0, ReadyReason::Progressing);
        let status = status(&f, &observed);
        assert_eq!(status.observed_generation, Some(2));
        assert_eq!(status.selector.as_deref(), Some("faas.rs/function=f"));
        assert_eq!(status.ready_replicas, Some(2));
    }

    #[test]
    fn failures_name_their_cause() {
        let f = function(1);
        let observed = Observed {
            missing_secrets: vec!["creds".into()],
            ..Observed::default()
        };
        let (reason, message) = judge(&f, &observed);
        assert_eq!(reason, ReadyReason::SecretMissing);
        assert!(
            message.contains("creds") && message.contains("ns"),
            "{message}"
        );

        let mut quota = deployment(0, 0, 0);
        quota.status.as_mut().unwrap().conditions = Some(vec![DeploymentCondition {
            type_: Some("ReplicaFailure".into()),
            status: Some("True".into()),
            message: Some("pods \"f-1\" is forbidden: exceeded quota: q".into()),
            ..DeploymentCondition::default()
        }]);
        let observed = Observed {
            deployment: Some(&quota),
            ..Observed::default()
        };
        assert_eq!(judge(&f, &observed).0, ReadyReason::QuotaExceeded);

        let pod = Pod {
            status: Some(PodStatus {
                container_statuses: Some(vec![ContainerStatus {
                    state: Some(ContainerState {
                        waiting: Some(ContainerStateWaiting {
                            reason: Some("ErrImagePull".into()),
                            message: Some("no function named \"x\"".into()),
                        }),
                        ..ContainerState::default()
                    }),
                    ..ContainerStatus::default()
                }]),
                ..PodStatus::default()
            }),
            ..Pod::default()
        };
        let observed = Observed {
            pods: vec![&pod],
            ..Observed::default()
        };
        let (reason, message) = judge(&f, &observed);
        assert_eq!(reason, ReadyReason::ImageMissing);
        assert!(message.contains("no function named"), "{message}");

        let mut pending = Pod::default();
        pending.metadata.name = Some("f-1".into());
        pending.status = Some(PodStatus {
            conditions: Some(vec![k8s_openapi::api::core::v1::PodCondition {
                type_: "PodScheduled".into(),
                status: "False".into(),
                reason: Some("Unschedulable".into()),
                message: Some("0/1 nodes are available: 1 node(s) had untolerated taint".into()),
                ..Default::default()
            }]),
            ..PodStatus::default()
        });
        let d = deployment(0, 1, 1);
        let observed = Observed {
            deployment: Some(&d),
            pods: vec![&pending],
            ..Observed::default()
        };
        let (reason, message) = judge(&f, &observed);
        assert_eq!(reason, ReadyReason::Progressing);
        assert!(
            message.contains("pod f-1 is not scheduled: 0/1 nodes are available"),
            "{message}"
        );

        assert!(
            pod_signal(&pending).is_some(),
            "an unscheduled pod is a signal"
        );
        assert!(pod_signal(&Pod::default()).is_none(), "a plain pod is none");

        let zero = function(0);
        let d = deployment(0, 0, 0);
        let observed = Observed {
            deployment: Some(&d),
            ..Observed::default()
        };
        assert_eq!(judge(&zero, &observed).0, ReadyReason::ScaledToZero);
    }
}
