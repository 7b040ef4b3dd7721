//! [`VirtualNode`]: the value an embedding program drives.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::backend::PodBackend;
use super::config::NodeConfig;
use super::kubelet_api::KubeletApi;
use super::lease::keep_lease;
use super::pods::worker::PodContext;
use super::pods::{PodRegistry, run_pods};
use super::registration::{keep_status, register};
use crate::error::{Error, Result};

/// Stops a running [`VirtualNode`] from anywhere.
#[derive(Clone, Debug)]
pub struct ShutdownHandle(CancellationToken);

impl ShutdownHandle {
    /// Asks the node to stop; [`VirtualNode::run`] returns soon after. Pods keep running in the
    /// backend and are adopted by the next node of the same name.
    pub fn shutdown(&self) {
        self.0.cancel();
    }
}

/// A virtual kubelet: registers a Node, keeps its Lease, runs the Pods bound to it on a
/// [`PodBackend`] and serves their logs.
///
/// Nothing happens until [`run`](Self::run) is awaited; it returns when the node is shut down
/// (by a [`ShutdownHandle`], or a signal with [`shutdown_on_signal`](Self::shutdown_on_signal)).
/// Several nodes can run in one process, each with its own name.
///
/// ```no_run
/// # async fn example(backend: impl faas_k8s::node::PodBackend) -> faas_k8s::Result<()> {
/// use faas_k8s::node::{NodeConfig, VirtualNode};
///
/// let client = kube::Client::try_default().await.expect("a kubeconfig");
/// let config = NodeConfig::builder("vnode-1").build()?;
/// VirtualNode::new(client, config, backend)
///     .shutdown_on_signal()
///     .run()
///     .await
/// # }
/// ```
pub struct VirtualNode {
    client: kube::Client,
    config: Arc<NodeConfig>,
    backend: Arc<dyn PodBackend>,
    shutdown: CancellationToken,
    on_signal: bool,
}

impl std::fmt::Debug for VirtualNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtualNode")
            .field("config", &self.config)
            .field("backend", &self.backend.name())
            .finish_non_exhaustive()
    }
}

impl VirtualNode {
    /// A node that talks to the API server through `client` and runs pods on `backend`.
    pub fn new(client: kube::Client, config: NodeConfig, backend: impl PodBackend) -> Self {
        Self::with_shared_backend(client, config, Arc::new(backend))
    }

    /// Like [`new`](Self::new), for a backend the caller keeps a handle to.
    pub fn with_shared_backend(
        client: kube::Client,
        config: NodeConfig,
        backend: Arc<dyn PodBackend>,
    ) -> Self {
        Self {
            client,
            config: Arc::new(config),
            backend,
            shutdown: CancellationToken::new(),
            on_signal: false,
        }
    }

    /// A handle that stops the node.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.shutdown.clone())
    }

    /// Also stop on SIGINT or SIGTERM.
    #[must_use]
    pub fn shutdown_on_signal(mut self) -> Self {
        self.on_signal = true;
        self
    }

    /// The node's configuration.
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// Registers the node and runs it until shut down.
    ///
    /// Registration is retried while the API server is unreachable; an answer that refuses it
    /// (forbidden, invalid) is returned as an error, and so is a kubelet API that cannot be set up.
    pub async fn run(self) -> Result<()> {
        let shutdown = self.shutdown.clone();
        if self.on_signal {
            let token = shutdown.clone();
            tokio::spawn(async move {
                wait_for_signal().await;
                tracing::info!("signal received; shutting the node down");
                token.cancel();
            });
        }
        let config = self.config.clone();
        let capacity = config
            .capacity
            .clone()
            .unwrap_or_else(|| self.backend.capacity());
        let backend_name = self.backend.name().to_owned();

        let registry = PodRegistry::default();
        let kubelet_api = match config.kubelet_tls() {
            Some(tls) => Some(
                KubeletApi::bind(
                    config.kubelet_bind(),
                    tls,
                    registry.clone(),
                    self.backend.clone(),
                )
                .await?,
            ),
            None => None,
        };

        let uid = {
            let mut delay = Duration::from_millis(500);
            loop {
                let attempt = tokio::select! {
                    () = shutdown.cancelled() => return Ok(()),
                    r = register(&self.client, &config, &capacity, &backend_name) => r,
                };
                match attempt {
                    Ok(uid) => break uid,
                    Err(e) if is_transient(&e) => {
                        tracing::warn!(node = %config.name, error = %e, "registration failed; retrying");
                        tokio::select! {
                            () = shutdown.cancelled() => return Ok(()),
                            () = tokio::time::sleep(delay) => {}
                        }
                        delay = (delay * 2).min(Duration::from_secs(10));
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        tracing::info!(node = %config.name, backend = %backend_name, "node registered");
        let (uid_tx, uid_rx) = watch::channel(uid);

        let mut tasks = JoinSet::new();
        tasks.spawn(keep_lease(
            self.client.clone(),
            config.clone(),
            uid_rx,
            shutdown.clone(),
        ));
        tasks.spawn(keep_status(
            self.client.clone(),
            config.clone(),
            capacity.clone(),
            backend_name,
            uid_tx,
            shutdown.clone(),
        ));
        if let Some(api) = kubelet_api {
            if let Ok(addr) = api.local_addr() {
                tracing::info!(%addr, "serving the kubelet API");
            }
            tasks.spawn(api.serve(shutdown.clone()));
        }
        let ctx = Arc::new(PodContext {
            client: self.client.clone(),
            backend: self.backend.clone(),
            config: config.clone(),
            allocatable: capacity,
        });
        tasks.spawn(run_pods(ctx, registry, shutdown.clone()));

        shutdown.cancelled().await;
        while tasks.join_next().await.is_some() {}
        tracing::info!(node = %config.name, "node stopped");
        Ok(())
    }
}

fn is_transient(e: &Error) -> bool {
    match e {
        Error::Kube { source, .. } => match source.as_ref() {
            kube::Error::Api(status) => status.code >= 500 || status.code == 429,
            _ => true,
        },
        _ => false,
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
