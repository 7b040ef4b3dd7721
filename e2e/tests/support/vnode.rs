//! The virtual node test harness shared by the end-to-end test binaries: a node run in-process
//! on a real control plane, pods of the test server, and waits on what they do.
//!
//! Each test binary uses part of it.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use faas_e2e::wait::{self, Poll};
use faas_e2e::{TestCluster, TestNamespace, vnode};
use faas_k8s::node::network::PodNetwork;
use faas_k8s::node::process::{ImageMap, ProcessBackend, ProcessBackendConfig, ShutdownPolicy};
use faas_k8s::node::{AddressPool, Capacity, PodBackend};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub(crate) const SERVER_IMAGE: &str = "local/faas-test-server";
pub(crate) static NEXT_RANGE: AtomicU8 = AtomicU8::new(0);

pub(crate) type TestResult = Result<(), Box<dyn std::error::Error>>;

pub(crate) fn state_root() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("virtual-node")
}

/// A pod range of its own for each node of this run: 127.<40+n>.0.0/16.
pub(crate) fn next_cidr() -> String {
    let n = NEXT_RANGE.fetch_add(1, Ordering::SeqCst);
    format!("127.{}.0.0/16", 40 + u32::from(n))
}

pub(crate) use faas_e2e::vnode::unique_name as unique;

/// A virtual node run in-process for one test: the shared harness's node, by default on the
/// process backend running the test server.
pub(crate) struct TestNode {
    pub(crate) name: String,
    pub(crate) backend: Arc<dyn PodBackend>,
    node: vnode::TestNode,
}

/// The network namespace of the tests that need pod addresses an EndpointSlice accepts.
pub(crate) const NETNS: &str = "faase2e";
pub(crate) const NETNS_CIDR: &str = "10.246.0.0/16";

impl TestNode {
    pub(crate) async fn start(cluster: &TestCluster, prefix: &str) -> Self {
        Self::start_with(cluster, prefix, false).await
    }

    /// With `in_netns`, pods get addresses from a range routed into [`NETNS`] and their
    /// processes run there.
    pub(crate) async fn start_with(cluster: &TestCluster, prefix: &str, in_netns: bool) -> Self {
        let name = unique(prefix);
        let (network, cidr) = if in_netns {
            let n = NEXT_RANGE.fetch_add(1, Ordering::SeqCst);
            (
                PodNetwork::namespace(NETNS, NETNS_CIDR),
                format!("10.246.{}.0/24", 1 + u32::from(n)),
            )
        } else {
            (PodNetwork::loopback(), next_cidr())
        };
        let backend = ProcessBackend::new(
            ProcessBackendConfig::new(state_root().join(&name))
                .with_images(
                    ImageMap::new()
                        .with_image(SERVER_IMAGE, env!("CARGO_BIN_EXE_faas-test-server")),
                )
                .with_addresses(AddressPool::new(cidr.parse().expect("a CIDR")))
                .with_network(network)
                .with_terminal_holder(env!("CARGO_BIN_EXE_faas-test-vnode"))
                .with_capacity(Capacity::new("4", "8Gi", 50))
                .with_on_drop(ShutdownPolicy::StopAll {
                    grace: Duration::from_secs(1),
                }),
        )
        .await
        .expect("the process backend starts (a pod network namespace needs root)");
        Self::start_on(cluster, name, Arc::new(backend)).await
    }

    /// Runs a node called `name` on `backend`.
    pub(crate) async fn start_on(
        cluster: &TestCluster,
        name: String,
        backend: Arc<dyn PodBackend>,
    ) -> Self {
        let node = vnode::TestNode::start(cluster, name, backend)
            .await
            .expect("the virtual node starts and becomes Ready");
        Self {
            name: node.name().to_owned(),
            backend: node.backend().clone(),
            node,
        }
    }

    /// Waits until the node ends on its own and returns how it ended.
    pub(crate) async fn ended(&mut self) -> faas_k8s::Result<()> {
        self.node.ended().await
    }

    /// Waits until the backend runs exactly `count` pods.
    pub(crate) async fn wait_backend_pods(&self, count: usize) {
        self.node
            .wait_backend_pods(count)
            .await
            .expect("the backend reaches the pod count");
    }

    /// Stops the node and removes its Node object.
    pub(crate) async fn stop(self) {
        let result = self.node.stop().await;
        assert!(result.is_ok(), "{result:?}");
    }
}

pub(crate) async fn wait_node_ready(client: &kube::Client, name: &str, ready: bool) {
    vnode::wait_node_ready(client, name, ready)
        .await
        .expect("the node reaches the expected readiness");
}

pub(crate) fn server_container(args: &[&str], readiness: bool) -> serde_json::Value {
    let mut container = json!({
        "name": "server",
        "image": SERVER_IMAGE,
        "args": args,
        "env": [
            {"name": "PORT", "value": "8080"},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        ],
        "ports": [{"name": "http", "containerPort": 8080}],
    });
    if readiness {
        container["readinessProbe"] = json!({
            "httpGet": {"path": "/ready", "port": "http"},
            "periodSeconds": 1,
            "failureThreshold": 1,
        });
    }
    container
}

pub(crate) fn pod_spec(
    node: &str,
    containers: serde_json::Value,
    restart_policy: &str,
) -> serde_json::Value {
    json!({
        "nodeSelector": {"kubernetes.io/hostname": node},
        "tolerations": [
            {"key": "virtual-kubelet.io/provider", "operator": "Exists", "effect": "NoSchedule"},
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 600},
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 600},
        ],
        "terminationGracePeriodSeconds": 5,
        "restartPolicy": restart_policy,
        "containers": containers,
    })
}

pub(crate) async fn create_deployment(
    ns: &TestNamespace,
    name: &str,
    node: &str,
    replicas: i32,
    args: &[&str],
) {
    create_deployment_of(ns, name, node, replicas, server_container(args, true)).await;
}

pub(crate) async fn create_deployment_of(
    ns: &TestNamespace,
    name: &str,
    node: &str,
    replicas: i32,
    container: serde_json::Value,
) {
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": pod_spec(node, json!([container]), "Always"),
            },
        },
    }))
    .expect("a valid Deployment");
    ns.api::<Deployment>()
        .create(&PostParams::default(), &deployment)
        .await
        .expect("the Deployment is created");
}

pub(crate) async fn create_pod(ns: &TestNamespace, name: &str, spec: serde_json::Value) -> Pod {
    let pod: Pod = serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec}))
        .expect("a valid Pod");
    ns.api::<Pod>()
        .create(&PostParams::default(), &pod)
        .await
        .expect("the Pod is created")
}

pub(crate) async fn scale(ns: &TestNamespace, name: &str, replicas: i32) {
    ns.api::<Deployment>()
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": replicas}})),
        )
        .await
        .expect("the Deployment scales");
}

pub(crate) fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

pub(crate) fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

pub(crate) fn describe(pods: &[Pod]) -> String {
    pods.iter()
        .map(|p| {
            format!(
                "{} {} ready={} ip={:?} deleting={}",
                p.metadata.name.as_deref().unwrap_or(""),
                phase(p),
                pod_ready(p),
                p.status.as_ref().and_then(|s| s.pod_ip.clone()),
                p.metadata.deletion_timestamp.is_some()
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Waits until exactly `count` pods match `selector` and all are Running and Ready.
pub(crate) async fn wait_running_ready(
    ns: &TestNamespace,
    selector: &str,
    count: usize,
) -> Vec<Pod> {
    let pods = ns.api::<Pod>();
    wait::until(format!("{count} Running and Ready pods {selector}"), || {
        let pods = pods.clone();
        async move {
            let list = pods.list(&ListParams::default().labels(selector)).await?;
            let done = list.items.len() == count
                && list.items.iter().all(|p| {
                    phase(p) == "Running" && pod_ready(p) && p.metadata.deletion_timestamp.is_none()
                });
            Ok(if done {
                Poll::Ready(list.items)
            } else {
                Poll::Pending(describe(&list.items))
            })
        }
    })
    .await
    .expect("the pods run and are ready")
}

pub(crate) async fn wait_pod(
    ns: &TestNamespace,
    name: &str,
    what: &str,
    check: impl Fn(&Pod) -> bool + Clone,
) -> Pod {
    let pods = ns.api::<Pod>();
    wait::until(format!("pod {name}: {what}"), || {
        let pods = pods.clone();
        let check = check.clone();
        async move {
            let pod = pods.get_opt(name).await?;
            Ok(match pod {
                Some(p) if check(&p) => Poll::Ready(p),
                Some(p) => Poll::Pending(format!(
                    "{}; containers {:?}",
                    describe(std::slice::from_ref(&p)),
                    p.status.as_ref().and_then(|s| s.container_statuses.clone())
                )),
                None => Poll::Pending("no such pod".to_owned()),
            })
        }
    })
    .await
    .expect("the pod reaches the expected state")
}

pub(crate) async fn http_get(ip: &str, port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect((ip, port)).await?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {ip}\r\n\r\n").as_bytes())
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

pub(crate) async fn http_post(ip: &str, port: u16, path: &str) -> std::io::Result<()> {
    let mut stream = tokio::net::TcpStream::connect((ip, port)).await?;
    stream
        .write_all(
            format!("POST {path} HTTP/1.0\r\nHost: {ip}\r\ncontent-length: 0\r\n\r\n").as_bytes(),
        )
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    Ok(())
}

/// Waits until the process on `ip` answers HTTP at all (a pod without a readiness probe is Ready
/// as soon as its process started, which can be before it listens).
pub(crate) async fn wait_listening(ip: &str) {
    wait::until(format!("{ip}:8080 to answer HTTP"), || async move {
        Ok(match http_get(ip, 8080, "/").await {
            Ok((code, _)) => Poll::Ready(code),
            Err(e) => Poll::Pending(e.to_string()),
        })
    })
    .await
    .expect("the process listens");
}

pub(crate) fn pod_ip(pod: &Pod) -> String {
    pod.status
        .as_ref()
        .and_then(|s| s.pod_ip.clone())
        .expect("a running pod has an IP")
}

/// The pids of the processes whose command line carries `--tag=<tag>`.
pub(crate) fn tagged_processes(tag: &str) -> BTreeSet<u32> {
    let marker = format!("--tag={tag}");
    procfs::process::all_processes()
        .into_iter()
        .flatten()
        .flatten()
        .filter(|process| process.cmdline().is_ok_and(|args| args.contains(&marker)))
        .filter_map(|process| u32::try_from(process.pid).ok())
        .collect()
}

pub(crate) async fn wait_tagged_processes(tag: &str, count: usize) -> BTreeSet<u32> {
    wait::until(format!("{count} processes tagged {tag}"), || async move {
        let pids = tagged_processes(tag);
        Ok(if pids.len() == count {
            Poll::Ready(pids)
        } else {
            Poll::Pending(format!("pids {pids:?}"))
        })
    })
    .await
    .expect("the expected processes run")
}
