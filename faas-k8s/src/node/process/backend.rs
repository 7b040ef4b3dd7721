//! [`ProcessBackend`]: the [`PodBackend`] that runs every container as an OS process.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use nix::sys::signal::Signal;
use tokio_util::sync::CancellationToken;

use super::adopt::adopt;
use super::config::{ProcessBackendConfig, ShutdownPolicy};
use super::group::signal_group;
use super::log::read::read_log;
use super::pod::{Container, Pod};
use super::run::Runner;
use super::spawn::{command, resolve_spec};
use super::state::StateDir;
use crate::node::backend::{
    BackendError, Capacity, LogOptions, LogStream, PodBackend, PodEvents, PodKey, PodLaunch,
    PodRuntimeStatus,
};
use crate::node::container_status::{ContainerStatusCell, Phase};
use crate::node::events::EventHub;
use crate::node::lock;

/// Runs every container as an OS process on its pod's own loopback address.
///
/// - **Images** resolve to executables through the [`ImageMap`](super::ImageMap); `command`
///   replaces the image's executable, `args` follow. An unknown image is
///   [`BackendError::InvalidImage`].
/// - **Addresses**: each pod gets one from the [`AddressPool`](super::AddressPool), given to its
///   processes as `POD_IP` (and reported as the pod IP); `HOSTNAME` is the pod's name.
/// - **Processes** start in a process group of their own; deleting a pod sends `SIGTERM` to each
///   group, waits up to the grace period, then sends `SIGKILL`. When a container's main process
///   exits, what it left in its group is killed.
/// - **Logs**: stdout and stderr go to a per-container log file with a size cap and one rotated
///   predecessor, a timestamp on every line; read back with the kubelet's `tailLines`,
///   `sinceTime`, `timestamps`, `limitBytes` and `follow`.
/// - **Restarts of the node**: every pod has a record in the state directory. A new backend over
///   the same directory adopts the processes that still run (same pid *and* same start time, so a
///   reused pid is never mistaken for a container) and `create` of an adopted pod starts nothing.
///   See [`ShutdownPolicy`] for what happens to the processes when the backend goes away.
///   An adopted process is not a child of the new node process and cannot be waited for: its
///   exit is noticed by checking `/proc` every
///   [`adopted_poll_interval`](ProcessBackendConfig::adopted_poll_interval), and its exit code is
///   known only if the process is still a zombie then; otherwise it is reported as
///   `ContainerStatusUnknown` with exit code 137, as the kubelet reports a container it lost.
/// - **State directory**: `pods/<pod>.json` (the record, mode 0600 as it holds the
///   environment), `run/<pod>/` (the default working directory, and the named pipe each
///   container writes its output to, which lets output survive a restart of the node),
///   `logs/<pod>/<container>/<run>.log` (the current and the previous run are kept).
/// - **Network**: with a [`PodNetwork`](crate::node::network::PodNetwork) namespace, pod
///   addresses are put on the namespace and processes (and `exec`) run inside it.
///
/// ```no_run
/// use faas_k8s::node::{ContainerLaunch, PodBackend, PodKey, PodLaunch};
/// use faas_k8s::node::process::{ImageMap, ProcessBackend, ProcessBackendConfig};
///
/// # async fn run() -> Result<(), faas_k8s::node::BackendError> {
/// let config = ProcessBackendConfig::new("/var/lib/faas-vnode/node-1")
///     .with_images(ImageMap::new().with_image("python", "/usr/bin/python3"));
/// let backend = ProcessBackend::new(config).await?;
/// let web = ContainerLaunch::new("web", "python:3.12").with_command(vec![
///     "/bin/sh".into(),
///     "-c".into(),
///     "exec python3 -m http.server --bind \"$POD_IP\" 8080".into(),
/// ]);
/// let status = backend
///     .create(PodLaunch::new(PodKey::new("default", "web", "uid-1"), vec![web]))
///     .await?;
/// println!("serving on http://{}:8080/", status.pod_ip.unwrap());
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct ProcessBackend {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: ProcessBackendConfig,
    capacity: Capacity,
    runner: Runner,
    pods: Mutex<HashMap<PodKey, Arc<Pod>>>,
}

impl ProcessBackend {
    /// Opens the backend over `config.state_dir` (created if missing) and adopts the pods recorded
    /// there: processes that still run are watched again; containers whose process is gone are
    /// reported as terminated. Must be called within a Tokio runtime.
    ///
    /// # Errors
    ///
    /// The state directory cannot be created or read.
    pub async fn new(config: ProcessBackendConfig) -> Result<Self, BackendError> {
        let state = StateDir::open(&config.state_dir)?;
        let runner = Runner {
            state: state.clone(),
            events: EventHub::new(),
            cancel: CancellationToken::new(),
            log_max_bytes: config.log_max_bytes,
            adopted_poll_interval: config.adopted_poll_interval,
            network: config.network.clone(),
        };
        for reserved in config.network.reserved_addresses() {
            if let IpAddr::V4(reserved) = reserved {
                config.addresses.reserve(reserved);
            }
        }
        config.network.prepare().await.map_err(network_error)?;
        let backend = Self {
            inner: Arc::new(Inner {
                capacity: config.effective_capacity(),
                config,
                runner,
                pods: Mutex::new(HashMap::new()),
            }),
        };
        for record in state.load_all()? {
            let pod = adopt(
                &backend.inner.runner,
                &backend.inner.config.addresses,
                record,
            );
            lock(&backend.inner.pods).insert(pod.key.clone(), pod);
        }
        Ok(backend)
    }

    /// The configuration the backend runs with.
    pub fn config(&self) -> &ProcessBackendConfig {
        &self.inner.config
    }

    /// Ends the backend's watch over its processes, after stopping every pod if `policy` says so.
    /// With [`ShutdownPolicy::LeaveRunning`] the processes and their records stay for the next
    /// backend over the same state directory.
    ///
    /// # Errors
    ///
    /// Some process survived `SIGKILL` (the others are still stopped).
    pub async fn shutdown(&self, policy: ShutdownPolicy) -> Result<(), BackendError> {
        let mut result = Ok(());
        if let ShutdownPolicy::StopAll { grace } = policy {
            let keys: Vec<PodKey> = lock(&self.inner.pods).keys().cloned().collect();
            let deletions = keys.iter().map(|key| self.delete(key, grace));
            for outcome in futures::future::join_all(deletions).await {
                if outcome.is_err() && result.is_ok() {
                    result = outcome;
                }
            }
        }
        self.inner.runner.cancel.cancel();
        result
    }

    fn pod(&self, key: &PodKey) -> Result<Arc<Pod>, BackendError> {
        lock(&self.inner.pods)
            .get(key)
            .cloned()
            .ok_or_else(|| BackendError::NotFound(key.clone()))
    }

    fn container(
        &self,
        key: &PodKey,
        name: &str,
    ) -> Result<(Arc<Pod>, Arc<Container>), BackendError> {
        let pod = self.pod(key)?;
        let container = pod
            .container(name)
            .cloned()
            .ok_or_else(|| BackendError::NotFound(key.clone()))?;
        Ok((pod, container))
    }

    /// Undoes a create that failed half-way.
    async fn abandon(&self, pod: &Arc<Pod>, release_address: bool) {
        for container in &pod.containers {
            if let Err(err) = self.inner.runner.stop(container, Duration::ZERO).await {
                tracing::warn!(pod = %pod.key, error = %err, "cannot stop a container of a failed pod");
            }
        }
        self.remove(pod, release_address);
        if release_address
            && let Err(err) = self
                .inner
                .runner
                .network
                .remove_address(IpAddr::V4(pod.ip))
                .await
        {
            tracing::warn!(pod = %pod.key, error = %err, "cannot take the pod's address off the pod network");
        }
    }

    /// Forgets a pod whose processes are gone, and its address unless told to keep it.
    fn remove(&self, pod: &Arc<Pod>, release_address: bool) {
        if let Err(err) = self.inner.runner.forget(pod) {
            tracing::warn!(pod = %pod.key, error = %err, "cannot remove the pod's files");
        }
        {
            let mut pods = lock(&self.inner.pods);
            if pods.get(&pod.key).is_some_and(|p| Arc::ptr_eq(p, pod)) {
                pods.remove(&pod.key);
            }
        }
        if release_address {
            self.inner.config.addresses.release_pod(&pod.key);
        }
    }
}

#[async_trait]
impl PodBackend for ProcessBackend {
    fn name(&self) -> &str {
        "process"
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
        let executables = launch
            .containers
            .iter()
            .map(|c| inner.config.images.resolve(&c.image))
            .collect::<Result<Vec<_>, _>>()?;
        // An address reserved with `reserve_ip` stays reserved if creation fails: the node will
        // try again with the environment it resolved from it.
        let reserved = inner.config.addresses.assigned(&launch.key).is_some();
        let ip = inner
            .config
            .addresses
            .assign(&launch.key)
            .ok_or(BackendError::CapacityExhausted)?;
        let run_dir = inner.runner.state.run_dir(&launch.key);
        let prepared = match std::fs::create_dir_all(&run_dir) {
            Ok(()) => inner
                .runner
                .network
                .add_address(IpAddr::V4(ip))
                .await
                .map_err(network_error),
            Err(err) => Err(err.into()),
        };
        if let Err(err) = prepared {
            if !reserved {
                inner.config.addresses.release_pod(&launch.key);
            }
            return Err(err);
        }
        let containers = launch
            .containers
            .iter()
            .zip(executables)
            .map(|(c, exe)| {
                let spec = resolve_spec(c, exe, &launch.key, ip, &inner.config.base_env, &run_dir);
                Container::new(spec, ContainerStatusCell::new(c.name.clone()))
            })
            .collect();
        let pod = Arc::new(Pod::new(launch.key.clone(), ip, containers));
        let _lifecycle = Arc::clone(&pod.lifecycle)
            .try_lock_owned()
            .map_err(|_| BackendError::Other("a new pod's lifecycle lock is taken".into()))?;
        {
            let mut pods = lock(&inner.pods);
            if let Some(existing) = pods.get(&launch.key) {
                // Created concurrently under the same key, hence with the same address.
                return Ok(existing.status());
            }
            pods.insert(launch.key.clone(), Arc::clone(&pod));
        }
        for container in &pod.containers {
            if let Err(source) = inner.runner.start(&pod, container) {
                tracing::warn!(pod = %pod.key, container = %container.name, error = %source, "cannot start");
                self.abandon(&pod, !reserved).await;
                return Err(BackendError::Start {
                    container: container.name.clone(),
                    source,
                });
            }
        }
        inner.runner.persist(&pod);
        inner.runner.events.notify(&pod.key);
        tracing::info!(pod = %pod.key, ip = %pod.ip, "pod started");
        Ok(pod.status())
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

    async fn update(&self, pod: PodLaunch) -> Result<(), BackendError> {
        // Labels and annotations change nothing for a process.
        self.pod(&pod.key).map(|_| ())
    }

    async fn restart_container(&self, key: &PodKey, name: &str) -> Result<(), BackendError> {
        let (pod, container) = self.container(key, name)?;
        let _lifecycle = pod.lifecycle.lock().await;
        if pod.is_deleting() {
            return Err(BackendError::NotFound(key.clone()));
        }
        let runner = &self.inner.runner;
        runner
            .stop(&container, self.inner.config.restart_grace)
            .await?;
        lock(&container.runtime).status.restarting();
        let started = runner.start(&pod, &container);
        if let Err(err) = &started {
            lock(&container.runtime).status.phase = Phase::Waiting {
                reason: "RunContainerError".into(),
                message: Some(err.to_string()),
            };
        }
        runner.persist(&pod);
        runner.events.notify(key);
        started.map_err(|source| BackendError::Start {
            container: name.to_owned(),
            source,
        })
    }

    async fn delete(&self, key: &PodKey, grace: Duration) -> Result<(), BackendError> {
        let Ok(pod) = self.pod(key) else {
            // Perhaps only an address was reserved.
            self.inner.config.addresses.release_pod(key);
            return Ok(());
        };
        pod.deleting.store(true, Ordering::SeqCst);
        let _lifecycle = pod.lifecycle.lock().await;
        let runner = &self.inner.runner;
        let stops = pod.containers.iter().map(|c| runner.stop(c, grace));
        for outcome in futures::future::join_all(stops).await {
            outcome?;
        }
        self.remove(&pod, true);
        if let Err(err) = runner.network.remove_address(IpAddr::V4(pod.ip)).await {
            tracing::warn!(pod = %key, error = %err, "cannot take the pod's address off the pod network");
        }
        runner.events.notify(key);
        tracing::info!(pod = %key, "pod deleted");
        Ok(())
    }

    async fn status(&self, key: &PodKey) -> Result<Option<PodRuntimeStatus>, BackendError> {
        Ok(self.pod(key).ok().map(|pod| pod.status()))
    }

    async fn list(&self) -> Result<Vec<PodRuntimeStatus>, BackendError> {
        let pods: Vec<Arc<Pod>> = lock(&self.inner.pods).values().cloned().collect();
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
        let (run, progress) = {
            let runtime = lock(&container.runtime);
            (runtime.status.restart_count, runtime.log.clone())
        };
        let paths = self.inner.runner.state.log_paths(&pod.key, name, run);
        Ok(read_log(paths, progress, opts))
    }

    async fn exec(&self, key: &PodKey, name: &str, argv: Vec<String>) -> Result<i32, BackendError> {
        let (_pod, container) = self.container(key, name)?;
        let Some((program, args)) = argv.split_first() else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "exec needs a command").into());
        };
        if !lock(&container.runtime).status.is_running() {
            return Err(
                io::Error::other(format!("container {name:?} of {key} is not running")).into(),
            );
        }
        let mut exec = command(
            &self.inner.runner.network,
            &container.spec,
            program.as_ref(),
            args,
        );
        exec.stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let status = exec.status().await.map_err(|source| BackendError::Start {
            container: name.to_owned(),
            source,
        })?;
        Ok(status
            .code()
            .or_else(|| status.signal().map(|s| 128 + s))
            .unwrap_or(-1))
    }

    fn events(&self) -> PodEvents {
        self.inner.runner.events.subscribe()
    }
}

fn network_error(err: crate::node::network::NetworkError) -> BackendError {
    BackendError::Other(Box::new(err))
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.runner.cancel.cancel();
        if let ShutdownPolicy::StopAll { .. } = self.config.on_drop {
            let pods: Vec<Arc<Pod>> = lock(&self.pods).drain().map(|(_, pod)| pod).collect();
            for pod in pods {
                for container in &pod.containers {
                    if let Some(identity) = lock(&container.runtime).process {
                        let _ = signal_group(identity.pgid, Signal::SIGKILL);
                    }
                }
                if let Err(err) = self.runner.forget(&pod) {
                    tracing::warn!(pod = %pod.key, error = %err, "cannot remove the pod's files");
                }
            }
        }
    }
}
