//! What B4, B5 and B7 share: a virtual node in-process (functions in-process or
//! as OS processes, on addresses of a network namespace EndpointSlices accept),
//! the objects the operator writes for a function, and the gateway with the
//! autoscaler in front of them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use faas_e2e::TestCluster;
use faas_k8s::autoscaler::{Autoscaler, AutoscalerConfig, ScaleTarget, ScalingPolicy};
use faas_k8s::gateway::{FUNCTION_LABEL, FunctionKey, Gateway, GatewayConfig, RoutingTable};
use faas_k8s::node::network::PodNetwork;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// The network namespace pods share (root, `ip` and `nsenter` needed).
pub const NETNS: &str = "faasbench";
/// The range routed into it.
pub const NETNS_CIDR: &str = "10.247.0.0/16";

/// A pod network in [`NETNS`] with the /24 number `n`.
pub fn pod_network(n: u8) -> (PodNetwork, String) {
    (
        PodNetwork::namespace(NETNS, NETNS_CIDR),
        format!("10.247.{n}.0/24"),
    )
}

/// Polls `check` every 10 ms until it holds (panics after ten minutes).
pub async fn wait_for<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Writes what the operator writes for a function `name` on `node`: a Deployment of
/// `replicas` running `container`, and a Service, both labelled `faas.rs/function: name`.
pub async fn deploy(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    node: &str,
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
                    "nodeSelector": {"kubernetes.io/hostname": node},
                    "tolerations": [{"key": "virtual-kubelet.io/provider", "operator": "Exists", "effect": "NoSchedule"}],
                    "terminationGracePeriodSeconds": 5,
                    "containers": [container],
                },
            },
        },
    }))
    .expect("a valid Deployment");
    Api::<Deployment>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &deployment)
        .await
        .expect("the Deployment is created");
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "spec": {"selector": labels, "ports": [{"name": "http", "port": 8080, "targetPort": "http"}]},
    }))
    .expect("a valid Service");
    Api::<Service>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &service)
        .await
        .expect("the Service is created");
}

/// Writes `replicas` to the Deployment `name`'s scale subresource.
pub async fn scale(client: &kube::Client, namespace: &str, name: &str, replicas: i32) {
    Api::<Deployment>::namespaced(client.clone(), namespace)
        .patch_scale(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": replicas}})),
        )
        .await
        .expect("the Deployment scales");
}

/// `spec.replicas` of the Deployment `name`.
pub async fn desired(client: &kube::Client, namespace: &str, name: &str) -> i32 {
    Api::<Deployment>::namespaced(client.clone(), namespace)
        .get(name)
        .await
        .ok()
        .and_then(|d| d.spec.replicas)
        .unwrap_or(0)
}

/// The gateway and the autoscaler in this process, on a loopback port.
pub struct Traffic {
    /// Where the gateway listens.
    pub addr: SocketAddr,
    /// Its routing table.
    pub table: Arc<RoutingTable>,
    stop: CancellationToken,
    scaler_stop: CancellationToken,
}

impl Traffic {
    /// Starts both, for the functions of `namespace`, scaling Deployments by `policy`
    /// and deciding every `tick`.
    pub async fn start(
        cluster: &TestCluster,
        namespace: &str,
        policy: ScalingPolicy,
        tick: Duration,
    ) -> Self {
        let config = GatewayConfig::builder()
            .default_namespace(namespace)
            .watch_namespace(namespace)
            .build();
        let gateway = Gateway::builder(config).discover(cluster.client()).build();
        let table = gateway.routing_table();
        let scaling = AutoscalerConfig::builder()
            .target(ScaleTarget::Deployment)
            .namespace(namespace)
            .selector(FUNCTION_LABEL)
            .tick(tick)
            .default_policy(policy)
            .build();
        let autoscaler = Autoscaler::new(cluster.client(), scaling, table.clone())
            .with_metrics(gateway.metrics());
        let scaler_stop = autoscaler.shutdown_handle();
        tokio::spawn(autoscaler.run());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the gateway");
        let addr = listener.local_addr().expect("an address");
        let stop = gateway.shutdown_handle();
        tokio::spawn(gateway.serve(listener));
        Traffic {
            addr,
            table,
            stop,
            scaler_stop,
        }
    }

    /// Waits until the function has `count` ready endpoints in the gateway.
    pub async fn wait_ready(&self, key: &FunctionKey, count: u32) {
        let table = self.table.clone();
        wait_for(&format!("{count} ready endpoints of {key}"), || {
            let table = table.clone();
            async move { table.load_of(key).ready == count }
        })
        .await;
    }

    /// Stops both.
    pub fn stop(&self) {
        self.stop.cancel();
        self.scaler_stop.cancel();
    }
}

/// One POST on a fresh connection; the status (0 when the connection failed).
pub async fn call(addr: SocketAddr, path: &str, body: &str) -> u16 {
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        let request = format!(
            "POST {path} HTTP/1.1\r\nhost: bench\r\nconnection: close\r\nx-timeout: 120s\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        let text = String::from_utf8_lossy(&response);
        Ok::<u16, std::io::Error>(
            text.split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
        )
    };
    attempt.await.unwrap_or(0)
}

/// A binary built beside the running bench (`target/release/<name>`).
pub fn sibling_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the bench's path");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("a target directory")
        .join(name)
}

/// The `q` quantile of `values` (sorted in place).
pub fn quantile(values: &mut [f64], q: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    if values.is_empty() {
        return 0.0;
    }
    let index = ((values.len() as f64 - 1.0) * q).round() as usize;
    values[index.min(values.len() - 1)]
}
