//! [`VirtualNode`]: the value an embedding program drives.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use kube::Api;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::backend::PodBackend;
use super::config::NodeConfig;
use super::kubelet_api::KubeletApi;
use super::kubelet_auth::Authorizer;
use super::lease::keep_lease;
use super::pods::worker::PodContext;
use super::pods::{PodRegistry, SharedPodParts, run_pods};
use super::registration::{keep_status, register, report_not_ready};
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
    ///
    /// The node is a supervisor: when one of its tasks (the Lease, the Node status, the pod
    /// watcher, the kubelet API) ends or panics while the node is meant to run, the others are
    /// stopped, the Node is reported `Ready=False` and the error
    /// [`Error::NodeTaskEnded`] is returned. The Lease is no longer renewed from then on, so the
    /// control plane sees the node go away even if that last status write fails. Pods keep
    /// running in the backend, for the next node of the same name to adopt.
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
        let mut config = (*self.config).clone();
        let capacity = config
            .capacity
            .clone()
            .unwrap_or_else(|| self.backend.capacity());
        let backend_name = self.backend.name().to_owned();

        let registry = PodRegistry::default();
        let kubelet_api = match config.kubelet_tls() {
            Some(tls) => {
                let api = KubeletApi::bind(
                    config.kubelet_bind(),
                    tls,
                    registry.clone(),
                    self.backend.clone(),
                    Authorizer {
                        client: self.client.clone(),
                        node: config.name.clone(),
                    },
                )
                .await?;
                // Port 0 asks for any free port: the one bound is the one advertised.
                let bound = api
                    .local_addr()
                    .map_err(|e| Error::io("reading the kubelet API's address", e))?;
                if config.kubelet_port == 0 || config.kubelet_bind().port() == 0 {
                    config.kubelet_port = bound.port();
                }
                tracing::info!(addr = %bound, "serving the kubelet API");
                Some(api)
            }
            None => None,
        };
        let config = Arc::new(config);

        let registration = (|| register(&self.client, &config, &capacity, &backend_name))
            .retry(registration_backoff())
            .sleep(tokio::time::sleep)
            .when(is_transient)
            .notify(|e, delay| {
                tracing::warn!(node = %config.name, error = %e, ?delay, "registration failed; retrying");
            });
        let uid = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            uid = registration => uid?,
        };
        tracing::info!(node = %config.name, backend = %backend_name, "node registered");
        let (uid_tx, uid_rx) = watch::channel(uid);

        let mut tasks = NodeTasks::default();
        tasks.spawn(
            "lease",
            keep_lease(
                self.client.clone(),
                config.clone(),
                uid_rx,
                shutdown.clone(),
            ),
        );
        tasks.spawn(
            "node status",
            keep_status(
                self.client.clone(),
                config.clone(),
                capacity.clone(),
                backend_name,
                uid_tx,
                shutdown.clone(),
            ),
        );
        if let Some(api) = kubelet_api {
            tasks.spawn("kubelet API", api.serve(shutdown.clone()));
        }
        let (services, services_writer) = reflector::store();
        tasks.spawn(
            "services",
            keep_services(self.client.clone(), services_writer, shutdown.clone()),
        );
        let ctx = Arc::new(PodContext {
            client: self.client.clone(),
            backend: self.backend.clone(),
            config: config.clone(),
            allocatable: capacity,
            services,
            api_requests: tokio::sync::Semaphore::new(config.max_api_requests()),
            shared: SharedPodParts::default(),
        });
        tasks.spawn("pods", run_pods(ctx, registry, shutdown.clone()));

        let failure = tokio::select! {
            biased;
            () = shutdown.cancelled() => None,
            // Tasks return when the node is shut down: only an end before that is a failure.
            ended = tasks.next_ended() => Some(ended).filter(|_| !shutdown.is_cancelled()),
        };
        // Stops the other tasks (a task that ended on its own means the node cannot go on).
        shutdown.cancel();
        tasks.drain().await;
        match failure {
            None => {
                tracing::info!(node = %config.name, "node stopped");
                Ok(())
            }
            Some((task, reason)) => {
                tracing::error!(node = %config.name, task, %reason, "a task of the node ended; the node stops");
                let message = format!("the node's {task} task ended: {reason}");
                let reported = tokio::time::timeout(
                    NOT_READY_REPORT_LIMIT,
                    report_not_ready(&self.client, &config, &message),
                )
                .await;
                match reported {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        tracing::warn!(node = %config.name, error = %e, "cannot report the node not ready");
                    }
                    Err(_) => {
                        tracing::warn!(node = %config.name, "the API server did not take the not-ready report in time");
                    }
                }
                Err(Error::NodeTaskEnded {
                    task: task.to_owned(),
                    reason,
                })
            }
        }
    }
}

/// Keeps `writer` in step with the cluster's Services until `shutdown` (watch errors are retried
/// with back-off).
async fn keep_services(
    client: kube::Client,
    writer: reflector::store::Writer<Service>,
    shutdown: CancellationToken,
) {
    let api: Api<Service> = Api::all(client);
    let mut events =
        reflector::reflector(writer, watcher::watcher(api, watcher::Config::default()))
            .default_backoff()
            .boxed();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            event = events.next() => match event {
                Some(Ok(_)) => {}
                Some(Err(e)) => tracing::warn!(error = %e, "watching Services failed; retrying"),
                None => return,
            },
        }
    }
}

/// How long a failing node tries to report itself not ready before it returns anyway (the Lease,
/// no longer renewed, tells the control plane in any case).
const NOT_READY_REPORT_LIMIT: Duration = Duration::from_secs(10);

/// Registration is retried from half a second up to every ten seconds, for as long as the API
/// server answers with a transient error.
fn registration_backoff() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(500))
        .with_max_delay(Duration::from_secs(10))
        .with_jitter()
        .without_max_times()
}

/// The node's long-running tasks, each with a name for the error that reports its end.
#[derive(Default)]
struct NodeTasks {
    set: JoinSet<()>,
    names: HashMap<tokio::task::Id, &'static str>,
}

impl NodeTasks {
    fn spawn(&mut self, name: &'static str, task: impl Future<Output = ()> + Send + 'static) {
        let handle = self.set.spawn(task);
        self.names.insert(handle.id(), name);
    }

    /// Waits for the first task to end and says which one and how.
    async fn next_ended(&mut self) -> (&'static str, String) {
        match self.set.join_next_with_id().await {
            Some(Ok((id, ()))) => (self.name(id), "it returned".to_owned()),
            Some(Err(e)) if e.is_panic() => {
                let name = self.name(e.id());
                let payload = e.into_panic();
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic without a message".to_owned());
                (name, format!("it panicked: {message}"))
            }
            Some(Err(e)) => (self.name(e.id()), format!("it was cancelled: {e}")),
            // Never empty while the node runs; pend so the shutdown branch decides.
            None => std::future::pending().await,
        }
    }

    fn name(&self, id: tokio::task::Id) -> &'static str {
        self.names.get(&id).copied().unwrap_or("unnamed")
    }

    /// Waits for every task to stop.
    async fn drain(&mut self) {
        while self.set.join_next().await.is_some() {}
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
