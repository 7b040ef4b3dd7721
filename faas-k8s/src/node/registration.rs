//! The Node object: registered (created, or adopted when it exists), then kept current.
//!
//! Registration sets the labels, taints and `podCIDR` the configuration asks for (taints set by
//! others, like the node-lifecycle controller's `unreachable`, are kept: that controller removes
//! them once the node is Ready again). The status carries capacity and allocatable, addresses, the
//! kubelet endpoint, node info and the five conditions a kubelet reports, each with a fresh
//! heartbeat; it is written at registration and then every `status_update_interval`.

use std::time::SystemTime;

use k8s_openapi::api::core::v1::{
    DaemonEndpoint, Node, NodeAddress as K8sAddress, NodeCondition, NodeDaemonEndpoints, NodeSpec,
    NodeStatus, NodeSystemInfo, Taint,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::Api;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::backend::Capacity;
use super::config::NodeConfig;
use super::pods::status::to_time;
use crate::error::{Error, Result};

/// The version a virtual node reports as its kubelet version.
pub(crate) fn kubelet_version() -> String {
    format!("v1.37.0-faas.{}", env!("CARGO_PKG_VERSION"))
}

fn taints(config: &NodeConfig) -> Vec<Taint> {
    config
        .taints
        .iter()
        .map(|t| Taint {
            key: t.key.clone(),
            value: (!t.value.is_empty()).then(|| t.value.clone()),
            effect: t.effect.clone(),
            time_added: None,
        })
        .collect()
}

fn resources(capacity: &Capacity) -> std::collections::BTreeMap<String, Quantity> {
    [
        ("cpu", capacity.cpu.clone()),
        ("memory", capacity.memory.clone()),
        ("pods", capacity.pods.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), Quantity(v)))
    .collect()
}

/// The five conditions a kubelet reports, all healthy, keeping transition times that still hold.
pub(crate) fn conditions(existing: &[NodeCondition], now: SystemTime) -> Vec<NodeCondition> {
    let now = to_time(now);
    [
        (
            "Ready",
            "True",
            "KubeletReady",
            "kubelet is posting ready status",
        ),
        (
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
        ),
        (
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure",
        ),
        (
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
        ),
        (
            "NetworkUnavailable",
            "False",
            "RouteCreated",
            "the virtual node's pods are reachable on loopback addresses",
        ),
    ]
    .into_iter()
    .map(|(kind, status, reason, message)| {
        let transition = existing
            .iter()
            .find(|c| c.type_ == kind && c.status == status)
            .and_then(|c| c.last_transition_time.clone())
            .unwrap_or_else(|| now.clone());
        NodeCondition {
            type_: kind.to_owned(),
            status: status.to_owned(),
            reason: Some(reason.to_owned()),
            message: Some(message.to_owned()),
            last_heartbeat_time: Some(now.clone()),
            last_transition_time: Some(transition),
        }
    })
    .collect()
}

/// The Node's status as the node reports it.
pub(crate) fn node_status(
    config: &NodeConfig,
    capacity: &Capacity,
    existing: &[NodeCondition],
    backend: &str,
    now: SystemTime,
) -> NodeStatus {
    NodeStatus {
        capacity: Some(resources(capacity)),
        allocatable: Some(resources(capacity)),
        addresses: Some(
            config
                .addresses
                .iter()
                .map(|a| K8sAddress {
                    type_: a.kind.clone(),
                    address: a.address.clone(),
                })
                .collect(),
        ),
        conditions: Some(conditions(existing, now)),
        daemon_endpoints: Some(NodeDaemonEndpoints {
            kubelet_endpoint: Some(DaemonEndpoint {
                port: i32::from(config.kubelet_port),
            }),
        }),
        node_info: Some(NodeSystemInfo {
            architecture: config
                .labels
                .get("kubernetes.io/arch")
                .cloned()
                .unwrap_or_default(),
            boot_id: String::new(),
            container_runtime_version: format!("faas-{backend}://{}", env!("CARGO_PKG_VERSION")),
            kernel_version: String::new(),
            kube_proxy_version: String::new(),
            kubelet_version: kubelet_version(),
            machine_id: String::new(),
            operating_system: "linux".to_owned(),
            os_image: format!("faas virtual node ({backend} backend)"),
            system_uuid: String::new(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The Node object to create.
pub(crate) fn build_node(config: &NodeConfig) -> Node {
    Node {
        metadata: ObjectMeta {
            name: Some(config.name.clone()),
            labels: Some(config.labels.clone()),
            ..Default::default()
        },
        spec: Some(NodeSpec {
            taints: Some(taints(config)),
            pod_cidr: config.pod_cidr.clone(),
            pod_cidrs: config.pod_cidr.clone().map(|c| vec![c]),
            ..Default::default()
        }),
        status: None,
    }
}

/// Creates the Node or adopts the existing one; returns its uid.
pub(crate) async fn register(
    client: &kube::Client,
    config: &NodeConfig,
    capacity: &Capacity,
    backend: &str,
) -> Result<String> {
    let api: Api<Node> = Api::all(client.clone());
    let name = &config.name;
    let node = match api
        .get_opt(name)
        .await
        .map_err(|e| Error::kube(format!("reading node {name}"), e))?
    {
        None => {
            tracing::info!(node = %name, "registering the node");
            api.create(&PostParams::default(), &build_node(config))
                .await
                .map_err(|e| Error::kube(format!("creating node {name}"), e))?
        }
        Some(existing) => {
            tracing::info!(node = %name, "adopting the existing node");
            let ours: Vec<Taint> = taints(config);
            let mut all: Vec<Taint> = existing
                .spec
                .as_ref()
                .and_then(|s| s.taints.clone())
                .unwrap_or_default()
                .into_iter()
                .filter(|t| !ours.iter().any(|o| o.key == t.key && o.effect == t.effect))
                .collect();
            all.extend(ours);
            let mut spec = json!({ "taints": all });
            let has_cidr = existing
                .spec
                .as_ref()
                .and_then(|s| s.pod_cidr.as_ref())
                .is_some();
            if let (Some(cidr), false) = (&config.pod_cidr, has_cidr) {
                spec["podCIDR"] = json!(cidr);
                spec["podCIDRs"] = json!([cidr]);
            }
            let patch = json!({ "metadata": { "labels": config.labels }, "spec": spec });
            api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(|e| Error::kube(format!("adopting node {name}"), e))?
        }
    };
    update_status(&api, config, capacity, backend, &node).await?;
    Ok(node.metadata.uid.unwrap_or_default())
}

async fn update_status(
    api: &Api<Node>,
    config: &NodeConfig,
    capacity: &Capacity,
    backend: &str,
    node: &Node,
) -> Result<()> {
    let existing = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let status = node_status(config, capacity, &existing, backend, SystemTime::now());
    let patch = json!({ "status": status });
    api.patch_status(&config.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| Error::kube(format!("writing the status of node {}", config.name), e))?;
    Ok(())
}

/// Reports the Node not ready (`Ready=False`, reason `KubeletNotReady`) with `message`, as a
/// kubelet does when its runtime is down; the other conditions are left as they are.
pub(crate) async fn report_not_ready(
    client: &kube::Client,
    config: &NodeConfig,
    message: &str,
) -> Result<()> {
    let api: Api<Node> = Api::all(client.clone());
    let now = to_time(SystemTime::now());
    let condition = NodeCondition {
        type_: "Ready".to_owned(),
        status: "False".to_owned(),
        reason: Some("KubeletNotReady".to_owned()),
        message: Some(message.to_owned()),
        last_heartbeat_time: Some(now.clone()),
        last_transition_time: Some(now),
    };
    // Node conditions merge by type under a strategic merge patch.
    let patch = json!({ "status": { "conditions": [condition] } });
    api.patch_status(
        &config.name,
        &PatchParams::default(),
        &Patch::Strategic(&patch),
    )
    .await
    .map_err(|e| Error::kube(format!("reporting node {} not ready", config.name), e))?;
    Ok(())
}

/// Keeps the Node's status fresh until `shutdown`; re-registers the Node if it was deleted and
/// publishes its new uid on `uid`.
pub(crate) async fn keep_status(
    client: kube::Client,
    config: std::sync::Arc<NodeConfig>,
    capacity: Capacity,
    backend: String,
    uid: watch::Sender<String>,
    shutdown: CancellationToken,
) {
    let api: Api<Node> = Api::all(client.clone());
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(config.status_update_interval) => {}
        }
        let result = match api.get_opt(&config.name).await {
            Ok(Some(node)) => update_status(&api, &config, &capacity, &backend, &node).await,
            Ok(None) => {
                tracing::warn!(node = %config.name, "the node object was deleted; registering it again");
                register(&client, &config, &capacity, &backend)
                    .await
                    .map(|new_uid| {
                        uid.send_replace(new_uid);
                    })
            }
            Err(e) => Err(Error::kube("reading the node", e)),
        };
        if let Err(e) = result {
            tracing::warn!(node = %config.name, error = %e, "node status update failed; will retry");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn node_carries_labels_taints_and_cidr() {
        let config = NodeConfig::builder("vn")
            .pod_cidr("127.1.0.0/16")
            .build()
            .unwrap();
        let node = build_node(&config);
        let labels = node.metadata.labels.unwrap();
        assert_eq!(labels["type"], "virtual-kubelet");
        let spec = node.spec.unwrap();
        let taint = &spec.taints.unwrap()[0];
        assert_eq!(taint.key, "virtual-kubelet.io/provider");
        assert_eq!(taint.value.as_deref(), Some("faas"));
        assert_eq!(taint.effect, "NoSchedule");
        assert_eq!(spec.pod_cidr.as_deref(), Some("127.1.0.0/16"));
    }

    #[test]
    fn status_reports_capacity_endpoint_and_healthy_conditions() {
        let config = NodeConfig::builder("vn")
            .kubelet_port(10999)
            .build()
            .unwrap();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let status = node_status(
            &config,
            &Capacity::new("8", "16Gi", 110),
            &[],
            "process",
            t0,
        );
        let capacity = status.capacity.unwrap();
        assert_eq!(capacity["cpu"].0, "8");
        assert_eq!(capacity["memory"].0, "16Gi");
        assert_eq!(capacity["pods"].0, "110");
        assert_eq!(status.allocatable.unwrap()["pods"].0, "110");
        assert_eq!(
            status
                .daemon_endpoints
                .unwrap()
                .kubelet_endpoint
                .unwrap()
                .port,
            10999
        );
        let conditions = status.conditions.unwrap();
        let kinds: Vec<_> = conditions
            .iter()
            .map(|c| (c.type_.as_str(), c.status.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("Ready", "True"),
                ("MemoryPressure", "False"),
                ("DiskPressure", "False"),
                ("PIDPressure", "False"),
                ("NetworkUnavailable", "False"),
            ]
        );
        let addresses = status.addresses.unwrap();
        assert_eq!(addresses[0].type_, "InternalIP");
        assert_eq!(addresses[0].address, "127.0.0.1");
    }

    #[test]
    fn heartbeats_move_transitions_stay() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let t1 = t0 + Duration::from_secs(60);
        let first = conditions(&[], t0);
        let mut unknown = first.clone();
        unknown[0].status = "Unknown".into();
        let second = conditions(&unknown, t1);
        assert_eq!(second[0].last_heartbeat_time, Some(to_time(t1)));
        assert_eq!(
            second[0].last_transition_time,
            Some(to_time(t1)),
            "Ready came back"
        );
        assert_eq!(second[1].last_transition_time, Some(to_time(t0)));
    }
}
