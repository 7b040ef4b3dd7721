//! B4, B5 and B7: waking functions from zero through the gateway and scaling
//! them under a step of load, on the real control plane with a virtual node.
//!
//! - B4: cold start from zero through the gateway (the activator holds the
//!   call, the autoscaler writes the scale, the node starts the pod, the call
//!   is released to it), with the in-process function backend and with the
//!   process backend, against spawning the bare function process until it is
//!   ready. Every call must be answered.
//! - B5: N functions woken at once through the gateway (one call each),
//!   against the same Deployments scaled to one directly, timed to their first
//!   ready endpoint.
//! - B7: a warm function at one replica gets five times its target
//!   concurrency at once: the time to the first scale-up decision written, to
//!   a decision for five replicas, and to five ready endpoints.
//!
//! Needs the control plane of `cargo xtask cluster up` (`cargo xtask bench`
//! starts it) and root (the pods' network namespace). Prints one
//! `BENCH {json}` line per figure.
//!
//! Environment: `TRAFFIC_BENCHES` (default `B4,B5,B7`), `B4_RUNS` (default
//! 20), `B5_SIZES` (default `1,5,25,100`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use faas_benches::report::Measurement;
use faas_benches::traffic::{
    Traffic, call, deploy, desired, pod_network, quantile, scale, sibling_binary, wait_for,
};
use faas_core::{FunctionDefinition, Registry};
use faas_e2e::TestCluster;
use faas_e2e::vnode::TestNode;
use faas_k8s::autoscaler::ScalingPolicy;
use faas_k8s::gateway::FunctionKey;
use faas_k8s::node::function::{FunctionBackend, FunctionBackendConfig, function_image};
use faas_k8s::node::process::{ImageMap, ProcessBackend, ProcessBackendConfig, ShutdownPolicy};
use faas_k8s::node::{AddressPool, Capacity};
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use serde_json::json;

const PROCESS_IMAGE: &str = "local/b4-function";

async fn echo(body: bytes::Bytes) -> bytes::Bytes {
    body
}

async fn slow(ms: String) -> String {
    let ms: u64 = ms.trim().parse().unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    format!("slept {ms}")
}

fn function_container(function: &str) -> serde_json::Value {
    json!({
        "name": "function",
        "image": function_image(function),
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/_/ready", "port": "http"}, "periodSeconds": 1},
    })
}

fn process_container() -> serde_json::Value {
    json!({
        "name": "function",
        "image": PROCESS_IMAGE,
        "env": [
            {"name": "PORT", "value": "8080"},
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        ],
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/_/ready", "port": "http"}, "periodSeconds": 1},
    })
}

struct Bench {
    cluster: TestCluster,
    client: kube::Client,
    namespace: String,
    traffic: Traffic,
    functions: TestNode,
    processes: TestNode,
}

impl Bench {
    fn key(&self, name: &str) -> FunctionKey {
        FunctionKey::new(&self.namespace, name)
    }

    async fn wait_known(&self, name: &str) {
        let key = self.key(name);
        let table = self.traffic.table.clone();
        wait_for(&format!("the gateway to know {key}"), || {
            let table = table.clone();
            let key = key.clone();
            async move { table.is_known(&key) }
        })
        .await;
    }

    /// Waits until the autoscaler took `name` to zero and the gateway has no endpoint left.
    async fn wait_zero(&self, name: &str) {
        let key = self.key(name);
        wait_for(&format!("{key} at zero"), || async {
            desired(&self.client, &self.namespace, name).await == 0
                && self.traffic.table.load_of(&key).ready == 0
        })
        .await;
    }
}

/// B4: one function woken from zero `runs` times; the latencies in ms and the calls lost.
async fn cold_starts(bench: &Bench, name: &str, runs: usize) -> (Vec<f64>, u64) {
    let mut latencies = Vec::new();
    let mut lost = 0;
    for _ in 0..runs {
        bench.wait_zero(name).await;
        let started = Instant::now();
        let status = call(bench.traffic.addr, &format!("/function/{name}"), "cold").await;
        latencies.push(started.elapsed().as_secs_f64() * 1e3);
        if status != 200 {
            lost += 1;
        }
    }
    (latencies, lost)
}

/// B4's baseline: the bare function process from spawn to ready, `runs` times (ms).
async fn bare_process_starts(runs: usize) -> Vec<f64> {
    let binary = sibling_binary("b4-function");
    let mut latencies = Vec::new();
    for _ in 0..runs {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let started = Instant::now();
        let mut child = tokio::process::Command::new(&binary)
            .env("PORT", port.to_string())
            .env("POD_IP", "127.0.0.1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", binary.display()));
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        wait_for("the bare process to be ready", || async {
            ready(addr).await
        })
        .await;
        latencies.push(started.elapsed().as_secs_f64() * 1e3);
        let _ = child.kill().await;
    }
    latencies
}

/// `GET /_/ready` answers 200.
async fn ready(addr: std::net::SocketAddr) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
        return false;
    };
    if stream
        .write_all(b"GET /_/ready HTTP/1.1\r\nhost: b\r\nconnection: close\r\n\r\n")
        .await
        .is_err()
    {
        return false;
    }
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    response.starts_with(b"HTTP/1.1 200")
}

async fn b4(bench: &Bench) {
    let runs: usize = std::env::var("B4_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    deploy(
        &bench.client,
        &bench.namespace,
        "cold-fn",
        bench.functions.name(),
        0,
        function_container("cold-fn"),
    )
    .await;
    deploy(
        &bench.client,
        &bench.namespace,
        "cold-proc",
        bench.processes.name(),
        0,
        process_container(),
    )
    .await;
    bench.wait_known("cold-fn").await;
    bench.wait_known("cold-proc").await;
    let mut bare = bare_process_starts(runs).await;
    for (name, label) in [
        ("cold-fn", "function backend"),
        ("cold-proc", "process backend"),
    ] {
        let (mut latencies, lost) = cold_starts(bench, name, runs).await;
        eprintln!("B4 {label}: {latencies:?} ms, {lost} lost");
        let detail = format!(
            "{runs} wakes; {lost} calls lost; baseline: the bare process from spawn to ready (target p50 <= 250 ms, p99 <= 1 s)"
        );
        for (q, tag) in [(0.5, "p50"), (0.99, "p99")] {
            Measurement::new(
                "B4",
                format!("cold start {tag} (ms), {label}"),
                quantile(&mut latencies, q),
                quantile(&mut bare, q),
                detail.clone(),
            )
            .emit();
        }
    }
}

async fn b5(bench: &Bench) {
    let sizes: Vec<usize> = std::env::var("B5_SIZES")
        .unwrap_or_else(|_| "1,5,25,100".to_owned())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    for n in sizes {
        let names: Vec<String> = (0..n).map(|i| format!("wake-{n}-{i}")).collect();
        for name in &names {
            deploy(
                &bench.client,
                &bench.namespace,
                name,
                bench.functions.name(),
                0,
                function_container(name),
            )
            .await;
        }
        for name in &names {
            bench.wait_known(name).await;
        }
        // Through the gateway: one call per function, all at once.
        let started = Instant::now();
        let calls = names.iter().map(|name| {
            let addr = bench.traffic.addr;
            let path = format!("/function/{name}");
            async move {
                let status = call(addr, &path, "wake").await;
                (status, started.elapsed().as_secs_f64() * 1e3)
            }
        });
        let results = futures::future::join_all(calls).await;
        let lost = results.iter().filter(|(status, _)| *status != 200).count();
        let mut woken: Vec<f64> = results.into_iter().map(|(_, ms)| ms).collect();
        for name in &names {
            bench.wait_zero(name).await;
        }
        // Baseline: the same Deployments scaled to one directly, to their first ready endpoint.
        let started = Instant::now();
        let scaled = names.iter().map(|name| {
            let key = bench.key(name);
            async move {
                scale(&bench.client, &bench.namespace, name, 1).await;
                bench.traffic.wait_ready(&key, 1).await;
                started.elapsed().as_secs_f64() * 1e3
            }
        });
        let mut direct: Vec<f64> = futures::future::join_all(scaled).await;
        eprintln!(
            "B5 N={n}: through the gateway p95 {:.0} ms, scaled directly p95 {:.0} ms, {lost} lost",
            quantile(&mut woken, 0.95),
            quantile(&mut direct, 0.95)
        );
        Measurement::new(
            "B5",
            format!("N={n} woken at once, p95 (ms)"),
            quantile(&mut woken, 0.95),
            quantile(&mut direct, 0.95),
            format!("one call per function through the gateway, {lost} lost; baseline: the Deployments scaled directly (target N=25 p95 <= 1500 ms)"),
        )
        .emit();
        for name in &names {
            bench.wait_zero(name).await;
        }
    }
}

async fn b7(bench: &Bench, target: f64) {
    let name = "step";
    deploy(
        &bench.client,
        &bench.namespace,
        name,
        bench.functions.name(),
        1,
        function_container("step"),
    )
    .await;
    let key = bench.key(name);
    bench.wait_known(name).await;
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let caller = |body: &'static str| {
        let (stop, answered, failed, addr) = (
            stop.clone(),
            answered.clone(),
            failed.clone(),
            bench.traffic.addr,
        );
        tokio::spawn(async move {
            let mut calls = 0;
            while !stop.load(Ordering::SeqCst) && calls < 10_000 {
                calls += 1;
                if call(addr, "/function/step", body).await == 200 {
                    answered.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    // Below the target on one replica, from the start (held until the replica is
    // ready): it stays warm at one.
    let mut callers = vec![caller("200")];
    bench.traffic.wait_ready(&key, 1).await;
    wait_for("warm calls", || async {
        answered.load(Ordering::Relaxed) >= 10
    })
    .await;
    assert_eq!(desired(&bench.client, &bench.namespace, name).await, 1);
    let step = (5.0 * target) as usize;
    let started = Instant::now();
    callers.extend((0..step).map(|_| caller("500")));
    wait_for("a scale-up decision", || async {
        desired(&bench.client, &bench.namespace, name).await > 1
    })
    .await;
    let first = started.elapsed().as_secs_f64() * 1e3;
    wait_for("a decision for five replicas", || async {
        desired(&bench.client, &bench.namespace, name).await >= 5
    })
    .await;
    let five = started.elapsed().as_secs_f64() * 1e3;
    wait_for("five ready endpoints", || async {
        bench.traffic.table.load_of(&key).ready >= 5
    })
    .await;
    let ready = started.elapsed().as_secs_f64() * 1e3;
    stop.store(true, Ordering::SeqCst);
    for caller in callers {
        let _ = caller.await;
    }
    let failed = failed.load(Ordering::Relaxed);
    eprintln!(
        "B7: first decision {first:.0} ms, five replicas decided {five:.0} ms, five ready {ready:.0} ms, {failed} failed"
    );
    let detail = format!(
        "{step} callers (5x the target of {target}) on one warm replica; ratio against the 2000 ms target; {failed} calls failed"
    );
    Measurement::new(
        "B7",
        "time to the first scale-up decision (ms)",
        first,
        2000.0,
        detail.clone(),
    )
    .emit();
    Measurement::new(
        "B7",
        "time to a decision for 5 replicas (ms)",
        five,
        2000.0,
        detail.clone(),
    )
    .emit();
    Measurement::new("B7", "time to 5 ready replicas (ms)", ready, 2000.0, detail).emit();
}

#[tokio::main]
async fn main() {
    let wanted = std::env::var("TRAFFIC_BENCHES").unwrap_or_else(|_| "B4,B5,B7".to_owned());
    let wants = |id: &str| wanted.split(',').any(|w| w.trim().eq_ignore_ascii_case(id));
    let cluster = TestCluster::require().await;
    let client = cluster.client();
    let namespace = format!("bench-traffic-{}", std::process::id());
    let ns: Namespace =
        serde_json::from_value(json!({"metadata": {"name": namespace}})).expect("a Namespace");
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("the namespace is created");

    // A pod serves its function at `/function/{name}` under the Function's name: register the
    // handlers under the names the benchmarks deploy.
    let registry = Registry::from([
        FunctionDefinition::from_handler("echo", echo),
        FunctionDefinition::from_handler("cold-fn", echo),
        FunctionDefinition::from_handler("step", slow),
    ]);
    for n in [1usize, 5, 25, 100] {
        for i in 0..n {
            registry
                .register(FunctionDefinition::from_handler(
                    format!("wake-{n}-{i}"),
                    echo,
                ))
                .expect("distinct names");
        }
    }
    let (network, cidr) = pod_network(1);
    let functions = TestNode::start(
        &cluster,
        format!("bench-fn-{}", std::process::id()),
        Arc::new(FunctionBackend::new(
            FunctionBackendConfig::new(registry)
                .with_addresses(AddressPool::new(cidr.parse().expect("a CIDR")))
                .with_network(network)
                .with_capacity(Capacity::new("64", "64Gi", 500)),
        )),
    )
    .await
    .expect("the function node becomes Ready");
    let (network, cidr) = pod_network(2);
    let process_name = format!("bench-proc-{}", std::process::id());
    let processes = TestNode::start(
        &cluster,
        process_name.clone(),
        Arc::new(
            ProcessBackend::new(
                ProcessBackendConfig::new(std::env::temp_dir().join(&process_name))
                    .with_images(
                        ImageMap::new().with_image(PROCESS_IMAGE, sibling_binary("b4-function")),
                    )
                    .with_addresses(AddressPool::new(cidr.parse().expect("a CIDR")))
                    .with_network(network)
                    .with_capacity(Capacity::new("16", "16Gi", 100))
                    .with_on_drop(ShutdownPolicy::StopAll {
                        grace: Duration::from_secs(1),
                    }),
            )
            .await
            .expect("the process backend starts (root, ip and nsenter are needed)"),
        ),
    )
    .await
    .expect("the process node becomes Ready");
    let target = 2.0;
    let policy = ScalingPolicy::builder()
        .target_concurrency(target)
        .scale_to_zero_grace(Duration::from_secs(1))
        .stable_window(Duration::from_secs(6))
        .panic_window(Duration::from_secs(2))
        .build()
        .expect("a valid policy");
    let traffic = Traffic::start(&cluster, &namespace, policy, Duration::from_millis(100)).await;
    let bench = Bench {
        cluster,
        client: client.clone(),
        namespace: namespace.clone(),
        traffic,
        functions,
        processes,
    };
    if wants("B7") {
        b7(&bench, target).await;
    }
    if wants("B4") {
        b4(&bench).await;
    }
    if wants("B5") {
        b5(&bench).await;
    }
    bench.traffic.stop();
    let _ = Api::<Namespace>::all(client)
        .delete(&namespace, &DeleteParams::default())
        .await;
    let Bench {
        functions,
        processes,
        cluster,
        ..
    } = bench;
    functions
        .stop()
        .await
        .expect("the function node stops cleanly");
    processes
        .stop()
        .await
        .expect("the process node stops cleanly");
    drop(cluster);
}
