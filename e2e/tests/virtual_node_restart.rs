//! The virtual node survives its control plane restarting: etcd and the API server are stopped
//! and started again (`cargo xtask cluster restart`) while the node's pods serve calls. The pods
//! keep running and answering throughout, no process is started twice or left behind, and once
//! the API server is back the node's Lease is renewed, the Node is Ready and pod changes are
//! acted on again.
//!
//! Needs `cargo xtask cluster up`; without it the test fails saying so. It restarts the cluster
//! it runs on, so it is the only test of its binary.

#[path = "support/vnode.rs"]
mod vnode;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use faas_e2e::TestCluster;
use faas_e2e::wait::{self, Poll};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::DeleteParams;

use vnode::*;

/// The `xtask` binary next to the test binaries (`cargo xtask` builds it).
fn xtask() -> PathBuf {
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map(PathBuf::from)
        .expect("the target directory");
    let path = target.join("debug").join("xtask");
    assert!(
        path.exists(),
        "{} is missing: run `cargo build -p xtask` (or `cargo xtask test`, which does)",
        path.display()
    );
    path
}

fn lease_renewed(lease: &Lease) -> Option<k8s_openapi::jiff::Timestamp> {
    lease.spec.as_ref()?.renew_time.as_ref().map(|t| t.0)
}

fn ready_heartbeat(node: &Node) -> Option<(String, k8s_openapi::jiff::Timestamp)> {
    let ready = node
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")?;
    Some((ready.status.clone(), ready.last_heartbeat_time.as_ref()?.0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_and_its_pods_ride_out_an_api_server_and_etcd_restart() -> TestResult {
    let cluster = TestCluster::require().await;
    let node = TestNode::start(&cluster, "vn-restart").await;
    let ns = cluster.namespace("vn-restart").await?;
    let tag = unique("restart");
    let tag_arg = format!("--tag={tag}");
    create_deployment(&ns, "web", &node.name, 2, &[&tag_arg]).await;
    let pods = wait_running_ready(&ns, "app=web", 2).await;
    let ips: Vec<String> = pods.iter().map(pod_ip).collect();
    for ip in &ips {
        wait_listening(ip).await;
    }
    let before = wait_tagged_processes(&tag, 2).await;

    // Calls go on against both pods for the whole restart.
    let (served, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let stop_load = tokio_util::sync::CancellationToken::new();
    let load = {
        let (served, failed, stop) = (served.clone(), failed.clone(), stop_load.clone());
        let ips = ips.clone();
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                for ip in &ips {
                    match http_get(ip, 8080, "/").await {
                        Ok((200, _)) => served.fetch_add(1, Ordering::SeqCst),
                        _ => failed.fetch_add(1, Ordering::SeqCst),
                    };
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        })
    };

    let restart_started = k8s_openapi::jiff::Timestamp::now();
    let dir = std::fs::canonicalize(&cluster.paths().dir)?;
    let xtask = xtask();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(xtask)
            .args([
                "cluster",
                "restart",
                "--down-for-secs",
                "5",
                "--cluster-dir",
            ])
            .arg(dir)
            .output()
    })
    .await??;
    assert!(
        output.status.success(),
        "the restart failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let restarted = k8s_openapi::jiff::Timestamp::now();

    // Status catches up: the Lease is renewed and the Ready heartbeat written after the restart.
    let leases: Api<Lease> = Api::namespaced(cluster.client(), "kube-node-lease");
    wait::until("the node's Lease renewed after the restart", || {
        let leases = leases.clone();
        let name = node.name.clone();
        async move {
            let renewed = leases
                .get_opt(&name)
                .await?
                .as_ref()
                .and_then(lease_renewed);
            Ok(match renewed {
                Some(at) if at > restarted => Poll::Ready(()),
                other => Poll::Pending(format!("renewed at {other:?}")),
            })
        }
    })
    .await?;
    let nodes: Api<Node> = Api::all(cluster.client());
    wait::until("the node Ready with a heartbeat after the restart", || {
        let nodes = nodes.clone();
        let name = node.name.clone();
        async move {
            let ready = nodes
                .get_opt(&name)
                .await?
                .as_ref()
                .and_then(ready_heartbeat);
            Ok(match ready {
                Some((status, at)) if status == "True" && at > restarted => Poll::Ready(()),
                other => Poll::Pending(format!("Ready {other:?}")),
            })
        }
    })
    .await?;
    stop_load.cancel();
    load.await?;

    // The pods ran through it: the same processes, every call answered.
    assert_eq!(
        tagged_processes(&tag),
        before,
        "no process restarted or added"
    );
    let (served, failed) = (served.load(Ordering::SeqCst), failed.load(Ordering::SeqCst));
    assert!(served > 0, "calls were made during the restart");
    assert_eq!(failed, 0, "{failed} of {} calls failed", served + failed);
    let pods = wait_running_ready(&ns, "app=web", 2).await;
    for pod in &pods {
        let started = pod
            .status
            .as_ref()
            .and_then(|s| s.start_time.as_ref())
            .map(|t| t.0)
            .ok_or("a running pod has a start time")?;
        assert!(
            started < restart_started,
            "{} is the pod from before",
            describe(&pods)
        );
    }

    // Changes are acted on again: a deleted pod is stopped and its replacement runs, and
    // nothing is left of the old one.
    let victim = pods[0].metadata.name.clone().ok_or("a pod name")?;
    ns.api::<Pod>()
        .delete(&victim, &DeleteParams::default())
        .await?;
    scale(&ns, "web", 3).await;
    let after = wait_running_ready(&ns, "app=web", 3).await;
    assert!(
        after
            .iter()
            .all(|p| p.metadata.name.as_deref() != Some(victim.as_str())),
        "{}",
        describe(&after)
    );
    let now = wait_tagged_processes(&tag, 3).await;
    assert_eq!(
        now.intersection(&before).count(),
        1,
        "one process from before survives, the deleted pod's is gone"
    );
    node.wait_backend_pods(3).await;

    ns.delete().await?;
    node.stop().await;
    Ok(())
}
