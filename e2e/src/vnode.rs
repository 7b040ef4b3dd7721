//! A virtual node run in the test's own process, on any [`PodBackend`]: what
//! every test and benchmark that needs pods to run starts, so starting,
//! stopping and cleaning up after a node is written once.
//!
//! The node serves the kubelet API on a port it binds itself (the test
//! cluster's kubelet certificate, its CA for clients), and reacts fast to
//! failures (container restarts back off from 200 ms, configuration and volume
//! refreshes every second or so) so tests do not wait on production intervals.
//! When a [`TestNode`] is dropped without [`TestNode::stop`] (a test that
//! failed half-way), its Node object is still deleted, so the pod garbage
//! collector removes the pods bound to it and the test namespace can go.
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use faas_core::{FunctionDefinition, Registry};
//! use faas_e2e::TestCluster;
//! use faas_e2e::vnode::{TestNode, unique_name};
//! use faas_k8s::node::AddressPool;
//! use faas_k8s::node::function::{FunctionBackend, FunctionBackendConfig};
//!
//! # async fn hello(name: String) -> String { name }
//! # async fn demo() -> faas_e2e::Result<()> {
//! let cluster = TestCluster::require().await;
//! let registry = Registry::from([FunctionDefinition::from_handler("hello", hello)]);
//! let backend = FunctionBackend::new(
//!     FunctionBackendConfig::new(registry)
//!         .with_addresses(AddressPool::new("127.60.0.0/16".parse().expect("a CIDR"))),
//! );
//! let node = TestNode::start(&cluster, unique_name("vn-demo"), Arc::new(backend)).await?;
//! // ... create pods that select the node ...
//! node.wait_backend_pods(0).await?;
//! node.stop().await?;
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;
use std::time::Duration;

use faas_k8s::node::{KubeletTls, NodeConfigBuilder, PodBackend, ShutdownHandle, VirtualNode};
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::api::DeleteParams;

use crate::wait::{self, Poll};
use crate::{Error, Result, TestCluster};

/// `prefix` with eight random hex digits, for names that must not collide between runs.
pub fn unique_name(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

/// A virtual node running in this process until [`stop`](Self::stop) or drop.
pub struct TestNode {
    name: String,
    backend: Arc<dyn PodBackend>,
    client: kube::Client,
    config: kube::Config,
    shutdown: ShutdownHandle,
    task: tokio::task::JoinHandle<faas_k8s::Result<()>>,
    stopped: bool,
}

impl TestNode {
    /// Runs a node called `name` on `backend`, with the test tuning described
    /// in the [module documentation](self), and waits until it is Ready.
    ///
    /// # Errors
    ///
    /// When the node cannot be configured or does not become Ready.
    pub async fn start(
        cluster: &TestCluster,
        name: impl Into<String>,
        backend: Arc<dyn PodBackend>,
    ) -> Result<Self> {
        Self::start_with(cluster, name, backend, |config| config).await
    }

    /// [`start`](Self::start), with `configure` changing the node's
    /// configuration (labels, capacity, intervals) before it is built.
    ///
    /// # Errors
    ///
    /// When the node cannot be configured or does not become Ready.
    pub async fn start_with(
        cluster: &TestCluster,
        name: impl Into<String>,
        backend: Arc<dyn PodBackend>,
        configure: impl FnOnce(NodeConfigBuilder) -> NodeConfigBuilder,
    ) -> Result<Self> {
        let name = name.into();
        let pki = &cluster.paths().pki;
        let builder = faas_k8s::node::NodeConfig::builder(&name)
            // Any free port, bound by the node itself and advertised as bound: a port picked
            // beforehand and let go of could be taken by someone else before the node binds it.
            .kubelet_port(0)
            .kubelet_tls(KubeletTls {
                cert: pki.kubelet_cert.clone(),
                key: pki.kubelet_key.clone(),
                client_ca: pki.ca_cert.clone(),
            })
            .restart_backoff(Duration::from_millis(200), Duration::from_secs(2))
            .config_retry_interval(Duration::from_millis(500))
            .volume_sync_interval(Duration::from_secs(1));
        let config = configure(builder)
            .build()
            .map_err(|e| Error::Setup(format!("node {name}: {e}")))?;
        let node = VirtualNode::with_shared_backend(cluster.client(), config, backend.clone());
        let shutdown = node.shutdown_handle();
        let task = tokio::spawn(node.run());
        let this = TestNode {
            name,
            backend,
            client: cluster.client(),
            config: cluster.config().clone(),
            shutdown,
            task,
            stopped: false,
        };
        wait_node_ready(&this.client, &this.name, true).await?;
        Ok(this)
    }

    /// The Node's name (pods select it by `kubernetes.io/hostname`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The backend the node runs its pods on.
    pub fn backend(&self) -> &Arc<dyn PodBackend> {
        &self.backend
    }

    /// Waits until the backend runs exactly `count` pods (0: nothing is left on the node).
    ///
    /// # Errors
    ///
    /// When that does not happen within the wait's timeout.
    pub async fn wait_backend_pods(&self, count: usize) -> Result<()> {
        wait::until(
            format!("{count} pods running on node {}", self.name),
            || async move {
                Ok(match self.backend.list().await {
                    Ok(list) if list.len() == count => Poll::Ready(()),
                    Ok(list) => Poll::Pending(format!("{} pods", list.len())),
                    Err(e) => Poll::Pending(format!("listing failed: {e}")),
                })
            },
        )
        .await
    }

    /// Waits until the node ends on its own (without being stopped) and returns how it ended.
    ///
    /// # Panics
    ///
    /// When the node's task panicked.
    pub async fn ended(&mut self) -> faas_k8s::Result<()> {
        self.stopped = true;
        (&mut self.task)
            .await
            .expect("the node's task does not panic")
    }

    /// Stops the node, waits for it to end and deletes its Node object.
    ///
    /// # Errors
    ///
    /// When the node ended with an error or its task panicked.
    pub async fn stop(mut self) -> Result<()> {
        self.stopped = true;
        self.shutdown.shutdown();
        let ended = (&mut self.task).await;
        let nodes: Api<Node> = Api::all(self.client.clone());
        let _ = nodes.delete(&self.name, &DeleteParams::default()).await;
        match ended {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::Setup(format!("node {} ended with {e}", self.name))),
            Err(e) => Err(Error::Setup(format!("node {} panicked: {e}", self.name))),
        }
    }
}

impl Drop for TestNode {
    /// A test that failed half-way still deletes its Node, so the pods bound to it are
    /// collected and the namespace can go.
    fn drop(&mut self) {
        if self.stopped {
            return;
        }
        self.shutdown.shutdown();
        let (name, config) = (self.name.clone(), self.config.clone());
        // The test's runtime may be shutting down: delete from a runtime of our own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let client = kube::Client::try_from(config).map_err(std::io::Error::other)?;
                Api::<Node>::all(client)
                    .delete(&name, &DeleteParams::default())
                    .await
                    .map(|_| ())
                    .map_err(std::io::Error::other)
            })
        })
        .join();
    }
}

/// The status of a Node's `Ready` condition (`"True"`, `"False"`, `"Unknown"`), if it has one.
pub fn ready_condition(node: &Node) -> Option<&str> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.status.as_str())
}

/// Waits until Node `name` exists and is Ready (`ready`) or exists and is not (`!ready`).
///
/// # Errors
///
/// When that does not happen within the wait's timeout.
pub async fn wait_node_ready(client: &kube::Client, name: &str, ready: bool) -> Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    let want = if ready { "True" } else { "not True" };
    wait::until(format!("node {name} Ready={want}"), || {
        let nodes = nodes.clone();
        async move {
            let node = nodes.get_opt(name).await?;
            let status = node.as_ref().and_then(ready_condition);
            Ok(match node {
                Some(_) if (status == Some("True")) == ready => Poll::Ready(()),
                _ => Poll::Pending(format!("Ready={status:?}")),
            })
        }
    })
    .await
}
