//! [`FunctionBackend`]: the [`PodBackend`] that serves registered functions in-process.

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use faas_core::InvocationLog;
use tokio_util::sync::CancellationToken;

use super::accept::AcceptLoop;
use super::config::FunctionBackendConfig;
use super::image;
use super::logs;
use super::pod::{FunctionContainer, FunctionPod, ServerContext};
use crate::node::backend::{
    BackendError, Capacity, LogOptions, LogStream, PodBackend, PodEvents, PodKey, PodLaunch,
    PodRuntimeStatus,
};
use crate::node::events::EventHub;
use crate::node::pod_table::{PodRuntime, PodTable};

/// Serves pods whose containers name a registered function, in-process: no process or task per
/// pod, only a listener on the pod's own address, which one accept loop serves for every pod.
///
/// - **Images**: `faas.dev/function/<name>` runs the function `<name>` of the registry (see
///   [`function_image`](super::function_image)); any other image, or an unknown name, is
///   [`BackendError::InvalidImage`].
/// - **Serving**: each container listens on `<pod ip>:<port>` (its first declared port, else
///   [`default_port`](FunctionBackendConfig::default_port)) with the HTTP trigger of
///   `faas-triggers`: `POST /` and `/function/<name>` call the function; `/_/health`,
///   `/_/ready` and `/metrics` are served too. The function's invocation policy (deadline,
///   in-flight limit, panic isolation) applies per pod.
/// - **Stopping** drains the calls in flight up to the grace period, then cuts them off.
/// - **Logs** are kept in memory: one line per call and per start and stop.
/// - **Restarts of the node**: nothing survives them (the servers lived in the node's process),
///   so `list` starts empty and the node creates the pods again.
/// - `exec` is refused: there is no process to run a command in (use HTTP probes).
/// - **Volumes** are not mounted (a function sees no files of the pod), so the node does not
///   resolve them: no ConfigMap, Secret or service account token is read for a function pod.
///
/// ```no_run
/// use faas_core::{FunctionDefinition, Registry};
/// use faas_k8s::node::function::{FunctionBackend, FunctionBackendConfig, function_image};
/// use faas_k8s::node::{ContainerLaunch, PodBackend, PodKey, PodLaunch};
///
/// async fn hello(name: String) -> String {
///     format!("hello, {name}")
/// }
///
/// # async fn run() -> Result<(), faas_k8s::node::BackendError> {
/// let registry = Registry::from([FunctionDefinition::from_handler("hello", hello)]);
/// let backend = FunctionBackend::new(FunctionBackendConfig::new(registry));
/// let pod = PodLaunch::new(
///     PodKey::new("default", "hello-1", "uid-1"),
///     vec![ContainerLaunch::new("function", function_image("hello"))],
/// );
/// let status = backend.create(pod).await?;
/// println!("POST http://{}:8080/", status.pod_ip.unwrap());
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct FunctionBackend {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: FunctionBackendConfig,
    capacity: Capacity,
    table: PodTable<FunctionRuntime>,
}

/// How the function backend runs a container: an HTTP server on the pod's address.
#[derive(Debug)]
struct FunctionRuntime {
    context: ServerContext,
    /// Ends the accept loop when the backend goes away.
    cancel: CancellationToken,
    /// Set once the pod network is prepared (on the first pod).
    network_ready: tokio::sync::OnceCell<()>,
}

impl FunctionBackend {
    /// A backend with no pods yet. The pod network is prepared when the first pod is created
    /// (it keeps its routes from then on, pods or not).
    pub fn new(config: FunctionBackendConfig) -> Self {
        for reserved in config.network.reserved_addresses() {
            if let IpAddr::V4(reserved) = reserved {
                config.addresses.reserve(reserved);
            }
        }
        let capacity = config.effective_capacity();
        let cancel = CancellationToken::new();
        let runtime = FunctionRuntime {
            cancel: cancel.clone(),
            context: ServerContext {
                http: config.http.clone(),
                network: config.network.clone(),
                events: EventHub::new(),
                accept: AcceptLoop::new(cancel),
            },
            network_ready: tokio::sync::OnceCell::new(),
        };
        Self {
            inner: Arc::new(Inner {
                table: PodTable::new(runtime, config.addresses.clone(), capacity.pods),
                capacity,
                config,
            }),
        }
    }

    /// The configuration the backend runs with.
    pub fn config(&self) -> &FunctionBackendConfig {
        &self.inner.config
    }

    /// Stops every pod, each draining its calls for up to `grace`.
    pub async fn shutdown(&self, grace: Duration) {
        // Deleting a function pod cannot fail.
        let _ = self.inner.table.delete_all(grace).await;
        self.inner.table.runtime().cancel.cancel();
    }
}

#[async_trait]
impl PodRuntime for FunctionRuntime {
    type Container = FunctionContainer;
    type Data = InvocationLog;

    /// Prepares the pod network once, then puts `ip` on it.
    async fn prepare(&self, _key: &PodKey, ip: Option<Ipv4Addr>) -> Result<(), BackendError> {
        let Some(ip) = ip else { return Ok(()) };
        let network = &self.context.network;
        let to_backend = |err| BackendError::Other(Box::new(err));
        self.network_ready
            .get_or_try_init(|| network.prepare())
            .await
            .map_err(to_backend)?;
        network
            .add_address(IpAddr::V4(ip))
            .await
            .map_err(to_backend)
    }

    async fn unprepare(&self, key: &PodKey, ip: Ipv4Addr) {
        if let Err(err) = self.context.network.remove_address(IpAddr::V4(ip)).await {
            tracing::warn!(pod = %key, error = %err, "cannot take the pod's address off the pod network");
        }
    }

    async fn start(
        &self,
        pod: &Arc<FunctionPod>,
        container: &Arc<FunctionContainer>,
    ) -> io::Result<()> {
        container.start(pod, &self.context).await
    }

    async fn stop(
        &self,
        pod: &FunctionPod,
        container: &FunctionContainer,
        grace: Duration,
    ) -> io::Result<()> {
        container.stop(pod, &self.context, grace).await;
        Ok(())
    }

    fn restart_grace(&self) -> Duration {
        self.context.http.drain_timeout()
    }

    fn events(&self) -> &EventHub {
        &self.context.events
    }
}

#[async_trait]
impl PodBackend for FunctionBackend {
    fn name(&self) -> &str {
        "function"
    }

    fn capacity(&self) -> Capacity {
        self.inner.capacity.clone()
    }

    async fn create(&self, launch: PodLaunch) -> Result<PodRuntimeStatus, BackendError> {
        let inner = &self.inner;
        if let Ok(pod) = inner.table.pod(&launch.key) {
            return Ok(pod.status());
        }
        if !launch.init_containers.is_empty() {
            return Err(BackendError::Other(
                "init containers are not run by the function backend: a function pod serves \
                 from its start (use the process backend for pods with init containers)"
                    .into(),
            ));
        }
        let registered = inner.config.registry.names();
        let mut containers = Vec::with_capacity(launch.containers.len());
        for container in &launch.containers {
            let function = image::resolve(&container.image, &registered)?;
            let definition = inner
                .config
                .registry
                .get(&function)
                .ok_or_else(|| BackendError::InvalidImage {
                    image: container.image.clone(),
                    reason: format!("the function {function:?} was just removed"),
                })?
                .definition()
                .clone();
            let port = container
                .ports
                .first()
                .copied()
                .unwrap_or(inner.config.default_port);
            containers.push(FunctionContainer::new(
                container.name.clone(),
                definition,
                port,
            ));
        }
        let log = InvocationLog::new(inner.config.log_lines);
        inner
            .table
            .create(&launch.key, launch.host_network, false, move |_ip| {
                (containers, log)
            })
            .await
    }

    async fn update(&self, pod: PodLaunch) -> Result<(), BackendError> {
        self.inner.table.pod(&pod.key).map(|_| ())
    }

    /// A function has no filesystem of the pod's: volumes are not resolved for its pods.
    fn mounts_volumes(&self) -> bool {
        false
    }

    async fn restart_container(&self, key: &PodKey, name: &str) -> Result<(), BackendError> {
        self.inner.table.restart(key, name).await
    }

    async fn reserve_ip(&self, key: &PodKey) -> Result<Option<IpAddr>, BackendError> {
        self.inner.table.reserve_ip(key)
    }

    async fn delete(&self, key: &PodKey, grace: Duration) -> Result<(), BackendError> {
        self.inner.table.delete(key, grace).await
    }

    async fn status(&self, key: &PodKey) -> Result<Option<PodRuntimeStatus>, BackendError> {
        Ok(self.inner.table.status(key))
    }

    async fn list(&self) -> Result<Vec<PodRuntimeStatus>, BackendError> {
        Ok(self.inner.table.list())
    }

    async fn logs(
        &self,
        key: &PodKey,
        name: &str,
        opts: LogOptions,
    ) -> Result<LogStream, BackendError> {
        let (pod, container) = self.inner.table.container(key, name)?;
        if opts.previous {
            // One log per function, across runs: no run of it is told apart.
            return Err(BackendError::NoPreviousRun {
                pod: key.clone(),
                container: name.to_owned(),
            });
        }
        Ok(logs::read(
            &pod.data,
            container.function(),
            &opts,
            container.run_end(),
        ))
    }

    async fn exec(
        &self,
        key: &PodKey,
        name: &str,
        _command: Vec<String>,
    ) -> Result<i32, BackendError> {
        self.inner.table.container(key, name)?;
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "container {name:?} of {key} is a function served in-process: there is no process \
                 to run a command in (probe it over HTTP, e.g. GET /_/health)"
            ),
        )
        .into())
    }

    fn events(&self) -> PodEvents {
        self.inner.table.runtime().context.events.subscribe()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The accept loop ends, closing every listener.
        self.table.runtime().cancel.cancel();
    }
}
