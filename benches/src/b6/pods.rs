//! The pods of B6 and the timing of a batch of them to Running.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt, stream};
use hdrhistogram::Histogram;
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use kube::api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use serde_json::json;

/// The image of every B6 pod: the `echo` function on faas-vnode's function
/// backend; virtual-kubelet's mock accepts any image.
pub const IMAGE: &str = "faas.dev/function/echo";

/// How long a batch may take to reach Running before the bench gives up
/// (virtual-kubelet at client-go's default 5 QPS needs minutes for 1000 pods).
pub const RUNNING_TIMEOUT: Duration = Duration::from_secs(1800);

/// Where a pod goes and who makes it Running.
#[derive(Clone, Copy, Debug)]
pub enum Placement<'a> {
    /// `nodeName` preset to this node; its agent makes the pod Running.
    Node(&'a str),
    /// Through kube-scheduler, to the node with this `kubernetes.io/hostname`.
    Scheduled(&'a str),
    /// `nodeName` preset to a node no agent serves; the bench writes the
    /// status itself right after the create (Running, Ready): the
    /// minimum-work baseline.
    StatusWrittenByClient(&'a str),
}

/// The pod `name` placed as `placement`: one container, port 8080, tolerating
/// the virtual node taint, no grace period.
pub fn pod(name: &str, placement: Placement<'_>) -> Pod {
    let mut spec = json!({
        "containers": [{ "name": "fn", "image": IMAGE, "ports": [{ "containerPort": 8080 }] }],
        "tolerations": [{ "key": "virtual-kubelet.io/provider", "operator": "Exists", "effect": "NoSchedule" }],
        "terminationGracePeriodSeconds": 0,
    });
    match placement {
        Placement::Node(node) | Placement::StatusWrittenByClient(node) => {
            spec["nodeName"] = json!(node);
        }
        Placement::Scheduled(node) => {
            spec["nodeSelector"] = json!({ "kubernetes.io/hostname": node });
        }
    }
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": { "name": name, "labels": { "app": "b6" } },
        "spec": spec,
    }))
    .expect("a valid pod")
}

/// The one status write of the minimum-work baseline: what a node reports
/// for a started pod.
fn running_status() -> serde_json::Value {
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    json!({
        "status": {
            "phase": "Running",
            "podIP": "127.0.0.1",
            "startTime": now,
            "conditions": [
                { "type": "Initialized", "status": "True", "lastTransitionTime": now },
                { "type": "ContainersReady", "status": "True", "lastTransitionTime": now },
                { "type": "Ready", "status": "True", "lastTransitionTime": now },
                { "type": "PodScheduled", "status": "True", "lastTransitionTime": now },
            ],
            "containerStatuses": [{
                "name": "fn", "image": IMAGE, "imageID": "", "ready": true, "started": true,
                "restartCount": 0, "state": { "running": { "startedAt": now } },
            }],
        }
    })
}

/// Creates namespace `name` and waits for its default ServiceAccount (pods
/// are refused before it exists).
pub async fn create_namespace(client: &Client, name: &str) {
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
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), name);
    let deadline = Instant::now() + Duration::from_secs(60);
    while accounts.get_opt("default").await.ok().flatten().is_none() {
        assert!(
            Instant::now() < deadline,
            "no default ServiceAccount in {name}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Removes the pods of namespace `name` at once (grace 0, so no node has to
/// confirm) and then the namespace.
pub async fn delete_namespace(client: &Client, name: &str) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), name);
    let _ = pods
        .delete_collection(
            &DeleteParams::default().grace_period(0),
            &ListParams::default(),
        )
        .await;
    let api: Api<Namespace> = Api::all(client.clone());
    let _ = api.delete(name, &DeleteParams::default()).await;
}

/// What one batch measured.
#[derive(Clone, Copy, Debug)]
pub struct Batch {
    /// Pods per second from the first create request to the last pod seen Running.
    pub rate: f64,
    /// Create request to Running, median.
    pub p50: Duration,
    /// Create request to Running, 99th percentile.
    pub p99: Duration,
}

/// Creates `count` pods in the new namespace `ns` with `concurrency` requests
/// in flight and waits until every one is Running.
///
/// # Panics
///
/// When a create fails or the pods are not all Running within
/// [`RUNNING_TIMEOUT`].
pub async fn run_batch(
    client: &Client,
    ns: &str,
    count: usize,
    concurrency: usize,
    placement: Placement<'_>,
) -> Batch {
    create_namespace(client, ns).await;
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let running = watch_running(api.clone());
    let first = Instant::now();
    let write_status = matches!(placement, Placement::StatusWrittenByClient(_));
    let sent: HashMap<String, Instant> = stream::iter(0..count)
        .map(|i| {
            let name = format!("b6-{i:05}");
            let pod = pod(&name, placement);
            let api = &api;
            async move {
                let at = Instant::now();
                api.create(&PostParams::default(), &pod)
                    .await
                    .unwrap_or_else(|e| panic!("create pod {name}: {e}"));
                if write_status {
                    api.patch_status(
                        &name,
                        &PatchParams::default(),
                        &Patch::Merge(running_status()),
                    )
                    .await
                    .unwrap_or_else(|e| panic!("write the status of pod {name}: {e}"));
                }
                (name, at)
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let deadline = Instant::now() + RUNNING_TIMEOUT;
    let mut reported = Instant::now();
    loop {
        let done = running.lock().expect("not poisoned").len();
        if done >= count {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {done} of {count} pods reached Running in {RUNNING_TIMEOUT:?}"
        );
        if reported.elapsed() >= Duration::from_secs(30) {
            reported = Instant::now();
            eprintln!("  {ns}: {done} of {count} pods Running");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seen = running.lock().expect("not poisoned").clone();
    let last = seen.values().max().copied().expect("pods ran");
    let mut latency = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("a histogram");
    for (name, at) in &sent {
        let ran = seen[name];
        latency.saturating_record(u64::try_from((ran - *at).as_micros()).unwrap_or(u64::MAX));
    }
    Batch {
        rate: count as f64 / (last - first).as_secs_f64(),
        p50: Duration::from_micros(latency.value_at_quantile(0.5)),
        p99: Duration::from_micros(latency.value_at_quantile(0.99)),
    }
}

/// Records when each pod of the namespace is first seen Running.
fn watch_running(api: Api<Pod>) -> Arc<Mutex<HashMap<String, Instant>>> {
    let seen = Arc::new(Mutex::new(HashMap::new()));
    let into = Arc::clone(&seen);
    tokio::spawn(async move {
        let mut events = std::pin::pin!(watcher(api, watcher::Config::default()).default_backoff());
        while let Ok(Some(event)) = events.try_next().await {
            let pod = match event {
                watcher::Event::Apply(pod) | watcher::Event::InitApply(pod) => pod,
                _ => continue,
            };
            let now = Instant::now();
            let running = pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
            if running && let Some(name) = pod.metadata.name {
                into.lock()
                    .expect("not poisoned")
                    .entry(name)
                    .or_insert(now);
            }
        }
    });
    seen
}
