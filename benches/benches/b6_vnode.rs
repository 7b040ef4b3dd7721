//! B6: pods to Running on the virtual node, against the API server's raw
//! pod-create rate measured in the same run.
//!
//! Needs the control plane of `cargo xtask cluster up` (`cargo xtask bench`
//! starts it). Three phases, each in a namespace of its own:
//!
//! 1. baseline: N pods created with no node agent (bound to a node that does
//!    not exist), timing the API server alone;
//! 2. preset: N pods with `nodeName` set to the virtual node, timed from the
//!    first create request to the last pod observed Running;
//! 3. scheduled: the same through kube-scheduler (toleration + node selector).
//!
//! The node runs as its own process (`b6-node`, a `faas-vnode` with an echo
//! function registered and the in-process function backend), so its resident
//! memory can be read from `/proc` before and after the pods arrive.
//!
//! Environment: `B6_PODS` (default 1000), `B6_CONCURRENCY` creates in flight
//! (default 32).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use faas_benches::report::Measurement;
use faas_e2e::TestCluster;
use futures::{StreamExt, TryStreamExt, stream};
use hdrhistogram::Histogram;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use serde_json::json;

const NODE: &str = "b6-vnode";

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn pod(name: &str, node_name: Option<&str>) -> Pod {
    let mut spec = json!({
        "containers": [{ "name": "fn", "image": "faas.dev/function/echo", "ports": [{ "containerPort": 8080 }] }],
        "tolerations": [{ "key": "virtual-kubelet.io/provider", "operator": "Exists", "effect": "NoSchedule" }],
        "terminationGracePeriodSeconds": 0,
    });
    match node_name {
        Some(node) => spec["nodeName"] = json!(node),
        None => spec["nodeSelector"] = json!({ "kubernetes.io/hostname": NODE }),
    }
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": { "name": name, "labels": { "app": "b6" } },
        "spec": spec,
    }))
    .expect("a valid pod")
}

async fn namespace(client: &Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    api.create(&PostParams::default(), &ns)
        .await
        .unwrap_or_else(|e| panic!("create namespace {name}: {e}"));
    // The default ServiceAccount must exist before pods are admitted.
    let accounts: Api<k8s_openapi::api::core::v1::ServiceAccount> =
        Api::namespaced(client.clone(), name);
    for _ in 0..600 {
        if accounts.get_opt("default").await.ok().flatten().is_some() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no default ServiceAccount in {name}");
}

async fn delete_namespace(client: &Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let _ = api.delete(name, &DeleteParams::default()).await;
}

/// Creates `count` pods with `concurrency` requests in flight; returns when
/// each create request started, and the time the whole batch took.
async fn create_pods(
    api: &Api<Pod>,
    count: usize,
    concurrency: usize,
    node_name: Option<&str>,
) -> (HashMap<String, Instant>, Duration) {
    let started = Instant::now();
    let sent: Vec<(String, Instant)> = stream::iter(0..count)
        .map(|i| {
            let name = format!("b6-{i:05}");
            let pod = pod(&name, node_name);
            async move {
                let at = Instant::now();
                api.create(&PostParams::default(), &pod)
                    .await
                    .unwrap_or_else(|e| panic!("create pod {name}: {e}"));
                (name, at)
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    (sent.into_iter().collect(), started.elapsed())
}

/// Records when each pod of the namespace is first seen Running.
fn watch_running(api: Api<Pod>) -> Arc<Mutex<HashMap<String, Instant>>> {
    let seen = Arc::new(Mutex::new(HashMap::new()));
    let into = Arc::clone(&seen);
    tokio::spawn(async move {
        let mut events = std::pin::pin!(watcher(api, watcher::Config::default()).default_backoff());
        while let Ok(Some(event)) = events.try_next().await {
            let pods = match event {
                watcher::Event::Apply(pod) | watcher::Event::InitApply(pod) => vec![pod],
                _ => continue,
            };
            let now = Instant::now();
            for pod in pods {
                let running =
                    pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
                if running && let Some(name) = pod.metadata.name {
                    into.lock()
                        .expect("not poisoned")
                        .entry(name)
                        .or_insert(now);
                }
            }
        }
    });
    seen
}

fn rss_bytes(pid: u32) -> u64 {
    i32::try_from(pid)
        .ok()
        .and_then(|pid| procfs::process::Process::new(pid).ok())
        .and_then(|process| process.status().ok())
        .and_then(|status| status.vmrss)
        .map_or(0, |kb| kb * 1024)
}

struct Phase {
    rate: f64,
    p50: Duration,
    p99: Duration,
}

async fn run_phase(
    client: &Client,
    ns: &str,
    count: usize,
    concurrency: usize,
    node_name: Option<&str>,
) -> Phase {
    namespace(client, ns).await;
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let running = watch_running(api.clone());
    let first = Instant::now();
    let (sent, _) = create_pods(&api, count, concurrency, node_name).await;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let done = running.lock().expect("not poisoned").len();
        if done >= count {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {done} of {count} pods reached Running in 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seen = running.lock().expect("not poisoned").clone();
    let last = seen.values().max().copied().expect("pods ran");
    let mut latency = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("a histogram");
    for (name, at) in &sent {
        let ran = seen[name];
        latency.saturating_record(u64::try_from((ran - *at).as_micros()).unwrap_or(u64::MAX));
    }
    Phase {
        rate: count as f64 / (last - first).as_secs_f64(),
        p50: Duration::from_micros(latency.value_at_quantile(0.5)),
        p99: Duration::from_micros(latency.value_at_quantile(0.99)),
    }
}

fn node_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the bench's path");
    // target/release/deps/b6_vnode-HASH -> target/release/b6-node
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("a target directory")
        .join("b6-node")
}

#[tokio::main]
async fn main() {
    let count = env_or("B6_PODS", 1000);
    let concurrency = env_or("B6_CONCURRENCY", 32);
    let cluster = TestCluster::require().await;
    let client = cluster.client();
    let run_id = std::process::id();

    // 1. Baseline: the API server's create rate, no node agent.
    let baseline_ns = format!("b6-baseline-{run_id}");
    namespace(&client, &baseline_ns).await;
    let api: Api<Pod> = Api::namespaced(client.clone(), &baseline_ns);
    let (_, took) = create_pods(&api, count, concurrency, Some("b6-no-such-node")).await;
    let create_rate = count as f64 / took.as_secs_f64();
    eprintln!("baseline: {count} pods created in {took:.2?} ({create_rate:.0}/s)");
    delete_namespace(&client, &baseline_ns).await;

    // The node, as its own process.
    let binary = node_binary();
    let state = std::env::temp_dir().join(format!("b6-node-{run_id}"));
    let mut node = tokio::process::Command::new(&binary)
        .args([
            "--node-name",
            NODE,
            "--backend",
            "function",
            "--pod-cidr",
            "127.2.0.0/16",
        ])
        .args(["--max-pods", &(count + 10).to_string()])
        .arg("--state-dir")
        .arg(&state)
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
    let pid = node.id().expect("a running node");
    let nodes: Api<Node> = Api::all(client.clone());
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let ready = nodes.get_opt(NODE).await.ok().flatten().is_some_and(|n| {
            n.status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        });
        if ready {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the virtual node never became Ready"
        );
        assert!(
            node.try_wait().ok().flatten().is_none(),
            "the virtual node exited"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_rss = rss_bytes(pid);

    // 2. nodeName preset.
    let preset_ns = format!("b6-preset-{run_id}");
    let preset = run_phase(&client, &preset_ns, count, concurrency, Some(NODE)).await;
    let loaded_rss = rss_bytes(pid);
    let per_pod = loaded_rss.saturating_sub(idle_rss) as f64 / count as f64;
    eprintln!(
        "preset: {:.0} pods/s, p50 {:.2?}, p99 {:.2?}; node RSS {} KiB idle, {} KiB with {count} pods",
        preset.rate,
        preset.p50,
        preset.p99,
        idle_rss / 1024,
        loaded_rss / 1024
    );
    delete_namespace(&client, &preset_ns).await;
    let pods: Api<Pod> = Api::all(client.clone());
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let left = pods
            .list(&kube::api::ListParams::default().fields(&format!("spec.nodeName={NODE}")))
            .await
            .map(|l| l.items.len())
            .unwrap_or(usize::MAX);
        if left == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{left} pods still on the node after 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // 3. Through the scheduler.
    let scheduled_ns = format!("b6-scheduled-{run_id}");
    let scheduled = run_phase(&client, &scheduled_ns, count, concurrency, None).await;
    eprintln!(
        "scheduled: {:.0} pods/s, p50 {:.2?}, p99 {:.2?}",
        scheduled.rate, scheduled.p50, scheduled.p99
    );
    delete_namespace(&client, &scheduled_ns).await;

    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(pid).expect("a pid")),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = tokio::time::timeout(Duration::from_secs(30), node.wait()).await;
    let _ = nodes.delete(NODE, &DeleteParams::default()).await;
    let _ = std::fs::remove_dir_all(&state);

    let detail = format!(
        "{count} function-backend pods, {concurrency} creates in flight; baseline = API server pod creates with no node agent"
    );
    Measurement::new(
        "B6",
        "pods/s to Running, nodeName preset",
        preset.rate,
        create_rate,
        detail.clone(),
    )
    .emit();
    Measurement::new(
        "B6",
        "pods/s to Running, through the scheduler",
        scheduled.rate,
        create_rate,
        detail.clone(),
    )
    .emit();
    Measurement::new(
        "B6",
        "create to Running p50 / p99 (ms), preset",
        preset.p50.as_secs_f64() * 1e3,
        preset.p99.as_secs_f64() * 1e3,
        "value = p50, baseline column = p99",
    )
    .emit();
    Measurement::new(
        "B6",
        "create to Running p50 / p99 (ms), scheduled",
        scheduled.p50.as_secs_f64() * 1e3,
        scheduled.p99.as_secs_f64() * 1e3,
        "value = p50, baseline column = p99",
    )
    .emit();
    Measurement::new(
        "B6",
        "node memory per pod (bytes)",
        per_pod,
        5120.0,
        "VmRSS growth of the node process / pods; ratio is against the 5 KiB target",
    )
    .emit();
}
