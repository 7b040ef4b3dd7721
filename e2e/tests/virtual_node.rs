//! The virtual node against the real control plane: registration and lease, pods scheduled by
//! kube-scheduler and run as processes, status, restarts, probes, env, logs through the API
//! server, and adoption after the node is killed.
//!
//! Needs `cargo xtask cluster up`; without it every test fails saying so.

#[path = "support/vnode.rs"]
mod vnode;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use faas_core::{FunctionDefinition, Registry};
use faas_e2e::TestCluster;
use faas_e2e::wait::{self, Poll};
use faas_k8s::node::function::{FunctionBackend, FunctionBackendConfig, function_image};
use faas_k8s::node::{
    AddressPool, BackendError, Capacity, LogOptions, LogStream, PodBackend, PodEvents, PodKey,
    PodLaunch, PodRuntimeStatus,
};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::{DeleteParams, ListParams, LogParams, PostParams};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use vnode::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_registers_with_lease_capacity_and_taint() -> TestResult {
    let cluster = TestCluster::require().await;
    let node = TestNode::start(&cluster, "vn-reg").await;
    let nodes: Api<Node> = Api::all(cluster.client());
    let object = nodes.get(&node.name).await?;
    let labels = object.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels.get("type").map(String::as_str),
        Some("virtual-kubelet")
    );
    assert_eq!(
        labels.get("kubernetes.io/role").map(String::as_str),
        Some("agent")
    );
    let taints = object
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    assert!(
        taints.iter().any(|t| t.key == "virtual-kubelet.io/provider"
            && t.value.as_deref() == Some("faas")
            && t.effect == "NoSchedule"),
        "{taints:?}"
    );
    let status = object.status.clone().unwrap_or_default();
    assert_eq!(
        status.capacity.as_ref().map(|c| c["pods"].0.as_str()),
        Some("50")
    );
    assert_eq!(
        status.allocatable.as_ref().map(|c| c["cpu"].0.as_str()),
        Some("4")
    );
    let kinds: BTreeSet<_> = status
        .conditions
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.type_)
        .collect();
    for kind in [
        "Ready",
        "MemoryPressure",
        "DiskPressure",
        "PIDPressure",
        "NetworkUnavailable",
    ] {
        assert!(kinds.contains(kind), "condition {kind} missing: {kinds:?}");
    }
    let leases: Api<Lease> = Api::namespaced(cluster.client(), "kube-node-lease");
    let lease = wait::until("the node's lease", || {
        let leases = leases.clone();
        let name = node.name.clone();
        async move {
            Ok(match leases.get_opt(&name).await? {
                Some(lease) => Poll::Ready(lease),
                None => Poll::Pending("no lease yet".to_owned()),
            })
        }
    })
    .await?;
    let spec = lease.spec.unwrap_or_default();
    assert_eq!(spec.holder_identity.as_deref(), Some(node.name.as_str()));
    assert_eq!(spec.lease_duration_seconds, Some(40));
    let first = spec.renew_time.expect("a renew time");
    wait::until("the lease to be renewed", || {
        let leases = leases.clone();
        let name = node.name.clone();
        let first = first.clone();
        async move {
            let renewed = leases.get(&name).await?.spec.and_then(|s| s.renew_time);
            Ok(match renewed {
                Some(t) if t.0 > first.0 => Poll::Ready(()),
                other => Poll::Pending(format!("renewTime {other:?}")),
            })
        }
    })
    .await?;
    node.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_runs_ready_pods_that_answer_and_scales_down() -> TestResult {
    let cluster = TestCluster::require().await;
    let node = TestNode::start(&cluster, "vn-deploy").await;
    let ns = cluster.namespace("vn-deploy").await?;
    let tag = unique("deploy");
    create_deployment(&ns, "web", &node.name, 3, &[&format!("--tag={tag}")]).await;
    let pods = wait_running_ready(&ns, "app=web", 3).await;
    let mut ips = BTreeSet::new();
    for pod in &pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let ip = pod_ip(pod);
        assert!(ips.insert(ip.clone()), "pod IPs are distinct");
        let status = pod.status.as_ref().expect("a status");
        assert_eq!(status.host_ip.as_deref(), Some("127.0.0.1"));
        assert!(status.start_time.is_some());
        let kinds: BTreeSet<_> = status
            .conditions
            .iter()
            .flatten()
            .filter(|c| c.status == "True")
            .map(|c| c.type_.as_str())
            .collect();
        for kind in ["PodScheduled", "Initialized", "ContainersReady", "Ready"] {
            assert!(kinds.contains(kind), "{name}: {kind} not True in {kinds:?}");
        }
        let container = &status
            .container_statuses
            .as_ref()
            .expect("container statuses")[0];
        assert!(container.ready && container.started == Some(true));
        assert!(
            container
                .state
                .as_ref()
                .and_then(|s| s.running.as_ref())
                .is_some()
        );
        let (code, body) = http_get(&ip, 8080, "/").await?;
        assert_eq!((code, body.trim()), (200, name.as_str()));
    }
    assert_eq!(wait_tagged_processes(&tag, 3).await.len(), 3);

    scale(&ns, "web", 1).await;
    wait_running_ready(&ns, "app=web", 1).await;
    let pods = ns.api::<Pod>();
    wait::until("the two scaled-down pods to be deleted", || {
        let pods = pods.clone();
        async move {
            let list = pods.list(&ListParams::default().labels("app=web")).await?;
            Ok(if list.items.len() == 1 {
                Poll::Ready(())
            } else {
                Poll::Pending(describe(&list.items))
            })
        }
    })
    .await?;
    wait_tagged_processes(&tag, 1).await;
    node.wait_backend_pods(1).await;

    scale(&ns, "web", 0).await;
    wait_tagged_processes(&tag, 0).await;
    node.wait_backend_pods(0).await;
    ns.delete().await?;
    node.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_endpoint_slice_lists_only_ready_pods() -> TestResult {
    let cluster = TestCluster::require().await;
    let node = TestNode::start_with(&cluster, "vn-eps", true).await;
    let ns = cluster.namespace("vn-eps").await?;
    let container = server_container(&[], true);
    create_deployment_of(&ns, "web", &node.name, 3, container).await;
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]},
    }))?;
    ns.api::<Service>()
        .create(&PostParams::default(), &service)
        .await?;
    let pods = wait_running_ready(&ns, "app=web", 3).await;
    let all: BTreeSet<String> = pods.iter().map(pod_ip).collect();
    let slices = ns.api::<EndpointSlice>();
    let ready_addresses = move |slices: Api<EndpointSlice>| async move {
        let list = slices
            .list(&ListParams::default().labels("kubernetes.io/service-name=web"))
            .await?;
        let ready: BTreeSet<String> = list
            .items
            .iter()
            .flat_map(|s| s.endpoints.iter().flatten())
            .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
            .flat_map(|e| e.addresses.iter().cloned())
            .collect();
        Ok::<_, kube::Error>(ready)
    };
    let expected = all.clone();
    wait::until("the EndpointSlice to list the three ready pods", || {
        let slices = slices.clone();
        let expected = expected.clone();
        async move {
            let ready = ready_addresses(slices).await?;
            Ok(if ready == expected {
                Poll::Ready(())
            } else {
                Poll::Pending(format!("ready addresses {ready:?}"))
            })
        }
    })
    .await?;

    // One pod turns unready: it stays Running, loses Ready, and leaves the ready endpoints.
    let unready = pods[0].clone();
    let unready_name = unready.metadata.name.clone().unwrap_or_default();
    let unready_ip = pod_ip(&unready);
    http_post(&unready_ip, 8080, "/ready/off").await?;
    wait_pod(&ns, &unready_name, "Running but not Ready", |p| {
        phase(p) == "Running" && !pod_ready(p)
    })
    .await;
    let mut expected = all.clone();
    expected.remove(&unready_ip);
    wait::until("the EndpointSlice to drop the unready pod", || {
        let slices = slices.clone();
        let expected = expected.clone();
        async move {
            let ready = ready_addresses(slices).await?;
            Ok(if ready == expected {
                Poll::Ready(())
            } else {
                Poll::Pending(format!("ready addresses {ready:?}"))
            })
        }
    })
    .await?;
    ns.delete().await?;
    node.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_readiness_probe_keeps_a_running_pod_unready() -> TestResult {
    let cluster = TestCluster::require().await;
    let node = TestNode::start(&cluster, "vn-probe").await;
    let ns = cluster.namespace("vn-probe").await?;
    create_pod(
        &ns,
        "shy",
        pod_spec(
            &node.name,
            json!([server_container(&["--not-ready"], true)]),
            "Always",
        ),
    )
    .await;
    let pod = wait_pod(&ns, "shy", "Running and started", |p| {
        phase(p) == "Running"
            && p.status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .is_some_and(|cs| cs.iter().all(|c| c.started == Some(true)))
    })
    .await;
    assert!(
        !pod_ready(&pod),
        "a pod whose readiness probe fails is not Ready"
    );
    let ready = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "ContainersReady").cloned())
        .expect("a ContainersReady condition");
    assert_eq!(ready.status, "False");
    assert_eq!(ready.reason.as_deref(), Some("ContainersNotReady"));
    // It answers: it is alive, only not ready.
    wait_listening(&pod_ip(&pod)).await;
    let (code, _) = http_get(&pod_ip(&pod), 8080, "/ready").await?;
    assert_eq!(code, 503);
    // Turning ready makes the pod Ready.
    http_post(&pod_ip(&pod), 8080, "/ready/on").await?;
    wait_pod(&ns, "shy", "Ready", pod_ready).await;
    ns.delete().await?;
    node.stop().await;
    Ok(())
}

fn waiting_reason(pod: &Pod) -> Option<String> {
    pod.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .first()?
        .state
        .as_ref()?
        .waiting
        .as_ref()?
        .reason
        .clone()
}

fn restart_count(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.first())
        .map_or(0, |c| c.restart_count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashing_container_restarts_and_never_policy_fails_with_its_code() -> TestResult {
    let cluster = TestCluster::require().await;
    let node = TestNode::start(&cluster, "vn-crash").await;
    let ns = cluster.namespace("vn-crash").await?;
    create_pod(
        &ns,
        "crasher",
        pod_spec(
            &node.name,
            json!([server_container(&["--exit-code", "3"], false)]),
            "Always",
        ),
    )
    .await;
    let pod = wait_pod(&ns, "crasher", "restarted at least twice", |p| {
        restart_count(p) >= 2
    })
    .await;
    assert_eq!(phase(&pod), "Running", "a crash-looping pod stays Running");
    let last = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs[0].last_state.as_ref()?.terminated.clone());
    assert_eq!(
        last.map(|t| t.exit_code),
        Some(3),
        "lastState carries the exit code"
    );
    wait_pod(&ns, "crasher", "in CrashLoopBackOff", |p| {
        waiting_reason(p).as_deref() == Some("CrashLoopBackOff")
    })
    .await;
    let later = wait_pod(&ns, "crasher", "restarted again", move |p| {
        restart_count(p) > restart_count(&pod)
    })
    .await;
    assert!(restart_count(&later) >= 3);

    create_pod(
        &ns,
        "once",
        pod_spec(
            &node.name,
            json!([server_container(&["--exit-code", "7"], false)]),
            "Never",
        ),
    )
    .await;
    let pod = wait_pod(&ns, "once", "Failed", |p| phase(p) == "Failed").await;
    let container = &pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.clone())
        .expect("statuses")[0];
    let terminated = container
        .state
        .as_ref()
        .and_then(|s| s.terminated.clone())
        .expect("a terminated state");
    assert_eq!(terminated.exit_code, 7);
    assert_eq!(terminated.reason.as_deref(), Some("Error"));
    assert_eq!(container.restart_count, 0);
    ns.delete().await?;
    node.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_from_configmap_secret_and_downward_api_reaches_the_process() -> TestResult {
    let cluster = TestCluster::require().await;
    let node = TestNode::start(&cluster, "vn-env").await;
    let ns = cluster.namespace("vn-env").await?;
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "settings"},
        "data": {"GREETING": "hello", "LEVEL": "debug"},
    }))?;
    ns.api::<ConfigMap>()
        .create(&PostParams::default(), &cm)
        .await?;
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "creds"},
        "stringData": {"password": "s3cret"},
    }))?;
    ns.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await?;

    let mut container = server_container(&["--tag=$(POD_NAMESPACE)"], false);
    container["envFrom"] = json!([{"configMapRef": {"name": "settings"}, "prefix": "CFG_"}]);
    container["env"].as_array_mut().expect("env").extend([
        json!({"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}}),
        json!({"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}),
        json!({"name": "MY_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}),
        json!({"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}),
        json!({"name": "URL", "value": "http://$(MY_IP):$(PORT)/$(CFG_GREETING)"}),
    ]);
    create_pod(
        &ns,
        "env",
        pod_spec(&node.name, json!([container]), "Always"),
    )
    .await;
    let pod = wait_pod(&ns, "env", "Running", |p| {
        phase(p) == "Running" && pod_ready(p)
    })
    .await;
    let ip = pod_ip(&pod);
    wait_listening(&ip).await;
    let get = |name: &'static str| {
        let ip = ip.clone();
        async move { http_get(&ip, 8080, &format!("/env/{name}")).await }
    };
    assert_eq!(get("CFG_GREETING").await?, (200, "hello".to_owned()));
    assert_eq!(get("CFG_LEVEL").await?, (200, "debug".to_owned()));
    assert_eq!(get("PASSWORD").await?, (200, "s3cret".to_owned()));
    assert_eq!(get("POD_NAME").await?, (200, "env".to_owned()));
    assert_eq!(get("POD_NAMESPACE").await?, (200, ns.name().to_owned()));
    assert_eq!(get("NODE").await?, (200, node.name.clone()));
    assert_eq!(get("MY_IP").await?, (200, ip.clone()));
    assert_eq!(get("URL").await?, (200, format!("http://{ip}:8080/hello")));
    // $(VAR) in args was expanded before the process started.
    assert_eq!(tagged_processes(ns.name()).len(), 1);

    // A missing Secret: a clear waiting reason, and the pod starts once the Secret exists.
    let mut container = server_container(&[], false);
    container["env"].as_array_mut().expect("env").push(
        json!({"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "later", "key": "token"}}}),
    );
    create_pod(
        &ns,
        "waits",
        pod_spec(&node.name, json!([container]), "Always"),
    )
    .await;
    let pod = wait_pod(&ns, "waits", "CreateContainerConfigError", |p| {
        waiting_reason(p).as_deref() == Some("CreateContainerConfigError")
    })
    .await;
    assert_eq!(phase(&pod), "Pending");
    let message = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs[0].state.as_ref()?.waiting.as_ref()?.message.clone());
    assert_eq!(message.as_deref(), Some("secret \"later\" not found"));
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "later"},
        "stringData": {"token": "t0k3n"},
    }))?;
    ns.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await?;
    let pod = wait_pod(&ns, "waits", "Running", |p| {
        phase(p) == "Running" && pod_ready(p)
    })
    .await;
    assert_eq!(
        {
            wait_listening(&pod_ip(&pod)).await;
            http_get(&pod_ip(&pod), 8080, "/env/TOKEN").await?
        },
        (200, "t0k3n".to_owned())
    );
    ns.delete().await?;
    node.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_through_the_api_server_return_what_the_process_printed() -> TestResult {
    let cluster = TestCluster::require().await;
    let node = TestNode::start(&cluster, "vn-logs").await;
    let ns = cluster.namespace("vn-logs").await?;
    create_pod(
        &ns,
        "talker",
        pod_spec(&node.name, json!([server_container(&[], false)]), "Always"),
    )
    .await;
    let pod = wait_pod(&ns, "talker", "Running", |p| {
        phase(p) == "Running" && pod_ready(p)
    })
    .await;
    let ip = pod_ip(&pod);
    wait_listening(&ip).await;
    let pods = ns.api::<Pod>();
    let params = LogParams {
        container: Some("server".to_owned()),
        ..Default::default()
    };
    let text = wait::until("the log to show the request", || {
        let pods = pods.clone();
        let params = params.clone();
        async move {
            let text = pods.logs("talker", &params).await?;
            Ok(if text.contains("GET / -> 200") {
                Poll::Ready(text)
            } else {
                Poll::Pending(text)
            })
        }
    })
    .await?;
    assert!(
        text.contains(&format!("talker listening on {ip}:8080")),
        "{text}"
    );
    let tail = pods
        .logs(
            "talker",
            &LogParams {
                container: Some("server".to_owned()),
                tail_lines: Some(1),
                timestamps: true,
                ..Default::default()
            },
        )
        .await?;
    assert_eq!(tail.lines().count(), 1, "{tail}");
    assert!(tail.trim_end().ends_with("GET / -> 200"), "{tail}");
    assert!(tail.starts_with("20"), "a timestamp first: {tail}");
    // Following: what the process prints later arrives on the open stream.
    let follow = pods
        .log_stream(
            "talker",
            &LogParams {
                container: Some("server".to_owned()),
                follow: true,
                ..Default::default()
            },
        )
        .await?;
    let mut lines = futures::AsyncBufReadExt::lines(follow);
    assert_eq!(http_get(&ip, 8080, "/env/NOPE").await?.0, 404);
    let followed = tokio::time::timeout(wait::timeout(), async {
        while let Some(line) = futures::StreamExt::next(&mut lines).await {
            let line = line?;
            if line.contains("GET /env/NOPE -> 404") {
                return Ok::<_, std::io::Error>(line);
            }
        }
        Err(std::io::Error::other("the log stream ended"))
    })
    .await
    .map_err(|_| "the followed log never showed the later request")??;
    assert!(followed.ends_with("GET /env/NOPE -> 404"), "{followed}");
    ns.delete().await?;
    node.stop().await;
    Ok(())
}

/// A `faas-test-vnode` child process (the `faas-vnode` command line), to be killed.
struct NodeProcess {
    child: tokio::process::Child,
}

impl NodeProcess {
    /// The node binds its kubelet API on any free port and advertises that one (a restarted node
    /// advertises its new port).
    fn spawn(cluster: &TestCluster, name: &str, cidr: &str) -> Self {
        let pki = &cluster.paths().pki;
        std::fs::create_dir_all(state_root()).expect("a state directory");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(state_root().join(format!("{name}.log")))
            .expect("a log file for the node");
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_faas-test-vnode"))
            .arg("--kubeconfig")
            .arg(&cluster.paths().kubeconfig)
            .args(["--node-name", name, "--pod-cidr", cidr])
            .arg("--state-dir")
            .arg(state_root().join(name))
            .arg("--image")
            .arg(format!(
                "{SERVER_IMAGE}={}",
                env!("CARGO_BIN_EXE_faas-test-server")
            ))
            .args(["--cpu", "2", "--memory", "4Gi", "--max-pods", "20"])
            .args(["--kubelet-port", "0"])
            .arg("--kubelet-cert")
            .arg(&pki.kubelet_cert)
            .arg("--kubelet-key")
            .arg(&pki.kubelet_key)
            .arg("--client-ca")
            .arg(&pki.ca_cert)
            .args(["--restart-backoff", "200ms", "--restart-backoff-max", "2s"])
            .stdin(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("the node program starts");
        Self { child }
    }

    async fn kill(mut self) {
        self.child.kill().await.expect("SIGKILL the node");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_node_goes_not_ready_then_adopts_its_pods_and_stops_orphans() -> TestResult {
    let cluster = TestCluster::require().await;
    let name = unique("vn-kill");
    let cidr = next_cidr();
    let node = NodeProcess::spawn(&cluster, &name, &cidr);
    wait_node_ready(&cluster.client(), &name, true).await;
    let ns = cluster.namespace("vn-kill").await?;
    let tag = unique("kill");
    create_deployment(&ns, "web", &name, 2, &[&format!("--tag={tag}")]).await;
    let before = wait_running_ready(&ns, "app=web", 2).await;
    let pids = wait_tagged_processes(&tag, 2).await;
    let names: BTreeMap<String, String> = before
        .iter()
        .map(|p| (p.metadata.name.clone().unwrap_or_default(), pod_ip(p)))
        .collect();

    node.kill().await;
    // The lease is no longer renewed: the node-lifecycle controller marks the node not ready.
    wait_node_ready(&cluster.client(), &name, false).await;
    // The pods' processes outlive the node.
    assert_eq!(tagged_processes(&tag), pids);

    let node = NodeProcess::spawn(&cluster, &name, &cidr);
    wait_node_ready(&cluster.client(), &name, true).await;
    let after = wait_running_ready(&ns, "app=web", 2).await;
    let after_names: BTreeMap<String, String> = after
        .iter()
        .map(|p| (p.metadata.name.clone().unwrap_or_default(), pod_ip(p)))
        .collect();
    assert_eq!(after_names, names, "the same pods with the same addresses");
    assert_eq!(tagged_processes(&tag), pids, "adopted, not started again");
    for (pod, ip) in &after_names {
        let ip: IpAddr = ip.parse()?;
        let (code, body) = http_get(&ip.to_string(), 8080, "/").await?;
        assert_eq!((code, body.trim()), (200, pod.as_str()));
    }

    // While the node is down again, one pod is force-deleted: when the node is back, its process
    // (owned by no pod any more) is stopped and the replacement the ReplicaSet made is started.
    node.kill().await;
    let (gone, kept) = {
        let mut names = after_names.keys();
        (
            names.next().cloned().unwrap_or_default(),
            names.next().cloned().unwrap_or_default(),
        )
    };
    ns.api::<Pod>()
        .delete(
            &gone,
            &DeleteParams {
                grace_period_seconds: Some(0),
                ..Default::default()
            },
        )
        .await?;
    let node = NodeProcess::spawn(&cluster, &name, &cidr);
    let again = wait_running_ready(&ns, "app=web", 2).await;
    let again_names: BTreeSet<String> = again
        .iter()
        .map(|p| p.metadata.name.clone().unwrap_or_default())
        .collect();
    assert!(
        again_names.contains(&kept) && !again_names.contains(&gone),
        "{again_names:?}"
    );
    let now = wait_tagged_processes(&tag, 2).await;
    assert_eq!(
        now.intersection(&pids).count(),
        1,
        "the kept pod's process survives, the orphan is stopped: before {pids:?}, now {now:?}"
    );

    ns.api::<Deployment>()
        .delete("web", &DeleteParams::default())
        .await?;
    wait_tagged_processes(&tag, 0).await;
    ns.delete().await?;
    node.kill().await;
    let nodes: Api<Node> = Api::all(cluster.client());
    let _ = nodes.delete(&name, &DeleteParams::default()).await;
    Ok(())
}

async fn hello(name: String) -> String {
    format!("hello, {name}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn function_backend_serves_a_registered_function_on_the_pod_address() -> TestResult {
    let cluster = TestCluster::require().await;
    let registry = Registry::from([FunctionDefinition::from_handler("hello", hello)]);
    let backend = FunctionBackend::new(
        FunctionBackendConfig::new(registry)
            .with_addresses(AddressPool::new(next_cidr().parse()?))
            .with_capacity(Capacity::new("2", "1Gi", 100)),
    );
    let node = TestNode::start_on(&cluster, unique("vn-fn"), Arc::new(backend)).await;
    let ns = cluster.namespace("vn-fn").await?;
    let container = json!({
        "name": "hello",
        "image": function_image("hello"),
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/_/ready", "port": "http"}, "periodSeconds": 1},
    });
    create_deployment_of(&ns, "hello", &node.name, 2, container).await;
    let pods = wait_running_ready(&ns, "app=hello", 2).await;
    for pod in &pods {
        let ip = pod_ip(pod);
        let mut stream = tokio::net::TcpStream::connect((ip.as_str(), 8080)).await?;
        stream
            .write_all(
                b"POST / HTTP/1.1\r\nhost: pod\r\ncontent-type: text/plain\r\n\
                  content-length: 5\r\nconnection: close\r\n\r\nworld",
            )
            .await?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await?;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(response.ends_with("hello, world"), "{response}");
    }
    let name = pods[0].metadata.name.clone().unwrap_or_default();
    let logs = ns
        .api::<Pod>()
        .logs(
            &name,
            &LogParams {
                container: Some("hello".to_owned()),
                ..Default::default()
            },
        )
        .await?;
    assert!(
        !logs.is_empty(),
        "the function pod's log is served through the API server"
    );
    scale(&ns, "hello", 0).await;
    node.wait_backend_pods(0).await;
    ns.delete().await?;
    node.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_liveness_probe_restarts_the_container() -> TestResult {
    let cluster = TestCluster::require().await;
    let node = TestNode::start(&cluster, "vn-live").await;
    let ns = cluster.namespace("vn-live").await?;
    let tag = unique("live");
    let mut container = server_container(&[&format!("--tag={tag}")], true);
    container["livenessProbe"] = json!({
        "httpGet": {"path": "/ready", "port": "http"},
        "periodSeconds": 1,
        "failureThreshold": 2,
    });
    create_pod(
        &ns,
        "lively",
        pod_spec(&node.name, json!([container]), "Always"),
    )
    .await;
    let pod = wait_pod(&ns, "lively", "Running and Ready", |p| {
        phase(p) == "Running" && pod_ready(p)
    })
    .await;
    let first = wait_tagged_processes(&tag, 1).await;
    // The process says it is unwell: liveness fails twice, the node restarts the container, and
    // the new process (ready from the start) brings the pod back to Ready.
    http_post(&pod_ip(&pod), 8080, "/ready/off").await?;
    let pod = wait_pod(&ns, "lively", "restarted and Ready again", |p| {
        restart_count(p) >= 1 && pod_ready(p)
    })
    .await;
    assert_eq!(phase(&pod), "Running");
    let second = wait_tagged_processes(&tag, 1).await;
    assert_ne!(first, second, "a new process runs the container");
    ns.delete().await?;
    node.stop().await;
    Ok(())
}

/// A backend that hands every call to another one, but whose change stream panics when told to:
/// the node's pod task dies with it.
struct PanickingEvents {
    inner: Arc<dyn PodBackend>,
    trigger: Arc<tokio::sync::Notify>,
}

#[async_trait::async_trait]
impl PodBackend for PanickingEvents {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn capacity(&self) -> Capacity {
        self.inner.capacity()
    }
    async fn create(&self, pod: PodLaunch) -> Result<PodRuntimeStatus, BackendError> {
        self.inner.create(pod).await
    }
    async fn update(&self, pod: PodLaunch) -> Result<(), BackendError> {
        self.inner.update(pod).await
    }
    async fn restart_container(&self, key: &PodKey, container: &str) -> Result<(), BackendError> {
        self.inner.restart_container(key, container).await
    }
    async fn reserve_ip(&self, key: &PodKey) -> Result<Option<IpAddr>, BackendError> {
        self.inner.reserve_ip(key).await
    }
    async fn delete(&self, key: &PodKey, grace: Duration) -> Result<(), BackendError> {
        self.inner.delete(key, grace).await
    }
    async fn status(&self, key: &PodKey) -> Result<Option<PodRuntimeStatus>, BackendError> {
        self.inner.status(key).await
    }
    async fn list(&self) -> Result<Vec<PodRuntimeStatus>, BackendError> {
        self.inner.list().await
    }
    async fn logs(
        &self,
        key: &PodKey,
        container: &str,
        opts: LogOptions,
    ) -> Result<LogStream, BackendError> {
        self.inner.logs(key, container, opts).await
    }
    async fn exec(
        &self,
        key: &PodKey,
        container: &str,
        command: Vec<String>,
    ) -> Result<i32, BackendError> {
        self.inner.exec(key, container, command).await
    }
    fn events(&self) -> PodEvents {
        let trigger = self.trigger.clone();
        let inner = self.inner.events();
        let doom = futures::stream::once(async move {
            trigger.notified().await;
            panic!("the change stream broke");
        });
        futures::stream::select(inner, doom).boxed()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_whose_pod_task_dies_stops_and_goes_not_ready() -> TestResult {
    let cluster = TestCluster::require().await;
    let registry = Registry::from([FunctionDefinition::from_handler("hello", hello)]);
    let trigger = Arc::new(tokio::sync::Notify::new());
    let backend = PanickingEvents {
        inner: Arc::new(FunctionBackend::new(
            FunctionBackendConfig::new(registry)
                .with_addresses(AddressPool::new(next_cidr().parse()?))
                .with_capacity(Capacity::new("2", "1Gi", 10)),
        )),
        trigger: trigger.clone(),
    };
    let mut node = TestNode::start_on(&cluster, unique("vn-die"), Arc::new(backend)).await;

    trigger.notify_one();
    let ended = tokio::time::timeout(wait::timeout(), node.ended())
        .await
        .map_err(|_| "the node kept running after its pod task died")?;
    let err = ended.expect_err("a node whose pod task died returns an error");
    assert!(
        matches!(&err, faas_k8s::Error::NodeTaskEnded { task, reason } if task == "pods" && reason.contains("the change stream broke")),
        "{err}"
    );
    wait_node_ready(&cluster.client(), &node.name, false).await;
    let nodes: Api<Node> = Api::all(cluster.client());
    let ready = nodes
        .get(&node.name)
        .await?
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .ok_or("no Ready condition")?;
    assert_eq!(ready.reason.as_deref(), Some("KubeletNotReady"));
    assert!(
        ready
            .message
            .as_deref()
            .unwrap_or_default()
            .contains("pods task ended"),
        "{ready:?}"
    );
    let _ = nodes.delete(&node.name, &DeleteParams::default()).await;
    Ok(())
}
