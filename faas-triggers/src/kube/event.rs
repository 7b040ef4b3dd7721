//! A change of a Kubernetes object as the CloudEvent a function receives.

use bytes::Bytes;
use faas_core::{CloudEvent, Invocation};
use kube::discovery::ApiResource;

use super::config::ChangeKind;
use super::ledger::Change;
use crate::event::{event_invocation, with_payload};

/// The CloudEvents type of an object that appeared.
pub const EVENT_TYPE_ADDED: &str = "rs.faas.kube.resource.added";
/// The CloudEvents type of an object that changed.
pub const EVENT_TYPE_MODIFIED: &str = "rs.faas.kube.resource.modified";
/// The CloudEvents type of an object that was removed.
pub const EVENT_TYPE_DELETED: &str = "rs.faas.kube.resource.deleted";

/// The CloudEvents type of `kind`.
pub(crate) fn event_type(kind: ChangeKind) -> &'static str {
    match kind {
        ChangeKind::Added => EVENT_TYPE_ADDED,
        ChangeKind::Modified => EVENT_TYPE_MODIFIED,
        ChangeKind::Deleted => EVENT_TYPE_DELETED,
    }
}

/// The API path of the collection that holds objects of `resource` in
/// `namespace`: `/api/v1/namespaces/shop/configmaps`,
/// `/apis/apps/v1/namespaces/shop/deployments`, `/apis/rbac.authorization.k8s.io/v1/clusterroles`.
pub(crate) fn collection_path(resource: &ApiResource, namespace: Option<&str>) -> String {
    let group = if resource.group.is_empty() {
        format!("/api/{}", resource.version)
    } else {
        format!("/apis/{}/{}", resource.group, resource.version)
    };
    match namespace {
        Some(namespace) => format!("{group}/namespaces/{namespace}/{}", resource.plural),
        None => format!("{group}/{}", resource.plural),
    }
}

/// The event id of `change`: uid, resourceVersion and kind of change, the
/// same at every redelivery of this change (and after a restart).
pub(crate) fn event_id(change: &Change) -> String {
    format!(
        "{}:{}:{}",
        change.uid,
        change.resource_version(),
        change.kind.as_str()
    )
}

/// The invocation of `function` for `change`, delivery number `attempt`:
/// a CloudEvent whose source is the object's collection path, subject
/// `NAMESPACE/NAME` (or `NAME` for a cluster-scoped object), data the
/// object as JSON (read it with `Json<T>`); `time` is the object's
/// creation for `added` and its deletion (when known) for `deleted`.
pub(crate) fn invocation_of(
    change: &Change,
    resource: &ApiResource,
    function: &str,
    attempt: u32,
) -> Invocation {
    let metadata = &change.object.metadata;
    let namespace = metadata.namespace.as_deref();
    let name = metadata.name.as_deref().unwrap_or_default();
    let subject = match namespace {
        Some(namespace) => format!("{namespace}/{name}"),
        None => name.to_owned(),
    };
    let mut event = CloudEvent::new(
        event_id(change),
        collection_path(resource, namespace),
        event_type(change.kind),
    )
    .with_subject(subject);
    let time = match change.kind {
        ChangeKind::Added => metadata.creation_timestamp.as_ref(),
        ChangeKind::Deleted => metadata.deletion_timestamp.as_ref(),
        ChangeKind::Modified => None,
    };
    if let Some(time) = time {
        event = event.with_time(time.0.to_string());
    }
    let payload = serde_json::to_vec(&*change.object).unwrap_or_default();
    event_invocation(
        with_payload(event, Some("application/json"), Bytes::from(payload)),
        function,
        attempt,
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use kube::api::{DynamicObject, GroupVersionKind};

    use super::*;

    #[test]
    fn a_change_is_a_cloud_event_with_a_stable_id() {
        let deployments = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("apps", "v1", "Deployment"),
            "deployments",
        );
        let object: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "uid": "u-1", "resourceVersion": "77",
                         "creationTimestamp": "2026-01-02T03:04:05Z"},
            "spec": {"replicas": 2},
        }))
        .unwrap();
        let change = Change {
            kind: ChangeKind::Added,
            uid: "u-1".into(),
            object: Arc::new(object),
        };
        let invocation = invocation_of(&change, &deployments, "audit", 2);
        let headers = invocation.headers();
        assert_eq!(headers["ce-id"], "u-1:77:added");
        assert_eq!(headers["ce-type"], EVENT_TYPE_ADDED);
        assert_eq!(
            headers["ce-source"],
            "/apis/apps/v1/namespaces/shop/deployments"
        );
        assert_eq!(headers["ce-subject"], "shop/web");
        assert!(
            headers["ce-time"]
                .to_str()
                .unwrap()
                .starts_with("2026-01-02T03:04:05")
        );
        assert_eq!(invocation.context().attempt(), 2);
        let body: serde_json::Value = serde_json::from_slice(invocation.body()).unwrap();
        assert_eq!(body["spec"]["replicas"], 2);

        let nodes =
            ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("", "v1", "Node"), "nodes");
        assert_eq!(collection_path(&nodes, None), "/api/v1/nodes");
    }
}
