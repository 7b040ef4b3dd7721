//! Resource limits the node does not enforce are said, not ignored: when the backend cannot
//! enforce them ([`PodBackend::unenforced_limits`](crate::node::PodBackend::unenforced_limits):
//! the node does not run as root, the machine offers no cgroup controller, the function backend
//! runs pods in-process), a pod that sets CPU or memory limits gets a Warning Event
//! (`LimitsNotEnforced`) when it starts, naming its containers and the reason. Likewise a pod
//! whose `fsGroup` or `supplementalGroups` the backend does not apply (`GroupsNotApplied`).

use k8s_openapi::api::core::v1::Pod;
use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

use super::PodContext;

/// The containers (init containers too) that set a CPU or memory limit.
pub(crate) fn limited_containers(pod: &Pod) -> Vec<String> {
    let Some(spec) = pod.spec.as_ref() else {
        return Vec::new();
    };
    spec.init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .filter(|c| {
            c.resources
                .as_ref()
                .and_then(|r| r.limits.as_ref())
                .is_some_and(|l| l.contains_key("cpu") || l.contains_key("memory"))
        })
        .map(|c| c.name.clone())
        .collect()
}

/// Publishes the Warning for `pod` when it has limits the backend does not enforce, for
/// `reason` (`None`: they are enforced); a failure to publish is logged only.
pub(crate) async fn warn_unenforced(ctx: &PodContext, pod: &Pod, reason: Option<String>) {
    let Some(reason) = reason else {
        return;
    };
    let containers = limited_containers(pod);
    if containers.is_empty() {
        return;
    }
    let node = &ctx.config.name;
    let note = format!(
        "virtual node {node} does not enforce CPU or memory limits ({reason}): containers {} run without them",
        containers.join(", ")
    );
    publish_warning(ctx, pod, "LimitsNotEnforced", note).await;
}

/// Publishes a Warning for `pod` when it sets `fsGroup` or `supplementalGroups` and the backend
/// does not apply them ([`PodBackend::unapplied_groups`](crate::node::PodBackend::unapplied_groups)).
pub(crate) async fn warn_unapplied_groups(ctx: &PodContext, pod: &Pod) {
    let context = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
    let fs_group = context.and_then(|c| c.fs_group);
    let supplemental = context
        .and_then(|c| c.supplemental_groups.as_ref())
        .filter(|g| !g.is_empty());
    if fs_group.is_none() && supplemental.is_none() {
        return;
    }
    let Some(reason) = ctx.backend.unapplied_groups() else {
        return;
    };
    let node = &ctx.config.name;
    let note = format!(
        "virtual node {node} does not apply fsGroup or supplementalGroups ({reason}): the \
         containers run without these groups and the volumes keep their owner"
    );
    publish_warning(ctx, pod, "GroupsNotApplied", note).await;
}

/// Publishes a Warning Event about `pod`; a failure to publish is logged only.
async fn publish_warning(ctx: &PodContext, pod: &Pod, reason: &str, note: String) {
    let recorder = Recorder::new(
        ctx.client.clone(),
        Reporter {
            controller: "faas-vnode".to_owned(),
            instance: Some(ctx.config.name.clone()),
        },
    );
    let event = Event {
        type_: EventType::Warning,
        reason: reason.to_owned(),
        note: Some(note),
        action: "Start".to_owned(),
        secondary: None,
    };
    let _turn = ctx.api_turn().await;
    if let Err(e) = recorder.publish(&event, &pod.object_ref(&())).await {
        tracing::debug!(error = %e, "publishing a pod Event failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_containers_with_cpu_or_memory_limits_are_named() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {
                "initContainers": [{"name": "init", "resources": {"limits": {"memory": "64Mi"}}}],
                "containers": [
                    {"name": "plain"},
                    {"name": "requests-only", "resources": {"requests": {"cpu": "1"}}},
                    {"name": "cpu", "resources": {"limits": {"cpu": "500m"}}},
                ],
            },
        }))
        .unwrap();
        assert_eq!(limited_containers(&pod), ["init", "cpu"]);
    }
}
