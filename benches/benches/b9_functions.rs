//! B9: Functions applied at once to Ready on the virtual node, against the same Deployments and
//! Services applied directly (no operator) in the same run.
//!
//! Needs the control plane of `cargo xtask cluster up` (`cargo xtask bench` starts it) and root
//! for the pods' network namespace. A virtual node with the in-process function backend serves
//! the pods; the operator runs in this process. Two phases, each in a namespace of its own:
//!
//! 1. baseline: N Deployments and N Services (exactly what the operator would write) created
//!    directly, timed from the first create to each Deployment's replica being ready;
//! 2. operator: N Functions created, timed from the first create to each Function reporting
//!    `Ready` for its generation.
//!
//! Writes are counted by the API server itself (`apiserver_request_total` of its `/metrics`):
//! per Function, the writes of Deployments, Services and Function statuses, against the
//! baseline's two creates.
//!
//! Environment: `B9_FUNCTIONS` (default 200), `B9_CONCURRENCY` creates in flight (default 32).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use faas_benches::control_plane::{
    ApiRequests, CpuSnapshot, RequestCost, RequestKind, cpu_line, request_table, writes,
};
use faas_benches::report::Measurement;
use faas_core::{FunctionDefinition, Registry};
use faas_e2e::TestCluster;
use faas_e2e::hosting::{FunctionNode, TestOperator, install_function_crd};
use faas_k8s::function::{Function, FunctionSpec, Placement};
use faas_k8s::node::function::function_image;
use faas_k8s::operator::{FunctionController, OperatorConfig, deployment, service};
use futures::{StreamExt, TryStreamExt, stream};
use hdrhistogram::Histogram;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn hello(name: String) -> String {
    format!("hello, {name}")
}

fn function(index: usize) -> Function {
    let mut function = Function::new(
        &format!("fn-{index:04}"),
        FunctionSpec::new(function_image("hello"))
            .with_placement(Placement::VirtualNode)
            .with_drain_timeout(Duration::from_secs(1)),
    );
    function.metadata.uid = Some(format!("b9-{index}"));
    function
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
    let accounts: Api<k8s_openapi::api::core::v1::ServiceAccount> =
        Api::namespaced(client.clone(), name);
    for _ in 0..600 {
        if accounts.get_opt("default").await.ok().flatten().is_some() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("namespace {name} has no default ServiceAccount");
}

/// Watches `api` and records when each object first satisfies `ready`.
fn watch_ready<K>(api: Api<K>, ready: fn(&K) -> bool) -> Arc<Mutex<HashMap<String, Instant>>>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let seen = Arc::new(Mutex::new(HashMap::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        let mut events = watcher(api, watcher::Config::default())
            .applied_objects()
            .boxed();
        while let Some(Ok(object)) = events.next().await {
            if ready(&object) {
                let name = object.meta().name.clone().unwrap_or_default();
                record
                    .lock()
                    .expect("the ready map")
                    .entry(name)
                    .or_insert_with(Instant::now);
            }
        }
    });
    seen
}

struct Phase {
    /// From the first create to the last object ready.
    total: Duration,
    /// Per object, from its create to ready, in milliseconds.
    latency: Histogram<u64>,
}

async fn wait_all(
    seen: &Arc<Mutex<HashMap<String, Instant>>>,
    created: &Arc<Mutex<HashMap<String, Instant>>>,
    start: Instant,
    n: usize,
) -> Phase {
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        let ready = seen.lock().expect("the ready map").len();
        if ready >= n {
            break;
        }
        assert!(Instant::now() < deadline, "only {ready} of {n} ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seen = seen.lock().expect("the ready map");
    let created = created.lock().expect("the create map");
    let last = seen.values().max().copied().unwrap_or(start);
    let mut latency = Histogram::<u64>::new(3).expect("a histogram");
    for (name, at) in seen.iter() {
        if let Some(created) = created.get(name) {
            let millis = at.saturating_duration_since(*created).as_millis();
            latency
                .record(u64::try_from(millis).unwrap_or(u64::MAX).max(1))
                .expect("a latency");
        }
    }
    Phase {
        total: last - start,
        latency,
    }
}

async fn create_all<K, F>(
    api: Api<K>,
    n: usize,
    concurrency: usize,
    make: F,
) -> Arc<Mutex<HashMap<String, Instant>>>
where
    K: kube::Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
    F: Fn(usize) -> Vec<K>,
{
    let created = Arc::new(Mutex::new(HashMap::new()));
    stream::iter(0..n)
        .map(|index| {
            let api = api.clone();
            let objects = make(index);
            let created = created.clone();
            async move {
                for object in objects {
                    let name = object.meta().name.clone().unwrap_or_default();
                    created
                        .lock()
                        .expect("the create map")
                        .entry(name)
                        .or_insert_with(Instant::now);
                    api.create(&PostParams::default(), &object).await?;
                }
                Ok::<_, kube::Error>(())
            }
        })
        .buffer_unordered(concurrency)
        .try_collect::<Vec<_>>()
        .await
        .expect("every create succeeds");
    created
}

fn deployment_ready(deployment: &Deployment) -> bool {
    deployment.status.as_ref().and_then(|s| s.ready_replicas) == Some(1)
}

fn function_ready(function: &Function) -> bool {
    function.status.as_ref().is_some_and(|status| {
        status.is_ready()
            && status.observed_generation == function.metadata.generation
            && status.ready_replicas == Some(1)
    })
}

fn stripped(mut object: ObjectMeta) -> ObjectMeta {
    object.owner_references = None;
    object
}

/// Deletes namespace `name` and waits until it is gone: its Services hold addresses of the
/// cluster's Service range (a /24 on the test control plane) until then, and the next phase
/// must start from the same empty cluster as this one did.
async fn delete_namespace(client: &Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let _ = api.delete(name, &DeleteParams::default()).await;
    let deadline = Instant::now() + Duration::from_secs(600);
    while api.get_opt(name).await.ok().flatten().is_some() {
        assert!(Instant::now() < deadline, "namespace {name} is not gone");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What a phase cost the control plane, from snapshots taken at its start.
struct PhaseCost {
    cpu: BTreeMap<String, Duration>,
    requests: BTreeMap<RequestKind, RequestCost>,
}

impl PhaseCost {
    async fn since(
        client: &Client,
        dir: &std::path::Path,
        cpu: &CpuSnapshot,
        requests: &ApiRequests,
    ) -> Self {
        PhaseCost {
            cpu: CpuSnapshot::take(dir).since(cpu),
            requests: ApiRequests::take(client).await.since(requests),
        }
    }

    fn report(&self, phase: &str, n: usize) {
        eprintln!(
            "B9 {phase}: CPU {}\nB9 {phase}: API requests (count, per Function, mean latency)\n{}",
            cpu_line(&self.cpu),
            request_table(&self.requests, n as f64)
        );
    }
}

/// The `quantile` of the gaps from `from[name]` to `to[name]`, in seconds, over the names in
/// both.
fn gap_quantiles(
    from: &HashMap<String, Instant>,
    to: &HashMap<String, Instant>,
    quantiles: &[f64],
) -> Vec<f64> {
    let mut histogram = Histogram::<u64>::new(3).expect("a histogram");
    for (name, end) in to {
        if let Some(begin) = from.get(name) {
            let millis = end.saturating_duration_since(*begin).as_millis();
            histogram
                .record(u64::try_from(millis).unwrap_or(u64::MAX).max(1))
                .expect("a gap");
        }
    }
    quantiles
        .iter()
        .map(|q| histogram.value_at_quantile(*q) as f64 / 1000.0)
        .collect()
}

fn snapshot(map: &Arc<Mutex<HashMap<String, Instant>>>) -> HashMap<String, Instant> {
    map.lock().expect("a time map").clone()
}

#[tokio::main]
async fn main() {
    let n = env_or("B9_FUNCTIONS", 200);
    let concurrency = env_or("B9_CONCURRENCY", 32);
    let cluster = TestCluster::require().await;
    let client = cluster.client();
    install_function_crd(&cluster)
        .await
        .expect("the Function CRD installs");
    let registry = Registry::from([FunctionDefinition::from_handler("hello", hello)]);
    let node = FunctionNode::start(&cluster, registry)
        .await
        .expect("the virtual node starts");
    let suffix = std::process::id();

    // 1. Baseline: the same Deployments and Services, written directly.
    let raw_ns = format!("b9-raw-{suffix}");
    namespace(&client, &raw_ns).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &raw_ns);
    let services: Api<Service> = Api::namespaced(client.clone(), &raw_ns);
    let seen = watch_ready(deployments.clone(), deployment_ready);
    let dir = cluster.paths().dir.clone();
    let cpu = CpuSnapshot::take(&dir);
    let requests = ApiRequests::take(&client).await;
    let start = Instant::now();
    let service_creates = {
        let services = services.clone();
        let namespace = raw_ns.clone();
        tokio::spawn(async move {
            create_all(services, n, concurrency, move |index| {
                let mut function = function(index);
                function.metadata.namespace = Some(namespace.clone());
                let mut object = service(&function);
                object.metadata = stripped(object.metadata);
                vec![object]
            })
            .await
        })
    };
    let namespace_name = raw_ns.clone();
    let created = create_all(deployments, n, concurrency, move |index| {
        let mut function = function(index);
        function.metadata.namespace = Some(namespace_name.clone());
        let mut object = deployment(&function);
        object.metadata = stripped(object.metadata);
        vec![object]
    })
    .await;
    service_creates.await.expect("the Service creates");
    let baseline = wait_all(&seen, &created, start, n).await;
    let baseline_cost = PhaseCost::since(&client, &dir, &cpu, &requests).await;
    let baseline_writes = (writes(&baseline_cost.requests, "deployments", "")
        + writes(&baseline_cost.requests, "services", ""))
        / n as f64;
    delete_namespace(&client, &raw_ns).await;

    // 2. The operator: Functions to Ready.
    let fn_ns = format!("b9-fn-{suffix}");
    namespace(&client, &fn_ns).await;
    let operator = TestOperator::start(FunctionController::new(
        client.clone(),
        OperatorConfig::default()
            .with_namespace(&fn_ns)
            .with_concurrency(64),
    ));
    let functions: Api<Function> = Api::namespaced(client.clone(), &fn_ns);
    let seen = watch_ready(functions.clone(), function_ready);
    let owned: Api<Deployment> = Api::namespaced(client.clone(), &fn_ns);
    let deployment_seen = watch_ready(owned.clone(), |_| true);
    let deployment_available = watch_ready(owned, deployment_ready);
    let cpu = CpuSnapshot::take(&dir);
    let requests = ApiRequests::take(&client).await;
    let start = Instant::now();
    let created = create_all(functions, n, concurrency, |index| vec![function(index)]).await;
    let measured = wait_all(&seen, &created, start, n).await;
    let operator_cost = PhaseCost::since(&client, &dir, &cpu, &requests).await;
    let object_writes = (writes(&operator_cost.requests, "deployments", "")
        + writes(&operator_cost.requests, "services", ""))
        / n as f64;
    let status_writes = writes(&operator_cost.requests, "functions", "status") / n as f64;
    let event_writes = writes(&operator_cost.requests, "events", "") / n as f64;
    baseline_cost.report("baseline", n);
    operator_cost.report("operator", n);
    let quantiles = [0.5, 0.99];
    let (created_at, deployment_seen, deployment_available, ready_at) = (
        snapshot(&created),
        snapshot(&deployment_seen),
        snapshot(&deployment_available),
        snapshot(&seen),
    );
    eprintln!(
        "B9 operator timeline (p50, p99 in s): Function create -> its Deployment seen {:?}; \
         Deployment seen -> available {:?}; Deployment available -> Function Ready {:?}",
        gap_quantiles(&created_at, &deployment_seen, &quantiles),
        gap_quantiles(&deployment_seen, &deployment_available, &quantiles),
        gap_quantiles(&deployment_available, &ready_at, &quantiles),
    );
    let stats = operator.stats();
    let why = format!(
        "operator: {} reconciles ({} wrote nothing; mean {:?}, max {:?}), {} creates, \
         {} corrections, {} trusted applies expired, {} failures, {} reconciles held back; \
         watch lag mean {:?}, max {:?}",
        stats.reconciles(),
        stats.idle_reconciles(),
        stats.reconcile_mean(),
        stats.reconcile_max(),
        stats.creates(),
        stats.corrections(),
        stats.trust_expired(),
        stats.failures(),
        stats.held_back(),
        stats.watch_lag_mean(),
        stats.watch_lag_max(),
    );
    eprintln!("B9 {why}");
    operator.stop().await;
    delete_namespace(&client, &fn_ns).await;
    node.stop().await;

    let rate = |phase: &Phase| n as f64 / phase.total.as_secs_f64();
    let detail =
        format!("N={n}, {concurrency} creates in flight, function backend on the virtual node");
    Measurement::new(
        "B9",
        "Functions/s to Ready (vs Deployments+Services/s)",
        rate(&measured),
        rate(&baseline),
        format!(
            "{detail}; all Ready in {:.1} s vs {:.1} s",
            measured.total.as_secs_f64(),
            baseline.total.as_secs_f64()
        ),
    )
    .emit();
    for (label, quantile) in [("p50", 0.5), ("p99", 0.99)] {
        Measurement::new(
            "B9",
            format!("{label} s per Function to Ready"),
            measured.latency.value_at_quantile(quantile) as f64 / 1000.0,
            baseline.latency.value_at_quantile(quantile) as f64 / 1000.0,
            detail.clone(),
        )
        .emit();
    }
    Measurement::new(
        "B9",
        "API writes per Function (Deployment, Service, status)",
        object_writes + status_writes,
        baseline_writes,
        format!(
            "{detail}; {object_writes:.2} object + {status_writes:.2} status writes, \
             besides the Function's own create; {event_writes:.2} Events; {why}"
        ),
    )
    .emit();
}
