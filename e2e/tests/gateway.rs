//! The gateway, the activator and the autoscaler on the real control plane, with a virtual node
//! as the only node: functions deployed as a Deployment and a Service (the objects the operator
//! writes for a Function), their pods bound to the virtual node by kube-scheduler and run there,
//! calls routed from EndpointSlices, scale to zero when idle and back on the next call.
//!
//! Needs `cargo xtask cluster up` and root (the pods' network namespace); without a control plane
//! every test fails saying so.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use faas_core::{FunctionDefinition, Registry};
use faas_e2e::wait::{self, Poll};
use faas_e2e::{TestCluster, TestNamespace};
use faas_k8s::autoscaler::{Autoscaler, AutoscalerConfig, ScaleTarget, ScalingPolicy};
use faas_k8s::gateway::{FUNCTION_LABEL, FunctionKey, Gateway, GatewayConfig, RoutingTable};
use faas_k8s::node::AddressPool;
use faas_k8s::node::function::{FunctionBackend, FunctionBackendConfig, function_image};
use faas_k8s::node::network::PodNetwork;
use faas_k8s::node::process::{ImageMap, ProcessBackend, ProcessBackendConfig, ShutdownPolicy};
use faas_k8s::node::{Capacity, KubeletTls, NodeConfig, ShutdownHandle, VirtualNode};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The network namespace the end-to-end tests share (see `virtual_node.rs`), and this file's
/// part of its range: 10.246.100.0/24 and up.
const NETNS: &str = "faase2e";
const NETNS_CIDR: &str = "10.246.0.0/16";
static NEXT_RANGE: AtomicU8 = AtomicU8::new(100);
/// The image the process node runs as `faas-test-function`.
const FUNCTION_BINARY: &str = "local/faas-test-function";

async fn hello(name: String) -> String {
    format!("hello, {name}")
}

async fn slow(ms: String) -> String {
    let ms: u64 = ms.trim().parse().unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    format!("slept {ms}")
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on loopback")
}

/// A virtual node running functions in-process on addresses of the shared pod namespace.
struct FunctionNode {
    name: String,
    client: kube::Client,
    config: kube::Config,
    stopped: bool,
    shutdown: ShutdownHandle,
    task: tokio::task::JoinHandle<faas_k8s::Result<()>>,
}

impl FunctionNode {
    async fn start(cluster: &TestCluster) -> Self {
        let name = unique("gw-node");
        let n = NEXT_RANGE.fetch_add(1, Ordering::SeqCst);
        let registry = Registry::from([
            FunctionDefinition::from_handler("hello", hello),
            FunctionDefinition::from_handler("slow", slow),
        ]);
        let backend = FunctionBackend::new(
            FunctionBackendConfig::new(registry)
                .with_addresses(AddressPool::new(
                    format!("10.246.{n}.0/24").parse().expect("a CIDR"),
                ))
                .with_network(PodNetwork::namespace(NETNS, NETNS_CIDR))
                .with_capacity(Capacity::new("8", "8Gi", 100)),
        );
        Self::start_on(cluster, name, Arc::new(backend)).await
    }

    async fn start_on(
        cluster: &TestCluster,
        name: String,
        backend: Arc<dyn faas_k8s::node::PodBackend>,
    ) -> Self {
        let pki = &cluster.paths().pki;
        let config = NodeConfig::builder(&name)
            .kubelet_port(free_port())
            .kubelet_tls(KubeletTls {
                cert: pki.kubelet_cert.clone(),
                key: pki.kubelet_key.clone(),
                client_ca: pki.ca_cert.clone(),
            })
            .build()
            .expect("a valid node configuration");
        let node = VirtualNode::with_shared_backend(cluster.client(), config, backend);
        let shutdown = node.shutdown_handle();
        let task = tokio::spawn(node.run());
        let this = FunctionNode {
            name,
            client: cluster.client(),
            config: cluster.config().clone(),
            stopped: false,
            shutdown,
            task,
        };
        let nodes: Api<Node> = Api::all(this.client.clone());
        let node_name = this.name.clone();
        wait::until(format!("node {node_name} Ready"), || {
            let nodes = nodes.clone();
            let name = node_name.clone();
            async move {
                let node = nodes.get_opt(&name).await?;
                let ready = node
                    .and_then(|n| n.status?.conditions)
                    .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
                Ok(if ready {
                    Poll::Ready(())
                } else {
                    Poll::Pending("not Ready".to_owned())
                })
            }
        })
        .await
        .expect("the virtual node registers");
        this
    }

    async fn stop(mut self) {
        self.shutdown.shutdown();
        let _ = (&mut self.task).await;
        let nodes: Api<Node> = Api::all(self.client.clone());
        let _ = nodes.delete(&self.name, &DeleteParams::default()).await;
        self.stopped = true;
    }
}

impl FunctionNode {
    /// A node running each container as an OS process (the function binary of this crate).
    async fn start_processes(cluster: &TestCluster) -> Self {
        let name = unique("gw-proc");
        let n = NEXT_RANGE.fetch_add(1, Ordering::SeqCst);
        let backend = ProcessBackend::new(
            ProcessBackendConfig::new(
                std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
                    .join("gateway")
                    .join(&name),
            )
            .with_images(
                ImageMap::new()
                    .with_image(FUNCTION_BINARY, env!("CARGO_BIN_EXE_faas-test-function")),
            )
            .with_addresses(AddressPool::new(
                format!("10.246.{n}.0/24").parse().expect("a CIDR"),
            ))
            .with_network(PodNetwork::namespace(NETNS, NETNS_CIDR))
            .with_capacity(Capacity::new("8", "8Gi", 50))
            .with_on_drop(ShutdownPolicy::StopAll {
                grace: Duration::from_secs(1),
            }),
        )
        .await
        .expect("the process backend starts (a pod network namespace needs root, ip and nsenter)");
        Self::start_on(cluster, name, Arc::new(backend)).await
    }
}

impl Drop for FunctionNode {
    /// A test that failed half-way still removes its Node, so the pods bound to it are
    /// collected and the namespace can go.
    fn drop(&mut self) {
        self.shutdown.shutdown();
        if self.stopped {
            return;
        }
        let (name, config) = (self.name.clone(), self.config.clone());
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let client = kube::Client::try_from(config).map_err(std::io::Error::other)?;
                let nodes: Api<Node> = Api::all(client);
                nodes
                    .delete(&name, &DeleteParams::default())
                    .await
                    .map(|_| ())
                    .map_err(std::io::Error::other)
            })
        })
        .join();
    }
}

/// Writes what the operator writes for Function `name`: a Deployment and a Service named `name`,
/// pods labelled `faas.rs/function: name` on the virtual node, port 8080 named `http`.
async fn deploy_function(
    ns: &TestNamespace,
    node: &FunctionNode,
    name: &str,
    function: &str,
    replicas: i32,
    ready_path: &str,
) {
    let container = json!({
        "name": "function",
        "image": function_image(function),
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": ready_path, "port": "http"}, "periodSeconds": 1},
    });
    deploy_container(ns, node, name, replicas, container).await;
}

async fn deploy_container(
    ns: &TestNamespace,
    node: &FunctionNode,
    name: &str,
    replicas: i32,
    container: serde_json::Value,
) {
    let labels = json!({ FUNCTION_LABEL: name });
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    // The operator's selector, and this test's own node (tests run side by side).
                    "nodeSelector": {"type": "virtual-kubelet", "kubernetes.io/hostname": node.name},
                    "tolerations": [{"key": "virtual-kubelet.io/provider", "operator": "Exists", "effect": "NoSchedule"}],
                    "terminationGracePeriodSeconds": 10,
                    "containers": [container],
                },
            },
        },
    }))
    .expect("a valid Deployment");
    ns.api::<Deployment>()
        .create(&PostParams::default(), &deployment)
        .await
        .expect("the Deployment is created");
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "selector": labels,
            "ports": [{"name": "http", "port": 8080, "targetPort": "http"}],
        },
    }))
    .expect("a valid Service");
    ns.api::<Service>()
        .create(&PostParams::default(), &service)
        .await
        .expect("the Service is created");
}

async fn scale(ns: &TestNamespace, name: &str, replicas: i32) {
    ns.api::<Deployment>()
        .patch_scale(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": replicas}})),
        )
        .await
        .expect("the Deployment scales");
}

/// The gateway (and optionally the autoscaler) in this process, on a loopback port.
struct Traffic {
    addr: std::net::SocketAddr,
    table: Arc<RoutingTable>,
    stop: CancellationToken,
    scaler_stop: Option<CancellationToken>,
    task: tokio::task::JoinHandle<faas_k8s::Result<()>>,
}

/// Grants the restricted identity, in `ns`, what the gateway and the autoscaler need and no
/// more, and returns its client: they run under it.
async fn least_privilege_client(cluster: &TestCluster, ns: &TestNamespace) -> kube::Client {
    let role: Role = serde_json::from_value(json!({
        "metadata": {"name": "faas-gateway"},
        "rules": faas_k8s::gateway::rbac::gateway_rules(Some(&ScaleTarget::Deployment)),
    }))
    .expect("a valid Role");
    ns.api::<Role>()
        .create(&PostParams::default(), &role)
        .await
        .expect("the Role is created");
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "faas-gateway"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "faas-gateway"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": cluster.restricted_user()}],
    }))
    .expect("a valid RoleBinding");
    ns.api::<RoleBinding>()
        .create(&PostParams::default(), &binding)
        .await
        .expect("the RoleBinding is created");
    cluster
        .restricted_client()
        .await
        .expect("the restricted identity's client")
}

impl Traffic {
    /// The gateway and (with a policy) the autoscaler, under the least-privilege identity.
    async fn start(
        cluster: &TestCluster,
        ns: &TestNamespace,
        policy: Option<ScalingPolicy>,
    ) -> Self {
        let client = least_privilege_client(cluster, ns).await;
        let config = GatewayConfig::builder()
            .default_namespace(ns.name())
            .watch_namespace(ns.name())
            .body_limit(1024)
            .build();
        let gateway = Gateway::builder(config).discover(client.clone()).build();
        let table = gateway.routing_table();
        let scaler_stop = policy.map(|policy| {
            let scaling = AutoscalerConfig::builder()
                .target(ScaleTarget::Deployment)
                .namespace(ns.name())
                .selector(FUNCTION_LABEL)
                .tick(Duration::from_millis(250))
                .default_policy(policy)
                .build();
            let autoscaler = Autoscaler::new(client.clone(), scaling, table.clone())
                .with_metrics(gateway.metrics());
            let stop = autoscaler.shutdown_handle();
            tokio::spawn(autoscaler.run());
            stop
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = gateway.shutdown_handle();
        let task = tokio::spawn(gateway.serve(listener));
        Traffic {
            addr,
            table,
            stop,
            scaler_stop,
            task,
        }
    }

    async fn stop(self) {
        self.stop.cancel();
        self.task.await.unwrap().unwrap();
        if let Some(stop) = self.scaler_stop {
            stop.cancel();
        }
    }
}

/// One HTTP/1.1 request on a fresh connection: the status and the body.
async fn request(
    addr: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nhost: gateway\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
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

fn error_kind(body: &str) -> String {
    let value: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body:?}"));
    value["error"]["kind"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn wait_endpoints(table: &RoutingTable, key: &FunctionKey, count: u32) {
    wait::until(
        format!("{count} ready endpoints of {key} in the gateway"),
        || async move {
            let load = table.load_of(key);
            Ok(if load.ready == count {
                Poll::Ready(())
            } else {
                Poll::Pending(format!("{} ready, {} held", load.ready, load.held))
            })
        },
    )
    .await
    .expect("the gateway sees the endpoints");
}

async fn pods_of(ns: &TestNamespace, name: &str) -> Vec<Pod> {
    ns.api::<Pod>()
        .list(&ListParams::default().labels(&format!("{FUNCTION_LABEL}={name}")))
        .await
        .expect("pods are listed")
        .items
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_reaches_the_function_on_the_virtual_node_and_wakes_it_from_zero() -> TestResult {
    let cluster = TestCluster::require().await;
    let node = FunctionNode::start(&cluster).await;
    let ns = cluster.namespace("gw-seed").await?;
    let policy = ScalingPolicy::builder()
        .target_concurrency(1.0)
        .scale_to_zero_grace(Duration::from_secs(3))
        .stable_window(Duration::from_secs(6))
        .panic_window(Duration::from_secs(2))
        .build()?;
    let traffic = Traffic::start(&cluster, &ns, Some(policy)).await;
    deploy_function(&ns, &node, "hello", "hello", 1, "/_/ready").await;
    let key = FunctionKey::new(ns.name(), "hello");
    wait_endpoints(&traffic.table, &key, 1).await;

    let pods = pods_of(&ns, "hello").await;
    assert_eq!(
        pods[0].spec.as_ref().and_then(|s| s.node_name.as_deref()),
        Some(node.name.as_str()),
        "kube-scheduler bound the pod to the virtual node"
    );
    let (status, body) = request(traffic.addr, "/function/hello", &[], b"world").await?;
    assert_eq!((status, body.as_str()), (200, "hello, world"));

    // Idle past the grace period: to zero, no pods left.
    let deployments = ns.api::<Deployment>();
    wait::until("the idle function to scale to zero", || {
        let deployments = deployments.clone();
        let ns = &ns;
        async move {
            let replicas = deployments.get("hello").await?.spec.replicas;
            let pods = pods_of(ns, "hello").await.len();
            Ok(if replicas == Some(0) && pods == 0 {
                Poll::Ready(())
            } else {
                Poll::Pending(format!("replicas {replicas:?}, {pods} pods"))
            })
        }
    })
    .await?;
    wait_endpoints(&traffic.table, &key, 0).await;

    // A call wakes it and is answered.
    let started = Instant::now();
    let (status, body) = request(traffic.addr, "/function/hello", &[], b"again").await?;
    let woke_in = started.elapsed();
    assert_eq!(
        (status, body.as_str()),
        (200, "hello, again"),
        "the waking call is answered"
    );
    eprintln!("woken from zero and answered in {woke_in:?}");

    traffic.stop().await;
    ns.delete().await?;
    node.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steady_load_while_scaling_1_5_1_0_1_loses_no_call() -> TestResult {
    let cluster = TestCluster::require().await;
    let node = FunctionNode::start(&cluster).await;
    let ns = cluster.namespace("gw-load").await?;
    // No autoscaler: the test scales as `kubectl scale` would and wakes the function at zero
    // itself once it sees a held call.
    let traffic = Traffic::start(&cluster, &ns, None).await;
    deploy_function(&ns, &node, "slow", "slow", 1, "/_/ready").await;
    let key = FunctionKey::new(ns.name(), "slow");
    wait_endpoints(&traffic.table, &key, 1).await;

    // Four callers, each a call of 20 ms after another, until the scaling is done.
    let done = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let (done, answered, failures, addr) = (
                done.clone(),
                answered.clone(),
                failures.clone(),
                traffic.addr,
            );
            tokio::spawn(async move {
                let mut calls = 0u32;
                // Bounded: stops when told, and never runs more than 20 000 calls.
                while !done.load(Ordering::SeqCst) && calls < 20_000 {
                    calls += 1;
                    match request(addr, "/function/slow", &[("x-timeout", "60s")], b"20").await {
                        Ok((200, body)) if body == "slept 20" => {
                            answered.fetch_add(1, Ordering::Relaxed);
                        }
                        other => failures.lock().unwrap().push(format!("{other:?}")),
                    }
                }
            })
        })
        .collect();

    for replicas in [5, 1] {
        scale(&ns, "slow", replicas).await;
        wait_endpoints(&traffic.table, &key, replicas as u32).await;
        let before = answered.load(Ordering::Relaxed);
        wait::until("calls answered at this scale", || {
            let answered = answered.clone();
            async move {
                Ok(if answered.load(Ordering::Relaxed) >= before + 20 {
                    Poll::Ready(())
                } else {
                    Poll::Pending("waiting for calls".to_owned())
                })
            }
        })
        .await?;
    }
    scale(&ns, "slow", 0).await;
    let table = traffic.table.clone();
    wait::until("calls held at zero", || {
        let table = table.clone();
        let key = key.clone();
        async move {
            let load = table.load_of(&key);
            Ok(if load.ready == 0 && load.held > 0 {
                Poll::Ready(())
            } else {
                Poll::Pending(format!("{} ready, {} held", load.ready, load.held))
            })
        }
    })
    .await?;
    scale(&ns, "slow", 1).await;
    wait_endpoints(&traffic.table, &key, 1).await;
    let before = answered.load(Ordering::Relaxed);
    wait::until("calls answered after waking", || {
        let answered = answered.clone();
        async move {
            Ok(if answered.load(Ordering::Relaxed) >= before + 20 {
                Poll::Ready(())
            } else {
                Poll::Pending("waiting for calls".to_owned())
            })
        }
    })
    .await?;
    done.store(true, Ordering::SeqCst);
    for caller in callers {
        caller.await?;
    }
    let failures = failures.lock().unwrap().clone();
    let total = answered.load(Ordering::Relaxed);
    eprintln!("{total} calls answered while scaling 1 -> 5 -> 1 -> 0 -> 1");
    assert!(
        failures.is_empty(),
        "{} failed calls: {failures:?}",
        failures.len()
    );
    assert!(total > 80);

    traffic.stop().await;
    ns.delete().await?;
    node.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_oversized_and_never_ready_functions_answer_json_errors() -> TestResult {
    let cluster = TestCluster::require().await;
    let node = FunctionNode::start(&cluster).await;
    let ns = cluster.namespace("gw-errors").await?;
    let traffic = Traffic::start(&cluster, &ns, None).await;
    deploy_function(&ns, &node, "hello", "hello", 1, "/_/ready").await;
    // Its image names a function the node does not have: the pod never becomes ready.
    deploy_function(&ns, &node, "stuck", "missing", 1, "/_/ready").await;
    wait_endpoints(&traffic.table, &FunctionKey::new(ns.name(), "hello"), 1).await;
    let stuck_pods = ns.api::<Pod>();
    wait::until("the stuck pod to be bound to the node", || {
        let pods = stuck_pods.clone();
        async move {
            let list = pods
                .list(&ListParams::default().labels(&format!("{FUNCTION_LABEL}=stuck")))
                .await?;
            let bound = list
                .items
                .iter()
                .any(|p| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some());
            Ok(if bound {
                Poll::Ready(())
            } else {
                Poll::Pending(format!("{} pods", list.items.len()))
            })
        }
    })
    .await?;

    let (status, body) = request(traffic.addr, "/function/nobody", &[], b"").await?;
    assert_eq!((status, error_kind(&body).as_str()), (404, "not_found"));
    let big = vec![b'x'; 4096];
    let (status, body) = request(traffic.addr, "/function/hello", &[], &big).await?;
    assert_eq!(
        (status, error_kind(&body).as_str()),
        (413, "payload_too_large")
    );
    let (status, body) =
        request(traffic.addr, "/function/stuck", &[("x-timeout", "2s")], b"").await?;
    assert_eq!(
        (status, error_kind(&body).as_str()),
        (504, "timeout"),
        "{body}"
    );

    traffic.stop().await;
    ns.delete().await?;
    node.stop().await;
    Ok(())
}

/// The pids of the processes whose command line carries `--tag=<tag>`.
fn tagged_processes(tag: &str) -> Vec<i32> {
    let marker = format!("--tag={tag}");
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline"))
            && cmdline
                .split(|b| *b == 0)
                .any(|arg| arg == marker.as_bytes())
        {
            pids.push(pid);
        }
    }
    pids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_process_killed_mid_load_fails_no_call() -> TestResult {
    let cluster = TestCluster::require().await;
    let node = FunctionNode::start_processes(&cluster).await;
    let ns = cluster.namespace("gw-kill").await?;
    let traffic = Traffic::start(&cluster, &ns, None).await;
    let tag = unique("kill");
    let container = json!({
        "name": "function",
        "image": FUNCTION_BINARY,
        "args": [format!("--tag={tag}")],
        "env": [
            {"name": "PORT", "value": "8080"},
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        ],
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/_/ready", "port": "http"}, "periodSeconds": 1},
    });
    deploy_container(&ns, &node, "slow", 3, container).await;
    let key = FunctionKey::new(ns.name(), "slow");
    wait_endpoints(&traffic.table, &key, 3).await;

    let done = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
    let callers: Vec<_> = (0..6)
        .map(|_| {
            let (done, answered, failures, addr) = (
                done.clone(),
                answered.clone(),
                failures.clone(),
                traffic.addr,
            );
            tokio::spawn(async move {
                let mut calls = 0u32;
                while !done.load(Ordering::SeqCst) && calls < 20_000 {
                    calls += 1;
                    match request(addr, "/function/slow", &[("x-timeout", "60s")], b"50").await {
                        Ok((200, body)) if body == "slept 50" => {
                            answered.fetch_add(1, Ordering::Relaxed);
                        }
                        other => failures.lock().unwrap().push(format!("{other:?}")),
                    }
                }
            })
        })
        .collect();
    let wait_answers = |more: u64| {
        let answered = answered.clone();
        let before = answered.load(Ordering::Relaxed);
        async move {
            wait::until(format!("{more} more calls answered"), || {
                let answered = answered.clone();
                async move {
                    Ok(if answered.load(Ordering::Relaxed) >= before + more {
                        Poll::Ready(())
                    } else {
                        Poll::Pending(format!("{} answered", answered.load(Ordering::Relaxed)))
                    })
                }
            })
            .await
        }
    };
    wait_answers(30).await?;

    // SIGKILL one pod's process while calls are in flight to it.
    let pids = tagged_processes(&tag);
    assert_eq!(pids.len(), 3, "one process per pod: {pids:?}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pids[0]),
        nix::sys::signal::Signal::SIGKILL,
    )?;
    // The node restarts it; the gateway keeps answering meanwhile.
    let pods = ns.api::<Pod>();
    wait::until("the killed container to restart and be ready", || {
        let pods = pods.clone();
        async move {
            let list = pods
                .list(&ListParams::default().labels(&format!("{FUNCTION_LABEL}=slow")))
                .await?;
            let restarted = list.items.iter().any(|p| {
                p.status
                    .as_ref()
                    .and_then(|s| s.container_statuses.as_ref())
                    .is_some_and(|cs| cs.iter().any(|c| c.restart_count > 0 && c.ready))
            });
            Ok(if restarted {
                Poll::Ready(())
            } else {
                Poll::Pending("no restart yet".to_owned())
            })
        }
    })
    .await?;
    wait_endpoints(&traffic.table, &key, 3).await;
    wait_answers(30).await?;
    done.store(true, Ordering::SeqCst);
    for caller in callers {
        caller.await?;
    }
    let failures = failures.lock().unwrap().clone();
    eprintln!(
        "{} calls answered around a killed pod process",
        answered.load(Ordering::Relaxed)
    );
    assert!(
        failures.is_empty(),
        "{} failed calls: {failures:?}",
        failures.len()
    );

    traffic.stop().await;
    ns.delete().await?;
    node.stop().await;
    Ok(())
}
