//! Resource limits the node does not enforce are said, not ignored: when the backend cannot
//! enforce them ([`PodBackend::unenforced_limits`](crate::node::PodBackend::unenforced_limits):
//! the node does not run as root, the machine offers no cgroup controller, the function backend
//! runs pods in-process), a pod that sets CPU or memory limits gets a Warning Event
//! (`LimitsNotEnforced`) when it starts, naming its containers and the reason.

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
    let recorder = Recorder::new(
        ctx.client.clone(),
        Reporter {
            controller: "faas-vnode".to_owned(),
            instance: Some(node.to_owned()),
        },
    );
    let event = Event {
        type_: EventType::Warning,
        reason: "LimitsNotEnforced".to_owned(),
        note: Some(format!(
            "virtual node {node} does not enforce CPU or memory limits ({reason}): containers {} run without them",
            containers.join(", ")
        )),
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
