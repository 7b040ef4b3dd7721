//! B6: pods to Running on the virtual node, against the least API work a
//! node can do and against virtual-kubelet's mock provider, on the same pods
//! in the same run.
//!
//! Needs the control plane of `cargo xtask cluster up` and virtual-kubelet
//! built by `cargo xtask cluster build-virtual-kubelet` (its path in
//! `B6_VIRTUAL_KUBELET`); `cargo xtask bench --only B6` does both. Each
//! phase creates the same N pods (one container, port 8080) in a namespace
//! of its own, with `B6_CONCURRENCY` creates in flight, and times them from
//! the first create request to the last pod observed Running:
//!
//! 1. minimum work: `nodeName` preset, and the bench writes each pod's status
//!    once (Running, Ready) right after creating it; no node agent at all;
//! 2. faas-vnode's function backend (`b6-node`), `nodeName` preset, then
//!    through kube-scheduler;
//! 3. virtual-kubelet's mock at its defaults (client-go's 5 QPS, 10 sync
//!    workers), `nodeName` preset;
//! 4. virtual-kubelet's mock with its client limits raised (500 QPS, burst
//!    1000) and 32 sync workers, `nodeName` preset.
//!
//! Each node runs as its own process; its resident memory (VmRSS) is read
//! when it is Ready with no pod and again with N pods Running. Its anonymous
//! part (RssAnon) is reported too: VmRSS also grows by the pages of the
//! program's code that the first pods run for the first time, once.
//!
//! faas-vnode also reports its live heap (counted by its allocator, see
//! `faas_benches::b6::heap`): the pods' own state, without what the allocator
//! keeps after a burst.
//!
//! Environment: `B6_PODS` (default 1000), `B6_CONCURRENCY` (default 32),
//! `B6_PEER_PODS` (pods for virtual-kubelet at its defaults, default
//! `B6_PODS`: at 5 QPS 1000 pods take minutes; `0` leaves virtual-kubelet out
//! altogether, for a quick look at faas-vnode against minimum work).

use std::path::PathBuf;

use faas_benches::b6::nodes::{NodeProcess, PeerLimits};
use faas_benches::b6::pods::{Batch, Placement, delete_namespace, run_batch};
use faas_benches::report::Measurement;
use faas_e2e::TestCluster;
use kube::Client;

/// The memory target for a function pod.
const TARGET_BYTES_PER_POD: f64 = 16.0 * 1024.0;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn node_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the bench's path");
    // target/release/deps/b6_vnode-HASH -> target/release/b6-node
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("a target directory")
        .join("b6-node")
}

fn virtual_kubelet_binary() -> PathBuf {
    let path = std::env::var_os("B6_VIRTUAL_KUBELET").map(PathBuf::from);
    match path {
        Some(path) if path.is_file() => path,
        _ => panic!(
            "B6 measures virtual-kubelet beside faas-vnode: build it with \
             `cargo xtask cluster build-virtual-kubelet` and set B6_VIRTUAL_KUBELET to the \
             path it prints (`cargo xtask bench --only B6` does both)"
        ),
    }
}

/// What one node did with its pods.
struct NodeRun {
    preset: Batch,
    scheduled: Option<Batch>,
    bytes_per_pod: f64,
    /// Of that growth, the anonymous part (RssAnon: heap, stacks), without the pages of the
    /// program's code run for the first time.
    anonymous_per_pod: f64,
    /// Live heap growth per pod, for a node that reports its heap.
    heap_per_pod: Option<f64>,
}

/// Runs `count` pods on `node` (preset, then through the scheduler when
/// `scheduled`), reading its memory with the preset pods Running.
async fn measure(
    client: &Client,
    mut node: NodeProcess,
    label: &str,
    count: usize,
    concurrency: usize,
    scheduled: bool,
) -> NodeRun {
    let run_id = std::process::id();
    node.wait_ready(client).await;
    let idle_parts = node.rss();
    let idle = idle_parts.total;
    let idle_heap = node.heap_bytes().await;
    let ns = format!("b6-{label}-{run_id}");
    let preset = run_batch(
        client,
        &ns,
        count,
        concurrency,
        Placement::Node(node.name()),
    )
    .await;
    let loaded_parts = node.rss();
    let loaded = loaded_parts.total;
    let loaded_heap = node.heap_bytes().await;
    let bytes_per_pod = loaded.saturating_sub(idle) as f64 / count as f64;
    #[cfg(feature = "dhat-heap")]
    if node.reports_heap() {
        let profile = node.dump_heap_profile().await;
        eprintln!(
            "{label}: heap profile with {count} pods in {}",
            profile.display()
        );
    }
    let heap_per_pod = idle_heap
        .zip(loaded_heap)
        .map(|(idle, loaded)| loaded.saturating_sub(idle) as f64 / count as f64);
    if let (Some(idle), Some(loaded), Some(per_pod)) = (idle_heap, loaded_heap, heap_per_pod) {
        eprintln!(
            "{label}: live heap {} KiB idle, {} KiB with {count} pods ({per_pod:.0} bytes per pod)",
            idle / 1024,
            loaded / 1024
        );
    }
    eprintln!(
        "{label}: {:.1} pods/s, p50 {:.2?}, p99 {:.2?}; RSS {} KiB idle, {} KiB with {count} pods \
         ({:.0} bytes per pod)",
        preset.rate,
        preset.p50,
        preset.p99,
        idle / 1024,
        loaded / 1024,
        bytes_per_pod
    );
    let per_pod = |idle: u64, loaded: u64| loaded.saturating_sub(idle) as f64 / count as f64;
    let anonymous_per_pod = per_pod(idle_parts.anonymous, loaded_parts.anonymous);
    eprintln!(
        "{label}: of the RSS growth per pod, {anonymous_per_pod:.0} bytes anonymous (heap, \
         stacks), {:.0} bytes file-backed (code run for the first time)",
        per_pod(idle_parts.file, loaded_parts.file),
    );
    delete_namespace(client, &ns).await;
    let scheduled = if scheduled {
        let ns = format!("b6-{label}-scheduled-{run_id}");
        let batch = run_batch(
            client,
            &ns,
            count,
            concurrency,
            Placement::Scheduled(node.name()),
        )
        .await;
        eprintln!(
            "{label} through the scheduler: {:.1} pods/s, p50 {:.2?}, p99 {:.2?}",
            batch.rate, batch.p50, batch.p99
        );
        delete_namespace(client, &ns).await;
        Some(batch)
    } else {
        None
    };
    node.stop(client).await;
    NodeRun {
        preset,
        scheduled,
        bytes_per_pod,
        anonymous_per_pod,
        heap_per_pod,
    }
}

#[tokio::main]
async fn main() {
    let count = env_or("B6_PODS", 1000);
    let peer_count = env_or("B6_PEER_PODS", count);
    let concurrency = env_or("B6_CONCURRENCY", 32);
    let with_peers = peer_count > 0;
    let virtual_kubelet = with_peers.then(virtual_kubelet_binary);
    let cluster = TestCluster::require().await;
    let client = cluster.client();
    let run_id = std::process::id();

    // 1. The least work: creates plus one status write each, no node agent.
    let ns = format!("b6-minimum-{run_id}");
    let minimum = run_batch(
        &client,
        &ns,
        count,
        concurrency,
        Placement::StatusWrittenByClient("b6-no-agent"),
    )
    .await;
    eprintln!(
        "minimum work: {:.1} pods/s, p50 {:.2?}, p99 {:.2?}",
        minimum.rate, minimum.p50, minimum.p99
    );
    delete_namespace(&client, &ns).await;

    // 2. faas-vnode, function backend.
    let faas = NodeProcess::faas(&node_binary(), "b6-vnode", count);
    let faas = measure(&client, faas, "faas", count, concurrency, true).await;

    // 3. and 4. virtual-kubelet's mock, at its defaults and with raised limits.
    let peers = match &virtual_kubelet {
        Some(binary) => {
            let peer = |name: &str, pods: usize, limits| {
                NodeProcess::virtual_kubelet(binary, &cluster, name, pods, limits)
            };
            let vk_default = peer("b6-vk-default", peer_count, PeerLimits::DEFAULTS);
            let vk_default = measure(
                &client,
                vk_default,
                "vk-default",
                peer_count,
                concurrency,
                false,
            )
            .await;
            let vk_raised = peer("b6-vk-raised", count, PeerLimits::RAISED);
            let vk_raised =
                measure(&client, vk_raised, "vk-raised", count, concurrency, false).await;
            Some((vk_default, vk_raised))
        }
        None => None,
    };

    let detail = format!(
        "{count} pods ({peer_count} for the mock at its defaults), {concurrency} creates in flight"
    );
    let scheduled = faas.scheduled.expect("faas ran through the scheduler");
    let mut rows = vec![
        (
            "pods/s to Running, nodeName preset, vs minimum work",
            faas.preset.rate,
            minimum.rate,
            format!("{detail}; baseline = creates + one status write per pod, no node agent"),
        ),
        (
            "pods/s to Running, through the scheduler, vs minimum work",
            scheduled.rate,
            minimum.rate,
            format!("{detail}; scheduler at 500 QPS, burst 1000"),
        ),
    ];
    if let Some((vk_default, vk_raised)) = &peers {
        rows.extend([
            (
                "pods/s to Running, nodeName preset, vs virtual-kubelet mock (defaults)",
                faas.preset.rate,
                vk_default.preset.rate,
                format!("{detail}; mock: client-go 5 QPS, burst 10, 10 sync workers"),
            ),
            (
                "pods/s to Running, nodeName preset, vs virtual-kubelet mock (limits raised)",
                faas.preset.rate,
                vk_raised.preset.rate,
                format!("{detail}; mock: 500 QPS, burst 1000, 32 sync workers"),
            ),
        ]);
    }
    rows.extend([
        (
            "create to Running p50 / p99 (ms), faas preset",
            faas.preset.p50.as_secs_f64() * 1e3,
            faas.preset.p99.as_secs_f64() * 1e3,
            "value = p50, baseline column = p99".to_owned(),
        ),
        (
            "create to Running p50 / p99 (ms), faas scheduled",
            scheduled.p50.as_secs_f64() * 1e3,
            scheduled.p99.as_secs_f64() * 1e3,
            "value = p50, baseline column = p99".to_owned(),
        ),
    ]);
    if let Some((vk_default, vk_raised)) = &peers {
        rows.push((
            "node memory per pod (bytes), vs virtual-kubelet mock (limits raised)",
            faas.bytes_per_pod,
            vk_raised.bytes_per_pod,
            format!(
                "VmRSS growth / pods; mock at its defaults: {:.0} bytes per pod",
                vk_default.bytes_per_pod
            ),
        ));
    }
    rows.extend([
        (
            "node memory per pod (bytes), vs the 16 KiB target",
            faas.bytes_per_pod,
            TARGET_BYTES_PER_POD,
            "VmRSS growth of faas-vnode (function backend) / pods".to_owned(),
        ),
        (
            "node anonymous memory per pod (bytes), vs the 16 KiB target",
            faas.anonymous_per_pod,
            TARGET_BYTES_PER_POD,
            "RssAnon growth of faas-vnode / pods: VmRSS without the code pages first run"
                .to_owned(),
        ),
        (
            "node live heap per pod (bytes), vs the 16 KiB target",
            faas.heap_per_pod.unwrap_or(f64::NAN),
            TARGET_BYTES_PER_POD,
            "heap growth of faas-vnode counted by its allocator / pods".to_owned(),
        ),
    ]);
    for (metric, value, baseline, detail) in rows {
        Measurement::new("B6", metric, value, baseline, detail).emit();
    }
}
