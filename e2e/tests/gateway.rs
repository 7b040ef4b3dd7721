//! The seed's figure on the real control plane, with a virtual node as the only node: a
//! `Function` resource, the operator turning it into a Deployment and a Service, kube-scheduler
//! binding the pods to the virtual node, the node running them, and calls through the gateway
//! routed from EndpointSlices; the autoscaler writes the Function's scale subresource (to zero
//! when idle, back on the next call). The operator, the gateway and the autoscaler each run under
//! a ServiceAccount holding only the permissions their code generates.
//!
//! Needs `cargo xtask cluster up` and root (the pods' network namespace); without a control plane
//! every test fails saying so.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use faas_core::{FunctionDefinition, Registry};
use faas_e2e::hosting::{
    FunctionNode, TestOperator, install_function_crd, operator_client, serial,
    service_account_client,
};
use faas_e2e::vnode::{TestNode, unique_name as unique};
use faas_e2e::wait::{self, Poll};
use faas_e2e::{TestCluster, TestNamespace};
use faas_k8s::autoscaler::{Autoscaler, AutoscalerConfig, ScaleTarget, ScalingPolicy};
use faas_k8s::function::{Function, FunctionScaling, FunctionSpec, Placement};
use faas_k8s::gateway::{
    BasicAuth, FUNCTION_LABEL, FunctionKey, Gateway, GatewayConfig, RoutingTable,
};
use faas_k8s::node::function::function_image;
use faas_k8s::node::network::PodNetwork;
use faas_k8s::node::process::{ImageMap, ProcessBackend, ProcessBackendConfig, ShutdownPolicy};
use faas_k8s::node::{AddressPool, Capacity};
use faas_k8s::provider::KubernetesProvider;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding, RoleRef, Subject};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The network namespace of the process node (see `virtual_node.rs`), and this file's part of
/// its range: 10.246.100.0/24 and up.
const NETNS: &str = "faase2e";
const NETNS_CIDR: &str = "10.246.0.0/16";
static NEXT_RANGE: AtomicU8 = AtomicU8::new(100);
/// The image the process node runs as `faas-test-function`.
const FUNCTION_BINARY: &str = "local/faas-test-function";
/// The credentials of `/system/*` in these tests, and their `Authorization` header.
const USER: &str = "admin";
const PASSWORD: &str = "s3cret";
const AUTHORIZATION: &str = "Basic YWRtaW46czNjcmV0";

async fn hello(name: String) -> String {
    format!("hello, {name}")
}

async fn slow(ms: String) -> String {
    let ms: u64 = ms.trim().parse().unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    format!("slept {ms}")
}

fn registry() -> Registry {
    Registry::from([
        FunctionDefinition::from_handler("hello", hello),
        FunctionDefinition::from_handler("slow", slow),
    ])
}

/// A virtual node running each container as an OS process (the function binary of this crate).
async fn process_node(cluster: &TestCluster) -> TestNode {
    let name = unique("gw-proc");
    let n = NEXT_RANGE.fetch_add(1, Ordering::SeqCst);
    let backend = ProcessBackend::new(
        ProcessBackendConfig::new(
            std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
                .join("gateway")
                .join(&name),
        )
        .with_images(
            ImageMap::new().with_image(FUNCTION_BINARY, env!("CARGO_BIN_EXE_faas-test-function")),
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
    TestNode::start(cluster, name, Arc::new(backend))
        .await
        .expect("the virtual node registers")
}

/// A Function placed on the virtual node, running `image`, with a short drain.
fn function(name: &str, image: impl Into<String>) -> Function {
    Function::new(
        name,
        FunctionSpec::new(image)
            .with_placement(Placement::VirtualNode)
            .with_drain_timeout(Duration::from_secs(5)),
    )
}

async fn create_function(ns: &TestNamespace, function: &Function) {
    ns.api::<Function>()
        .create(&PostParams::default(), function)
        .await
        .expect("the Function is created");
}

/// Writes the Function's scale subresource, as `kubectl scale function` does.
async fn scale(ns: &TestNamespace, name: &str, replicas: i32) {
    ns.api::<Function>()
        .patch_scale(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": replicas}})),
        )
        .await
        .expect("the Function scales");
}

/// Most tests' stage: the cluster (held for this test alone), a virtual node running functions
/// in-process, a namespace, and the operator and the gateway in it.
struct Scene {
    _serial: tokio::sync::MutexGuard<'static, ()>,
    _cluster: TestCluster,
    node: FunctionNode,
    ns: TestNamespace,
    seed: Seed,
}

impl Scene {
    async fn start(
        prefix: &str,
        options: TrafficOptions,
    ) -> Result<Self, Box<dyn std::error::Error>> {
        let serial = serial().await;
        let cluster = TestCluster::require().await;
        install_function_crd(&cluster).await?;
        let node = FunctionNode::start(&cluster, registry()).await?;
        let ns = cluster.namespace(prefix).await?;
        let seed = Seed::start(&cluster, &ns, options).await;
        Ok(Scene {
            _serial: serial,
            _cluster: cluster,
            node,
            ns,
            seed,
        })
    }

    /// Stops the gateway and the operator, deletes the namespace and stops the node.
    async fn stop(self) -> TestResult {
        self.seed.stop().await;
        self.ns.delete().await?;
        self.node.stop().await;
        Ok(())
    }
}

/// What one test runs: the operator under its own identity and the gateway (with the
/// autoscaler, when asked) under another, both limited to the test's namespace.
struct Seed {
    operator: TestOperator,
    traffic: Traffic,
}

impl Seed {
    async fn start(cluster: &TestCluster, ns: &TestNamespace, options: TrafficOptions) -> Self {
        let operator = TestOperator::for_namespace(
            operator_client(cluster, ns, "operator")
                .await
                .expect("the operator's identity"),
            ns,
        );
        let traffic = Traffic::start(cluster, ns, options).await;
        Seed { operator, traffic }
    }

    async fn stop(self) {
        self.traffic.stop().await;
        assert!(
            !self.operator.is_finished(),
            "the operator ran until stopped"
        );
        self.operator.stop().await;
    }
}

/// How a test runs the gateway.
#[derive(Default)]
struct TrafficOptions {
    /// The autoscaler's defaults for what a Function's `spec.scaling` leaves out; no autoscaler
    /// without.
    autoscaler: Option<ScalingPolicy>,
    /// Basic auth on `/system/*`.
    credentials: Option<BasicAuth>,
}

/// The gateway (and optionally the autoscaler) in this process, on a loopback port.
struct Traffic {
    addr: std::net::SocketAddr,
    table: Arc<RoutingTable>,
    stop: CancellationToken,
    scaler_stop: Option<CancellationToken>,
    task: tokio::task::JoinHandle<faas_k8s::Result<()>>,
}

/// Grants ServiceAccount `gateway` of `ns`, in `ns` only, the rules the gateway's code generates
/// (EndpointSlices; Functions and their scale for the autoscaler and `/system/*`; pods' deletion
/// cost) and returns its client: the gateway and the autoscaler run under it.
async fn gateway_client(cluster: &TestCluster, ns: &TestNamespace) -> kube::Client {
    let apply = PatchParams::apply("faas-e2e").force();
    let role = Role {
        metadata: kube::api::ObjectMeta {
            name: Some("faas-gateway".into()),
            namespace: Some(ns.name().to_owned()),
            ..Default::default()
        },
        rules: faas_k8s::gateway::rbac::cluster_role().rules,
    };
    ns.api::<Role>()
        .patch("faas-gateway", &apply, &Patch::Apply(&role))
        .await
        .expect("the gateway's Role");
    let binding = RoleBinding {
        metadata: kube::api::ObjectMeta {
            name: Some("faas-gateway".into()),
            namespace: Some(ns.name().to_owned()),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "Role".into(),
            name: "faas-gateway".into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: "gateway".into(),
            namespace: Some(ns.name().to_owned()),
            api_group: None,
        }]),
    };
    ns.api::<RoleBinding>()
        .patch("faas-gateway", &apply, &Patch::Apply(&binding))
        .await
        .expect("the gateway's RoleBinding");
    service_account_client(cluster, ns, "gateway")
        .await
        .expect("the gateway's identity")
}

impl Traffic {
    /// The gateway, `/system/*` over the Kubernetes provider, and (when asked) the autoscaler
    /// writing Functions' scale, under the gateway's least-privilege identity.
    async fn start(cluster: &TestCluster, ns: &TestNamespace, options: TrafficOptions) -> Self {
        let client = gateway_client(cluster, ns).await;
        let mut config = GatewayConfig::builder()
            .default_namespace(ns.name())
            .watch_namespace(ns.name())
            .body_limit(1024);
        if let Some(credentials) = options.credentials {
            config = config.credentials(credentials);
        }
        let gateway = Gateway::builder(config.build())
            .discover(client.clone())
            .provider(Arc::new(KubernetesProvider::new(client.clone())))
            .build();
        let table = gateway.routing_table();
        let scaler_stop = options.autoscaler.map(|policy| {
            let scaling = AutoscalerConfig::builder()
                .target(ScaleTarget::Function)
                .namespace(ns.name())
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

/// One HTTP/1.1 POST on a fresh connection: the status and the body.
async fn request(
    addr: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    send(addr, "POST", path, headers, body).await
}

/// One HTTP/1.1 request with `method` on a fresh connection: the status and the body.
async fn send(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: gateway\r\nconnection: close\r\ncontent-length: {}\r\n",
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

/// Waits until `answered` grew by `more`.
async fn wait_answers(answered: &Arc<AtomicU64>, more: u64) {
    let before = answered.load(Ordering::Relaxed);
    wait::until(format!("{more} more calls answered"), || {
        let answered = answered.clone();
        async move {
            let now = answered.load(Ordering::Relaxed);
            Ok(if now >= before + more {
                Poll::Ready(())
            } else {
                Poll::Pending(format!("{now} answered"))
            })
        }
    })
    .await
    .expect("calls are answered");
}

/// Callers that each send `slow` calls of `ms` one after another until told to stop (and never
/// more than 20 000 each), counting the answers and keeping every failure.
struct SteadyLoad {
    done: Arc<AtomicBool>,
    answered: Arc<AtomicU64>,
    failures: Arc<std::sync::Mutex<Vec<String>>>,
    callers: Vec<tokio::task::JoinHandle<()>>,
}

impl SteadyLoad {
    fn start(addr: std::net::SocketAddr, callers: usize, ms: u64) -> Self {
        let done = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
        let callers = (0..callers)
            .map(|_| {
                let (done, answered, failures) = (done.clone(), answered.clone(), failures.clone());
                tokio::spawn(async move {
                    let expected = format!("slept {ms}");
                    let body = ms.to_string();
                    let mut calls = 0u32;
                    while !done.load(Ordering::SeqCst) && calls < 20_000 {
                        calls += 1;
                        match request(
                            addr,
                            "/function/slow",
                            &[("x-timeout", "60s")],
                            body.as_bytes(),
                        )
                        .await
                        {
                            Ok((200, body)) if body == expected => {
                                answered.fetch_add(1, Ordering::Relaxed);
                            }
                            other => failures.lock().unwrap().push(format!("{other:?}")),
                        }
                    }
                })
            })
            .collect();
        SteadyLoad {
            done,
            answered,
            failures,
            callers,
        }
    }

    /// Stops the callers; the answers counted and the failures seen.
    async fn stop(self) -> (u64, Vec<String>) {
        self.done.store(true, Ordering::SeqCst);
        for caller in self.callers {
            caller.await.expect("a caller does not panic");
        }
        let failures = self.failures.lock().unwrap().clone();
        (self.answered.load(Ordering::Relaxed), failures)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_reaches_the_function_on_the_virtual_node_and_wakes_it_from_zero() -> TestResult {
    // The Function's own scaling, over the autoscaler's defaults for the windows.
    let defaults = ScalingPolicy::builder()
        .stable_window(Duration::from_secs(6))
        .panic_window(Duration::from_secs(2))
        .build()?;
    let scene = Scene::start(
        "gw-seed",
        TrafficOptions {
            autoscaler: Some(defaults),
            ..TrafficOptions::default()
        },
    )
    .await?;
    let (node, ns, seed) = (&scene.node, &scene.ns, &scene.seed);
    let mut hello = function("hello", function_image("hello"));
    hello.spec = hello.spec.with_scaling(
        FunctionScaling::default()
            .with_min(0)
            .with_target_concurrency(1)
            .with_scale_to_zero_grace(Duration::from_secs(3)),
    );
    create_function(ns, &hello).await;
    let key = FunctionKey::new(ns.name(), "hello");
    wait_endpoints(&seed.traffic.table, &key, 1).await;

    let pods = pods_of(ns, "hello").await;
    assert_eq!(
        pods[0].spec.as_ref().and_then(|s| s.node_name.as_deref()),
        Some(node.name()),
        "kube-scheduler bound the operator's pod to the virtual node"
    );
    let (status, body) = request(seed.traffic.addr, "/function/hello", &[], b"world").await?;
    assert_eq!((status, body.as_str()), (200, "hello, world"));

    // Idle past the grace period: the autoscaler writes 0 to the Function's scale, the operator
    // to the Deployment, and no pod is left.
    let functions = ns.api::<Function>();
    let deployments = ns.api::<Deployment>();
    wait::until("the idle function to scale to zero", || {
        let (functions, deployments, ns) = (functions.clone(), deployments.clone(), &ns);
        async move {
            let wanted = functions.get("hello").await?.spec.replicas;
            let replicas = deployments.get("hello").await?.spec.replicas;
            let pods = pods_of(ns, "hello").await.len();
            Ok(if wanted == Some(0) && replicas == Some(0) && pods == 0 {
                Poll::Ready(())
            } else {
                Poll::Pending(format!(
                    "Function {wanted:?}, Deployment {replicas:?}, {pods} pods"
                ))
            })
        }
    })
    .await?;
    wait_endpoints(&seed.traffic.table, &key, 0).await;
    node.wait_backend_pods(0).await?;

    // A call wakes it and is answered.
    let started = Instant::now();
    let (status, body) = request(seed.traffic.addr, "/function/hello", &[], b"again").await?;
    let woke_in = started.elapsed();
    assert_eq!(
        (status, body.as_str()),
        (200, "hello, again"),
        "the waking call is answered"
    );
    eprintln!("woken from zero and answered in {woke_in:?}");
    let wanted = functions.get("hello").await?.spec.replicas;
    assert_eq!(wanted, Some(1), "the autoscaler woke the Function itself");

    scene.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steady_load_while_scaling_1_5_1_0_1_loses_no_call() -> TestResult {
    let scene = Scene::start("gw-load", TrafficOptions::default()).await?;
    // No autoscaler: the test scales the Function as `kubectl scale function` would, and wakes
    // it at zero itself once it sees a held call.
    let (ns, seed) = (&scene.ns, &scene.seed);
    create_function(ns, &function("slow", function_image("slow"))).await;
    let key = FunctionKey::new(ns.name(), "slow");
    wait_endpoints(&seed.traffic.table, &key, 1).await;

    // Four callers, each a call of 20 ms after another, until the scaling is done.
    let load = SteadyLoad::start(seed.traffic.addr, 4, 20);
    for replicas in [5, 1] {
        scale(ns, "slow", replicas).await;
        wait_endpoints(&seed.traffic.table, &key, replicas as u32).await;
        wait_answers(&load.answered, 20).await;
    }
    scale(ns, "slow", 0).await;
    let table = seed.traffic.table.clone();
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
    scale(ns, "slow", 1).await;
    wait_endpoints(&seed.traffic.table, &key, 1).await;
    wait_answers(&load.answered, 20).await;
    let (total, failures) = load.stop().await;
    eprintln!("{total} calls answered while scaling 1 -> 5 -> 1 -> 0 -> 1");
    assert!(
        failures.is_empty(),
        "{} failed calls: {failures:?}",
        failures.len()
    );
    assert!(total > 80);

    scene.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_oversized_and_never_ready_functions_answer_json_errors() -> TestResult {
    let scene = Scene::start("gw-errors", TrafficOptions::default()).await?;
    let (ns, seed) = (&scene.ns, &scene.seed);
    create_function(ns, &function("hello", function_image("hello"))).await;
    // Its image names a function the node does not have: the pod never becomes ready.
    create_function(ns, &function("stuck", function_image("missing"))).await;
    wait_endpoints(
        &seed.traffic.table,
        &FunctionKey::new(ns.name(), "hello"),
        1,
    )
    .await;
    wait::until("the stuck pod to be bound to the node", || {
        let ns = &ns;
        async move {
            let pods = pods_of(ns, "stuck").await;
            let bound = pods
                .iter()
                .any(|p| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some());
            Ok(if bound {
                Poll::Ready(())
            } else {
                Poll::Pending(format!("{} pods", pods.len()))
            })
        }
    })
    .await?;
    let table = seed.traffic.table.clone();
    let stuck = FunctionKey::new(ns.name(), "stuck");
    wait::until("the gateway to know the stuck function", || {
        let (table, stuck) = (table.clone(), stuck.clone());
        async move {
            Ok(if table.is_known(&stuck) {
                Poll::Ready(())
            } else {
                Poll::Pending("no EndpointSlice seen yet".to_owned())
            })
        }
    })
    .await?;

    let addr = seed.traffic.addr;
    let (status, body) = request(addr, "/function/nobody", &[], b"").await?;
    assert_eq!((status, error_kind(&body).as_str()), (404, "not_found"));
    let big = vec![b'x'; 4096];
    let (status, body) = request(addr, "/function/hello", &[], &big).await?;
    assert_eq!(
        (status, error_kind(&body).as_str()),
        (413, "payload_too_large")
    );
    let (status, body) = request(addr, "/function/stuck", &[("x-timeout", "2s")], b"").await?;
    assert_eq!(
        (status, error_kind(&body).as_str()),
        (504, "timeout"),
        "{body}"
    );

    scene.stop().await
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
    let _serial = serial().await;
    let cluster = TestCluster::require().await;
    install_function_crd(&cluster).await?;
    let node = process_node(&cluster).await;
    let ns = cluster.namespace("gw-kill").await?;
    let seed = Seed::start(&cluster, &ns, TrafficOptions::default()).await;
    let tag = unique("kill");
    let mut slow = function("slow", FUNCTION_BINARY);
    slow.spec = slow
        .spec
        .with_args([format!("--tag={tag}")])
        .with_replicas(3);
    create_function(&ns, &slow).await;
    let key = FunctionKey::new(ns.name(), "slow");
    wait_endpoints(&seed.traffic.table, &key, 3).await;

    let load = SteadyLoad::start(seed.traffic.addr, 6, 50);
    wait_answers(&load.answered, 30).await;

    // SIGKILL one pod's process while calls are in flight to it.
    let pids = tagged_processes(&tag);
    assert_eq!(pids.len(), 3, "one process per pod: {pids:?}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pids[0]),
        nix::sys::signal::Signal::SIGKILL,
    )?;
    // The node restarts it; the gateway keeps answering meanwhile.
    wait::until("the killed container to restart and be ready", || {
        let ns = &ns;
        async move {
            let restarted = pods_of(ns, "slow").await.iter().any(|p| {
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
    wait_endpoints(&seed.traffic.table, &key, 3).await;
    wait_answers(&load.answered, 30).await;
    let (total, failures) = load.stop().await;
    eprintln!("{total} calls answered around a killed pod process");
    assert!(
        failures.is_empty(),
        "{} failed calls: {failures:?}",
        failures.len()
    );

    seed.stop().await;
    ns.delete().await?;
    node.stop().await?;
    Ok(())
}

/// `GET` with the test's credentials, as JSON.
async fn get_json(addr: std::net::SocketAddr, path: &str) -> serde_json::Value {
    let (status, body) = send(addr, "GET", path, &[("authorization", AUTHORIZATION)], b"")
        .await
        .expect("the gateway answers");
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body:?}"))
}

/// A request with the test's credentials and a JSON body: the status and the body.
async fn send_json(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: &serde_json::Value,
) -> (u16, String) {
    send(
        addr,
        method,
        path,
        &[
            ("authorization", AUTHORIZATION),
            ("content-type", "application/json"),
        ],
        body.to_string().as_bytes(),
    )
    .await
    .expect("the gateway answers")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openfaas_system_api_manages_functions_with_credentials_only() -> TestResult {
    let scene = Scene::start(
        "gw-system",
        TrafficOptions {
            credentials: Some(BasicAuth::new(USER, PASSWORD)),
            ..TrafficOptions::default()
        },
    )
    .await?;
    let (ns, seed) = (&scene.ns, &scene.seed);
    let addr = seed.traffic.addr;

    // Refused without the credentials, or with wrong ones: 401 with the JSON error body.
    let wrong = "Basic YWRtaW46d3Jvbmc="; // admin:wrong
    for headers in [vec![], vec![("authorization", wrong)]] {
        for (method, path) in [
            ("GET", "/system/functions"),
            ("POST", "/system/functions"),
            ("GET", "/system/function/hello"),
            ("POST", "/system/scale-function/hello"),
            ("DELETE", "/system/functions"),
            ("GET", "/system/info"),
        ] {
            let (status, body) = send(addr, method, path, &headers, b"{}").await?;
            assert_eq!(status, 401, "{method} {path} {headers:?}: {body}");
            error_kind(&body);
        }
    }
    assert_eq!(get_json(addr, "/system/functions").await, json!([]));
    let info = get_json(addr, "/system/info").await;
    assert_eq!(info["provider"]["orchestration"], "kubernetes");
    assert_eq!(info["asyncQueue"], "memory");

    // Deploy, as faas-cli does: the Function, then the operator's pods on the virtual node.
    let (status, body) = send_json(
        addr,
        "POST",
        "/system/functions",
        &json!({
            "service": "hello", "image": function_image("hello"),
            "labels": {"team": "a"}, "annotations": {"owner": "ada"},
        }),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let (status, body) = send_json(
        addr,
        "POST",
        "/system/functions",
        &json!({"service": "hello", "image": function_image("hello")}),
    )
    .await;
    assert_eq!(
        (status, error_kind(&body).as_str()),
        (409, "bad_input"),
        "{body}"
    );
    let (status, body) = send_json(addr, "POST", "/system/functions", &json!({"image": "x"})).await;
    assert_eq!(status, 400, "{body}");
    let key = FunctionKey::new(ns.name(), "hello");
    wait_endpoints(&seed.traffic.table, &key, 1).await;
    for _ in 0..3 {
        let (status, body) = request(addr, "/function/hello", &[], b"sys").await?;
        assert_eq!((status, body.as_str()), (200, "hello, sys"));
    }

    // List and describe in OpenFaaS's shape, counting the calls the gateway answered.
    let listed = get_json(addr, "/system/functions").await;
    let listed = listed.as_array().expect("a list");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["name"], "hello");
    assert_eq!(listed[0]["image"], function_image("hello"));
    assert_eq!(listed[0]["labels"]["team"], "a");
    assert_eq!(listed[0]["invocationCount"], 3.0);
    let described = wait::until("describe to report the ready replica", || async {
        let described = get_json(addr, "/system/function/hello").await;
        Ok(if described["availableReplicas"] == 1 {
            Poll::Ready(described)
        } else {
            Poll::Pending(described.to_string())
        })
    })
    .await?;
    assert_eq!(described["replicas"], 1);
    assert_eq!(described["namespace"], ns.name());
    assert_eq!(described["annotations"]["owner"], "ada");
    assert_eq!(described["invocationCount"], 3.0);
    let (status, body) = send(
        addr,
        "GET",
        "/system/function/nobody",
        &[("authorization", AUTHORIZATION)],
        b"",
    )
    .await?;
    assert_eq!((status, error_kind(&body).as_str()), (404, "not_found"));

    // Update: the Function's spec changes and its pods roll to it.
    let (status, body) = send_json(
        addr,
        "PUT",
        "/system/functions",
        &json!({"service": "hello", "image": function_image("hello"), "envVars": {"VERSION": "2"}}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    wait::until("the update to reach the pods", || {
        let ns = &ns;
        async move {
            let pods = pods_of(ns, "hello").await;
            let rolled = pods.iter().any(|pod| {
                let ready = pod
                    .status
                    .as_ref()
                    .and_then(|s| s.container_statuses.as_ref())
                    .is_some_and(|cs| cs.iter().all(|c| c.ready));
                let updated = pod.spec.as_ref().is_some_and(|spec| {
                    spec.containers[0]
                        .env
                        .iter()
                        .flatten()
                        .any(|var| var.name == "VERSION" && var.value.as_deref() == Some("2"))
                });
                ready && updated
            });
            Ok(if rolled {
                Poll::Ready(())
            } else {
                Poll::Pending(format!("{} pods, none updated and ready", pods.len()))
            })
        }
    })
    .await?;

    // Scale: the Function's scale subresource, then two ready endpoints.
    let (status, body) = send_json(
        addr,
        "POST",
        "/system/scale-function/hello",
        &json!({"serviceName": "hello", "replicas": 2}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        ns.api::<Function>().get("hello").await?.spec.replicas,
        Some(2)
    );
    wait_endpoints(&seed.traffic.table, &key, 2).await;
    let (status, body) = request(addr, "/function/hello", &[], b"two").await?;
    assert_eq!((status, body.as_str()), (200, "hello, two"));

    // Remove: the Function goes, and with it (owned) its Deployment and pods.
    let (status, body) = send_json(
        addr,
        "DELETE",
        "/system/functions",
        &json!({"functionName": "hello"}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let functions = ns.api::<Function>();
    wait::until("the Function to be gone", || {
        let functions = functions.clone();
        async move {
            Ok(match functions.get_opt("hello").await? {
                None => Poll::Ready(()),
                Some(_) => Poll::Pending("still there".to_owned()),
            })
        }
    })
    .await?;
    let (status, body) = send_json(
        addr,
        "DELETE",
        "/system/functions",
        &json!({"functionName": "hello"}),
    )
    .await;
    assert_eq!(
        (status, error_kind(&body).as_str()),
        (404, "not_found"),
        "{body}"
    );
    assert_eq!(get_json(addr, "/system/functions").await, json!([]));

    scene.stop().await
}

/// A `faas-gateway` process (built in this crate as `faas-test-gateway`) keeping asynchronous
/// calls in the JetStream stream `stream`, with a short ack wait; no autoscaler, no `/system/*`.
struct GatewayProcess {
    addr: std::net::SocketAddr,
    child: tokio::process::Child,
}

/// A port free on loopback now, for a process that takes its listen address as a flag.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on loopback")
}

impl GatewayProcess {
    fn start(cluster: &TestCluster, ns: &TestNamespace, nats_url: &str, stream: &str) -> Self {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
        let kubeconfig = std::env::var_os("KUBECONFIG")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| cluster.paths().kubeconfig.clone());
        // Kept under the build's own scratch directory, where a failed run's
        // gateway log can be read and `cargo clean` removes it.
        let log = std::fs::File::create(
            std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
                .join(format!("{stream}-{}.log", addr.port())),
        )
        .expect("the gateway's log file");
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_faas-test-gateway"))
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["--listen", &addr.to_string()])
            .args([
                "--watch-namespace",
                ns.name(),
                "--default-namespace",
                ns.name(),
            ])
            .args(["--no-autoscaler", "--no-system-api"])
            .args(["--nats-url", nats_url, "--async-stream", stream])
            .args(["--nats-ack-wait", "2s", "--drain-timeout", "5s"])
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("faas-test-gateway starts");
        GatewayProcess { addr, child }
    }

    /// Waits until a synchronous call of `slow` goes through it.
    async fn wait_routing(&self) {
        let addr = self.addr;
        wait::until(
            "the gateway process to route calls to `slow`",
            || async move {
                Ok(match request(addr, "/function/slow", &[], b"0").await {
                    Ok((200, _)) => Poll::Ready(()),
                    other => Poll::Pending(format!("{other:?}")),
                })
            },
        )
        .await
        .expect("the gateway routes");
    }

    /// SIGKILL: no drain, no hand-back of the calls it took.
    async fn kill(mut self) {
        self.child.start_kill().expect("SIGKILL is sent");
        self.child.wait().await.expect("the gateway is reaped");
    }

    /// SIGTERM, then wait for its drain.
    async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(i32::try_from(pid).expect("a pid")),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let _ = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await;
    }
}

/// A NATS error as the wait helpers report it.
fn setup(error: impl std::fmt::Display) -> faas_e2e::Error {
    faas_e2e::Error::Setup(error.to_string())
}

/// A receiver of callbacks on loopback: the `x-function-status` of every POST, per call id.
type Answers = Arc<std::sync::Mutex<std::collections::BTreeMap<String, Vec<String>>>>;

async fn callback_receiver() -> (String, Answers) {
    let answers = Answers::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/done", listener.local_addr().unwrap());
    let kept = answers.clone();
    let app = axum::Router::new().route(
        "/done",
        axum::routing::post(move |headers: http::HeaderMap| {
            let kept = kept.clone();
            async move {
                let header = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                kept.lock()
                    .unwrap()
                    .entry(header("x-call-id"))
                    .or_default()
                    .push(header("x-function-status"));
                http::StatusCode::OK
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, answers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_gateway_loses_no_async_call_another_runs_them_after_the_ack_wait() -> TestResult
{
    let _serial = serial().await;
    let cluster = TestCluster::require().await;
    let nats_url = std::env::var("FAAS_NATS_URL").map_err(|_| {
        "FAAS_NATS_URL is not set: run `cargo xtask services up` and \
         `eval \"$(cargo xtask services env)\"` first (cargo xtask test starts NATS for this tier)"
    })?;
    let jetstream = async_nats::jetstream::new(
        async_nats::connect(nats_url.as_str())
            .await
            .map_err(|e| format!("no NATS server answers at {nats_url}: {e}"))?,
    );
    install_function_crd(&cluster).await?;
    let node = FunctionNode::start(&cluster, registry()).await?;
    let ns = cluster.namespace("gw-durable").await?;
    let operator =
        TestOperator::for_namespace(operator_client(&cluster, &ns, "operator").await?, &ns);
    create_function(&ns, &function("slow", function_image("slow"))).await;
    let stream = unique("GWKILL");
    let (callback, answers) = callback_receiver().await;

    // The first gateway takes every call (fewer than its 16 workers) and runs them: each sleeps
    // long enough in the function that none is answered before the kill.
    let first = GatewayProcess::start(&cluster, &ns, &nats_url, &stream);
    first.wait_routing().await;
    let calls = 12;
    for n in 0..calls {
        let call_id = format!("{stream}-{n}");
        let (status, body) = request(
            first.addr,
            "/async-function/slow",
            &[("x-callback-url", &callback), ("x-call-id", &call_id)],
            b"6000",
        )
        .await?;
        assert_eq!(status, 202, "{n}: {body}");
    }
    let consumer: async_nats::jetstream::consumer::PullConsumer = jetstream
        .get_stream(&stream)
        .await?
        .get_consumer("faas-gateway")
        .await
        .map_err(|e| format!("the durable consumer: {e}"))?;
    wait::until("the first gateway to take every call", || {
        let mut consumer = consumer.clone();
        async move {
            let info = consumer.info().await.map_err(setup)?;
            Ok(if info.num_ack_pending == calls {
                Poll::Ready(())
            } else {
                Poll::Pending(format!("{} taken", info.num_ack_pending))
            })
        }
    })
    .await?;
    assert!(
        answers.lock().unwrap().is_empty(),
        "a call was answered before the kill: the calls must outlast it"
    );
    first.kill().await;

    // A second gateway on the same stream gets them once the ack wait expires and answers each.
    let second = GatewayProcess::start(&cluster, &ns, &nats_url, &stream);
    wait::until("every call to be answered after the kill", || {
        let answers = answers.clone();
        async move {
            let answered = answers.lock().unwrap().len();
            Ok(if answered == calls {
                Poll::Ready(())
            } else {
                Poll::Pending(format!("{answered} of {calls} answered"))
            })
        }
    })
    .await?;
    // Settled: nothing left in the work queue, so nothing can be answered again.
    wait::until("the stream to be empty", || {
        let jetstream = jetstream.clone();
        let stream = stream.clone();
        async move {
            let info = jetstream
                .get_stream(&stream)
                .await
                .map_err(setup)?
                .info()
                .await
                .map_err(setup)?
                .state
                .messages;
            Ok(if info == 0 {
                Poll::Ready(())
            } else {
                Poll::Pending(format!("{info} stored"))
            })
        }
    })
    .await?;
    let answers = answers.lock().unwrap().clone();
    for n in 0..calls {
        let call_id = format!("{stream}-{n}");
        assert_eq!(
            answers.get(&call_id).map(Vec::as_slice),
            Some(&["200".to_owned()][..]),
            "{call_id} answered exactly once, with the function's answer"
        );
    }

    second.stop().await;
    let _ = jetstream.delete_stream(&stream).await;
    operator.stop().await;
    ns.delete().await?;
    node.stop().await;
    Ok(())
}
