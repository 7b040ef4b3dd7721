//! What a function pod costs faas-vnode's function backend alone, without
//! the API server or the node's watch: creates `B6_PODS` (default 1000) pods
//! serving the `echo` function on loopback addresses (`127.77.0.0/16`, port
//! 18080), waits until each answers `/_/ready`, and prints the growth of the
//! process's resident memory and of its live heap (counted by its allocator)
//! per pod. B6 measures the whole node; the difference between the two is the
//! node's own per-pod state.

use std::alloc::System;
use std::time::Duration;

use bytes::Bytes;
use faas_benches::b6::heap::live_bytes;
use faas_core::{FunctionDefinition, Registry};
use faas_k8s::node::function::{FunctionBackend, FunctionBackendConfig, function_image};
use faas_k8s::node::{AddressPool, Capacity, ContainerLaunch, PodBackend, PodKey, PodLaunch};
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

#[cfg(not(feature = "dhat-heap"))]
#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;
#[cfg(feature = "dhat-heap")]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[cfg(feature = "dhat-heap")]
#[global_allocator]
static PROFILED: dhat::Alloc = dhat::Alloc;

async fn echo(body: Bytes) -> Bytes {
    body
}

fn rss_bytes() -> u64 {
    procfs::process::Process::myself()
        .ok()
        .and_then(|process| process.status().ok())
        .and_then(|status| status.vmrss)
        .map_or(0, |kb| kb * 1024)
}

#[tokio::main]
async fn main() {
    #[cfg(feature = "dhat-heap")]
    let _profiler = dhat::Profiler::new_heap();
    let count: usize = std::env::var("B6_PODS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let registry = Registry::from([FunctionDefinition::from_handler("echo", echo)]);
    let pool = AddressPool::new("127.77.0.0/16".parse().expect("a CIDR"));
    let capacity = Capacity::new(
        "64",
        "64Gi",
        u32::try_from(count + 10).expect("a pod count"),
    );
    let backend = FunctionBackend::new(
        FunctionBackendConfig::new(registry)
            .with_addresses(pool)
            .with_capacity(capacity),
    );
    // One pod first, so that the runtime's and the network's one-time costs
    // are not counted per pod.
    let launch = |i: usize| {
        PodLaunch::new(
            PodKey::new("b6", format!("pod-{i}"), format!("uid-{i}")),
            vec![ContainerLaunch::new("fn", function_image("echo")).with_ports(vec![18080])],
        )
    };
    backend.create(launch(0)).await.expect("the first pod");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_bytes();
    let heap_before = live_bytes(ALLOCATOR);
    for i in 1..=count {
        backend.create(launch(i)).await.expect("a pod");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_bytes();
    let heap_after = live_bytes(ALLOCATOR);
    let per_pod = after.saturating_sub(before) as f64 / count as f64;
    let heap_per_pod = heap_after.saturating_sub(heap_before) as f64 / count as f64;
    println!(
        "{count} function pods: RSS {} KiB -> {} KiB, {per_pod:.0} bytes per pod; \
         live heap {} KiB -> {} KiB, {heap_per_pod:.0} bytes per pod",
        before / 1024,
        after / 1024,
        heap_before / 1024,
        heap_after / 1024,
    );
    backend.shutdown(Duration::from_secs(1)).await;
}
