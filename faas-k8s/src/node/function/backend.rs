//! [`FunctionBackend`]: the [`PodBackend`] that serves registered functions in-process.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use super::config::FunctionBackendConfig;
use super::image;
use super::logs;
use super::pod::{FunctionContainer, FunctionPod, ServerContext};
use crate::node::backend::{
    BackendError, Capacity, LogOptions, LogStream, PodBackend, PodEvents, PodKey, PodLaunch,
    PodRuntimeStatus,
};
use crate::node::events::EventHub;
use crate::node::lock;

/// Serves pods whose containers name a registered function, in-process: no process per pod,
/// only a listener on the pod's own address.
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
    context: ServerContext,
    pods: Mutex<HashMap<PodKey, Arc<FunctionPod>>>,
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
        Self {
            inner: Arc::new(Inner {
                capacity: config.effective_capacity(),
                context: ServerContext {
                    http: config.http.clone(),
                    network: config.network.clone(),
                    events: EventHub::new(),
                    cancel: CancellationToken::new(),
                },
                config,
                pods: Mutex::new(HashMap::new()),
                network_ready: tokio::sync::OnceCell::new(),
            }),
        }
    }

    /// The configuration the backend runs with.
    pub fn config(&self) -> &FunctionBackendConfig {
        &self.inner.config
    }

    /// Stops every pod, each draining its calls for up to `grace`.
    pub async fn shutdown(&self, grace: Duration) {
        let keys: Vec<PodKey> = lock(&self.inner.pods).keys().cloned().collect();
        let deletions = keys.iter().map(|key| self.delete(key, grace));
        // Deleting a function pod cannot fail.
        let _ = futures::future::join_all(deletions).await;
        self.inner.context.cancel.cancel();
    }

    fn pod(&self, key: &PodKey) -> Result<Arc<FunctionPod>, BackendError> {
        lock(&self.inner.pods)
            .get(key)
            .cloned()
            .ok_or_else(|| BackendError::NotFound(key.clone()))
    }

    fn container(
        &self,
        key: &PodKey,
        name: &str,
    ) -> Result<(Arc<FunctionPod>, Arc<FunctionContainer>), BackendError> {
        let pod = self.pod(key)?;
        let container = pod
            .container(name)
            .cloned()
            .ok_or_else(|| BackendError::NotFound(key.clone()))?;
        Ok((pod, container))
    }

    /// Stops every container of `pod` and forgets it.
    async fn remove(&self, pod: &Arc<FunctionPod>, grace: Duration, release_address: bool) {
        let stops = pod.containers.iter().map(|c| c.stop(grace));
        futures::future::join_all(stops).await;
        {
            let mut pods = lock(&self.inner.pods);
            if pods.get(&pod.key).is_some_and(|p| Arc::ptr_eq(p, pod)) {
                pods.remove(&pod.key);
            }
        }
        if release_address {
            self.inner.config.addresses.release_pod(&pod.key);
            if let Err(err) = self
                .inner
                .context
                .network
                .remove_address(IpAddr::V4(pod.ip))
                .await
            {
                tracing::warn!(pod = %pod.key, error = %err, "cannot take the pod's address off the pod network");
            }
        }
    }

    /// Prepares the pod network once, then puts `ip` on it.
    async fn add_address(&self, ip: std::net::Ipv4Addr) -> Result<(), BackendError> {
        let network = &self.inner.context.network;
        let to_backend = |err| BackendError::Other(Box::new(err));
        self.inner
            .network_ready
            .get_or_try_init(|| network.prepare())
            .await
            .map_err(to_backend)?;
        network
            .add_address(IpAddr::V4(ip))
            .await
            .map_err(to_backend)
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
        if let Ok(pod) = self.pod(&launch.key) {
            return Ok(pod.status());
        }
        if lock(&inner.pods).len() >= inner.capacity.pods as usize {
            return Err(BackendError::CapacityExhausted);
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
        // An address reserved with `reserve_ip` stays reserved if creation fails.
        let reserved = inner.config.addresses.assigned(&launch.key).is_some();
        let ip = inner
            .config
            .addresses
            .assign(&launch.key)
            .ok_or(BackendError::CapacityExhausted)?;
        if let Err(err) = self.add_address(ip).await {
            if !reserved {
                inner.config.addresses.release_pod(&launch.key);
            }
            return Err(err);
        }
        let pod = Arc::new(FunctionPod::new(
            launch.key.clone(),
            ip,
            containers,
            inner.config.log_lines,
        ));
        let _lifecycle = Arc::clone(&pod.lifecycle)
            .try_lock_owned()
            .map_err(|_| BackendError::Other("a new pod's lifecycle lock is taken".into()))?;
        {
            let mut pods = lock(&inner.pods);
            if let Some(existing) = pods.get(&launch.key) {
                return Ok(existing.status());
            }
            pods.insert(launch.key.clone(), Arc::clone(&pod));
        }
        for container in &pod.containers {
            if let Err(source) = container.start(&pod, &inner.context).await {
                tracing::warn!(pod = %pod.key, container = %container.name, error = %source, "cannot serve");
                self.remove(&pod, Duration::ZERO, !reserved).await;
                return Err(BackendError::Start {
                    container: container.name.clone(),
                    source,
                });
            }
        }
        inner.context.events.notify(&pod.key);
        tracing::info!(pod = %pod.key, ip = %pod.ip, "function pod serving");
        Ok(pod.status())
    }

    async fn update(&self, pod: PodLaunch) -> Result<(), BackendError> {
        self.pod(&pod.key).map(|_| ())
    }

    async fn restart_container(&self, key: &PodKey, name: &str) -> Result<(), BackendError> {
        let (pod, container) = self.container(key, name)?;
        let _lifecycle = pod.lifecycle.lock().await;
        if pod.is_deleting() {
            return Err(BackendError::NotFound(key.clone()));
        }
        container.stop(self.inner.config.http.drain_timeout()).await;
        container.restarting();
        let started = container.start(&pod, &self.inner.context).await;
        self.inner.context.events.notify(key);
        started.map_err(|source| BackendError::Start {
            container: name.to_owned(),
            source,
        })
    }

    async fn reserve_ip(&self, key: &PodKey) -> Result<Option<IpAddr>, BackendError> {
        if let Ok(pod) = self.pod(key) {
            return Ok(Some(IpAddr::V4(pod.ip)));
        }
        let ip = self
            .inner
            .config
            .addresses
            .assign(key)
            .ok_or(BackendError::CapacityExhausted)?;
        Ok(Some(IpAddr::V4(ip)))
    }

    async fn delete(&self, key: &PodKey, grace: Duration) -> Result<(), BackendError> {
        let Ok(pod) = self.pod(key) else {
            self.inner.config.addresses.release_pod(key);
            return Ok(());
        };
        pod.deleting.store(true, Ordering::SeqCst);
        let _lifecycle = pod.lifecycle.lock().await;
        self.remove(&pod, grace, true).await;
        self.inner.context.events.notify(key);
        tracing::info!(pod = %key, "function pod deleted");
        Ok(())
    }

    async fn status(&self, key: &PodKey) -> Result<Option<PodRuntimeStatus>, BackendError> {
        Ok(self.pod(key).ok().map(|pod| pod.status()))
    }

    async fn list(&self) -> Result<Vec<PodRuntimeStatus>, BackendError> {
        let pods: Vec<_> = lock(&self.inner.pods).values().cloned().collect();
        let mut statuses: Vec<_> = pods.iter().map(|pod| pod.status()).collect();
        statuses.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(statuses)
    }

    async fn logs(
        &self,
        key: &PodKey,
        name: &str,
        opts: LogOptions,
    ) -> Result<LogStream, BackendError> {
        let (pod, container) = self.container(key, name)?;
        Ok(logs::read(
            &pod.log,
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
        self.container(key, name)?;
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
        self.inner.context.events.subscribe()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Every server stops accepting and drains on its own.
        self.context.cancel.cancel();
    }
}
