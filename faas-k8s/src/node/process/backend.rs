//! [`ProcessBackend`]: the [`PodBackend`] that runs every container as an OS process.

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use nix::sys::signal::Signal;
use tokio::io::AsyncWrite;
use tokio_util::sync::CancellationToken;

use super::adopt::adopt;
use super::cgroup::{CgroupSupport, PodLimits, default_parent};
use super::config::{ProcessBackendConfig, ShutdownPolicy};
use super::exec::CgroupEntry;
use super::group::signal_group;
use super::identity;
use super::isolate;
use super::log::read::read_log;
use super::pod::{Container, Pod, RecordGuard};
use super::run::Runner;
use super::spawn::{network_of, resolve_spec};
use super::state::{BindMount, StateDir};
use crate::node::backend::{
    BackendError, Capacity, ContainerUsage, LogOptions, LogStream, PodBackend, PodEvents, PodKey,
    PodLaunch, PodRuntimeStatus,
};
use crate::node::container_status::ContainerStatusCell;
use crate::node::events::EventHub;
use crate::node::exec::{AttachInput, ExecRequest, ExecSession, Resize};
use crate::node::lock;
use crate::node::pod_table::{PodRuntime, PodTable, RuntimePod};

/// Runs every container as an OS process on its pod's own loopback address.
///
/// - **Images** resolve to executables through the [`ImageMap`](super::ImageMap); `command`
///   replaces the image's executable, `args` follow. An unknown image is
///   [`BackendError::InvalidImage`].
/// - **Addresses**: each pod gets one from the [`AddressPool`](crate::node::AddressPool), given to its
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
/// - **What a container sees** (the node runs as root): each run gets mount and UTS namespaces
///   of its own, with the pod's hostname, the kubelet-managed `/etc/hosts` (its own name and
///   address, `hostAliases`) and a termination message file of its own bound at its
///   `terminationMessagePath` (the mount point, `/dev/termination-log` by default, is created
///   empty on the node if missing). The pod's volumes are written under its run directory and
///   bound at their mount paths the same way (a missing mount point is created on the node, as a
///   container runtime creates it in an image). Not as root there are no such namespaces: the
///   container sees the node's hostname and `/etc/hosts`, only `FallbackToLogsOnError` yields a
///   message, and a pod that mounts volumes is refused.
/// - **Resource limits** (the node runs as root): every pod gets a cgroup under the node's
///   [`cgroup_parent`](ProcessBackendConfig::cgroup_parent), every container one inside it, with
///   its CPU and memory limits and its CPU request as weight; cgroup v2 where its controllers are
///   available, cgroup v1 otherwise (see the `cgroup` module's notes). A container the kernel
///   killed for its memory limit ends as `OOMKilled` and is restarted per the pod's policy.
///   The cgroups go with the pod; those left without a record by an earlier node process go when
///   the backend starts. Where the node cannot (not root, no controller) nothing is enforced and
///   [`unenforced_limits`](PodBackend::unenforced_limits) says why.
/// - **Identity** (the node runs as root): a container's processes, and every command run in it,
///   run as its `runAsUser`/`runAsGroup` with the pod's `fsGroup` and `supplementalGroups` as
///   supplementary groups (set by `setpriv`, see the `identity` module's notes), and the pod's
///   volumes belong to its `fsGroup` as a kubelet leaves them. Not as root, a container that asks
///   for another user or group is refused, and
///   [`unapplied_groups`](PodBackend::unapplied_groups) says why groups are not given.
/// - **Input**: a container started with `stdin: true` reads a pipe the node keeps open; attach
///   sessions ([`attach_input`](PodBackend::attach_input)) write to it, and with `stdinOnce` the
///   first session's end closes it. Others read `/dev/null`.
/// - **Terminals**: a container started with `tty: true` runs as the session leader of a
///   pseudo-terminal of its own (its standard streams and controlling terminal). The terminal's
///   master side is kept by a holder process, the
///   [`terminal_holder`](ProcessBackendConfig::terminal_holder) program (`faas-vnode` itself),
///   which outlives the node like the container does: it copies the input pipe above to the
///   terminal and what the terminal shows to the output pipe, so the container's log is its
///   terminal (one stream, `\r\n` line ends, as a runtime logs a terminal), and it ends with the
///   terminal. An attach session's resizes set the terminal's size; with `stdinOnce` the end of
///   the input is the terminal's end-of-file character. Attach sessions with input see what the
///   terminal shows as it comes (a prompt, the echo of a key); the log gets whole lines, so a
///   prompt without a newline is in it with the next line. Without a holder configured such a
///   container is refused.
/// - **Commands run in a container** (`exec`, exec probes and hooks) run as the container's
///   runtime runs them: its environment, identity, cgroup and namespaces.
/// - **Not enforced**: `securityContext` beyond the identity above (capabilities, ...), images'
///   file systems (the image names an executable on the node).
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
    table: PodTable<Runner>,
    /// Containers get namespaces of their own (the node runs as root).
    isolated: bool,
    /// Whether limits are enforced, and how.
    cgroups: CgroupSupport,
    /// Why containers cannot get an identity of their own (user, groups), if they cannot.
    identity_unavailable: Option<String>,
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
        let cgroups = if config.enforce_limits {
            let parent = config
                .cgroup_parent
                .clone()
                .unwrap_or_else(|| default_parent(&config.state_dir));
            CgroupSupport::detect(&parent, config.pod_pids_limit)
        } else {
            CgroupSupport::Unavailable("the node was configured not to enforce limits".to_owned())
        };
        match &cgroups {
            CgroupSupport::Enforced(c) => {
                tracing::info!(version = c.version_name(), "enforcing resource limits");
            }
            CgroupSupport::Unavailable(reason) => {
                tracing::info!(%reason, "not enforcing resource limits");
            }
        }
        let runner = Runner {
            cgroups: cgroups.cgroups().cloned(),
            state: state.clone(),
            events: EventHub::new(),
            cancel: CancellationToken::new(),
            log_max_bytes: config.log_max_bytes,
            adopted_poll_interval: config.adopted_poll_interval,
            network: config.network.clone(),
            restart_grace: config.restart_grace,
            terminal_holder: config.terminal_holder.clone(),
        };
        for reserved in config.network.reserved_addresses() {
            if let IpAddr::V4(reserved) = reserved {
                config.addresses.reserve(reserved);
            }
        }
        config.network.prepare().await.map_err(network_error)?;
        let capacity = config.effective_capacity();
        let table = PodTable::new(runner, config.addresses.clone(), capacity.pods);
        let records = state.load_all()?;
        let recorded: std::collections::HashSet<String> =
            records.iter().map(|r| r.key.uid.clone()).collect();
        for record in records {
            table.insert(adopt(table.runtime(), &config.addresses, record));
        }
        if let Some(cgroups) = cgroups.cgroups() {
            // What an earlier node left without a record (it was stopped half-way) goes.
            for uid in cgroups.remove_orphans(&|uid| recorded.contains(uid)) {
                tracing::info!(pod_uid = %uid, "removed the cgroup of a pod the node no longer has");
            }
        }
        Ok(Self {
            inner: Arc::new(Inner {
                capacity,
                config,
                table,
                isolated: isolate::available(),
                cgroups,
                identity_unavailable: identity::unavailable(),
            }),
        })
    }

    /// How a command run in `container` gets into its cgroup, when it has one; every command
    /// gets a gate pipe of its own.
    fn cgroup_entry(&self, key: &PodKey, container: &Container) -> Option<CgroupEntry> {
        static NEXT_COMMAND: AtomicU64 = AtomicU64::new(0);
        let runner = self.inner.table.runtime();
        let cgroups = runner.cgroups.as_ref().filter(|_| container.spec.cgroup)?;
        let n = NEXT_COMMAND.fetch_add(1, Ordering::Relaxed);
        let gate = runner.state.gate_path(key, &container.name);
        Some(CgroupEntry {
            placement: cgroups.placement(&key.uid, &container.name),
            gate_fifo: PathBuf::from(format!("{}.exec-{n}", gate.display())),
        })
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
        let result = match policy {
            ShutdownPolicy::StopAll { grace } => {
                let stopped = self.inner.table.delete_all(grace).await;
                if let Some(cgroups) = self.inner.cgroups.cgroups() {
                    cgroups.remove_parent_if_empty();
                }
                stopped
            }
            ShutdownPolicy::LeaveRunning => Ok(()),
        };
        self.inner.table.runtime().cancel.cancel();
        result
    }
}

#[async_trait]
impl PodRuntime for Runner {
    type Container = Container;
    type Data = RecordGuard;

    async fn prepare(&self, key: &PodKey, ip: Option<Ipv4Addr>) -> Result<(), BackendError> {
        std::fs::create_dir_all(self.state.run_dir(key))?;
        let Some(ip) = ip else { return Ok(()) };
        self.network
            .add_address(IpAddr::V4(ip))
            .await
            .map_err(network_error)
    }

    async fn unprepare(&self, key: &PodKey, ip: Ipv4Addr) {
        if let Err(err) = self.network.remove_address(IpAddr::V4(ip)).await {
            tracing::warn!(pod = %key, error = %err, "cannot take the pod's address off the pod network");
        }
    }

    async fn start(&self, pod: &Arc<Pod>, container: &Arc<Container>) -> io::Result<()> {
        Runner::start(self, pod, container).await
    }

    async fn stop(&self, _pod: &Pod, container: &Container, grace: Duration) -> io::Result<()> {
        Runner::stop(self, container, grace).await
    }

    fn restart_grace(&self) -> Duration {
        self.restart_grace
    }

    fn persist(&self, pod: &RuntimePod<Self>) {
        Runner::persist(self, pod);
    }

    fn forget(&self, pod: &RuntimePod<Self>) {
        if let Err(err) = Runner::forget(self, pod) {
            tracing::warn!(pod = %pod.key, error = %err, "cannot remove the pod's files");
        }
    }

    fn events(&self) -> &EventHub {
        &self.events
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

    fn unapplied_groups(&self) -> Option<String> {
        self.inner.identity_unavailable.clone()
    }

    fn unenforced_limits(&self) -> Option<String> {
        match &self.inner.cgroups {
            CgroupSupport::Enforced(_) => None,
            CgroupSupport::Unavailable(reason) => Some(reason.clone()),
        }
    }

    async fn create(&self, launch: PodLaunch) -> Result<PodRuntimeStatus, BackendError> {
        let inner = &self.inner;
        if let Ok(pod) = inner.table.pod(&launch.key) {
            return Ok(pod.status());
        }
        if inner.config.terminal_holder.is_none()
            && let Some(c) = launch
                .init_containers
                .iter()
                .chain(&launch.containers)
                .find(|c| c.tty)
        {
            // Never started half-configured: a program that asked for a terminal behaves
            // differently without one.
            return Err(BackendError::Unsupported(format!(
                "container {:?} sets tty: true, but this node has no program to hold containers' \
                 terminals (run faas-vnode, or set ProcessBackendConfig::with_terminal_holder; \
                 or drop tty: kubectl attach -i needs only stdin: true)",
                c.name
            )));
        }
        if let Some(reason) = &inner.identity_unavailable {
            let (own_user, own_group) = (
                nix::unistd::geteuid().as_raw(),
                nix::unistd::getegid().as_raw(),
            );
            if let Some(c) = launch
                .init_containers
                .iter()
                .chain(&launch.containers)
                .find(|c| {
                    c.run_as_user.is_some_and(|u| u != own_user)
                        || c.run_as_group.is_some_and(|g| g != own_group)
                })
            {
                // Never started as someone else than asked.
                return Err(BackendError::Unsupported(format!(
                    "container {:?} asks to run as user {:?} and group {:?}, which this node \
                     cannot do: {reason}",
                    c.name, c.run_as_user, c.run_as_group
                )));
            }
        }
        let executables = launch
            .init_containers
            .iter()
            .chain(&launch.containers)
            .map(|c| inner.config.images.resolve(&c.image))
            .collect::<Result<Vec<_>, _>>()?;
        let state = &inner.table.runtime().state;
        let run_dir = state.run_dir(&launch.key);
        let isolated = inner.isolated;
        let hosts_file = match (&launch.hosts_file, isolated) {
            (Some(content), true) => {
                std::fs::create_dir_all(&run_dir)?;
                let path = state.hosts_path(&launch.key);
                std::fs::write(&path, content)?;
                Some(path)
            }
            _ => None,
        };
        let hostname = launch
            .hostname
            .clone()
            .filter(|_| isolated && launch.host_network.is_none());
        let mounts_volumes = launch
            .init_containers
            .iter()
            .chain(&launch.containers)
            .any(|c| !c.mounts.is_empty());
        if mounts_volumes && !isolated {
            // Never started half-configured: without its volumes a container would not find
            // its files.
            return Err(BackendError::Other(
                "the pod mounts volumes, which this node mounts only when it runs as root (set \
                 automountServiceAccountToken: false and drop the volumeMounts, or run the node \
                 as root)"
                    .into(),
            ));
        }
        let volume_dirs = if mounts_volumes {
            std::fs::create_dir_all(&run_dir)?;
            isolate::write_volumes(
                &state.volumes_dir(&launch.key),
                &launch.volumes,
                launch.fs_group,
            )?
        } else {
            Vec::new()
        };
        let mut mounts_of = Vec::new();
        for c in launch.init_containers.iter().chain(&launch.containers) {
            let mut mounts = Vec::new();
            for m in &c.mounts {
                let Some((_, dir)) = volume_dirs.iter().find(|(name, _)| *name == m.volume) else {
                    return Err(BackendError::Other(
                        format!(
                            "container {:?} mounts volume {:?}, which the pod does not have",
                            c.name, m.volume
                        )
                        .into(),
                    ));
                };
                let source = match &m.sub_path {
                    Some(sub) => isolate::inside(dir, sub)?,
                    None => dir.clone(),
                };
                if m.sub_path.is_some() && !source.exists() {
                    std::fs::create_dir_all(&source)?;
                }
                mounts.push(BindMount {
                    source,
                    target: PathBuf::from(&m.mount_path),
                    read_only: m.read_only,
                });
            }
            // A mount inside another is made after it.
            mounts.sort_by_key(|m| m.target.components().count());
            mounts_of.push(mounts);
        }
        let cgroups = inner.cgroups.cgroups();
        if let Some(cgroups) = cgroups {
            let resources = |list: &[crate::node::ContainerLaunch]| -> Vec<_> {
                list.iter().map(|c| c.resources).collect()
            };
            let limits = PodLimits::of(
                &resources(&launch.containers),
                &resources(&launch.init_containers),
            );
            let containers: Vec<_> = launch
                .init_containers
                .iter()
                .chain(&launch.containers)
                .map(|c| (c.name.as_str(), c.resources))
                .collect();
            cgroups.create_pod(&launch.key.uid, limits, &containers)?;
        }
        let created = inner
            .table
            .create(
                &launch.key,
                launch.host_network,
                !launch.init_containers.is_empty(),
                |ip| {
                    let containers = launch
                        .init_containers
                        .iter()
                        .chain(&launch.containers)
                        .zip(executables)
                        .zip(mounts_of)
                        .map(|((c, exe), mounts)| {
                            let mut spec = resolve_spec(
                                c,
                                exe,
                                &launch.key,
                                ip,
                                &inner.config.base_env,
                                &run_dir,
                            );
                            spec.host_network = launch.host_network.is_some();
                            spec.isolated = isolated;
                            spec.hostname = hostname.clone();
                            spec.hosts_file = hosts_file.clone();
                            spec.mounts = mounts;
                            if !isolated {
                                spec.termination_message_path = None;
                            }
                            spec.cgroup = cgroups.is_some();
                            if inner.identity_unavailable.is_some() {
                                // What is left is the node's own identity (checked above), or
                                // groups the node says it does not apply.
                                spec.run_as_user = None;
                                spec.run_as_group = None;
                                spec.supplemental_groups.clear();
                            }
                            Container::new(spec, ContainerStatusCell::new(c.name.clone()))
                        })
                        .collect();
                    (containers, RecordGuard::default())
                },
            )
            .await;
        if created.is_err()
            && let Some(cgroups) = cgroups
            && inner.table.pod(&launch.key).is_err()
            && let Err(err) = cgroups.remove_pod(&launch.key.uid)
        {
            tracing::warn!(pod = %launch.key, error = %err, "cannot remove the cgroup of a pod that did not start");
        }
        created
    }

    async fn reserve_ip(&self, key: &PodKey) -> Result<Option<IpAddr>, BackendError> {
        self.inner.table.reserve_ip(key)
    }

    async fn update(&self, pod: PodLaunch) -> Result<(), BackendError> {
        // Labels and annotations change nothing for a process; volume files are brought up to
        // date (those of volumes the pod mounts).
        let existing = self.inner.table.pod(&pod.key)?;
        let mounted = existing
            .containers
            .iter()
            .any(|c| !c.spec.mounts.is_empty());
        if mounted && !pod.volumes.is_empty() {
            let dir = self.inner.table.runtime().state.volumes_dir(&pod.key);
            isolate::write_volumes(&dir, &pod.volumes, pod.fs_group)?;
        }
        Ok(())
    }

    async fn restart_container(&self, key: &PodKey, name: &str) -> Result<(), BackendError> {
        self.inner.table.restart(key, name).await
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
        let (run, progress) = {
            let runtime = lock(&container.runtime);
            (runtime.status.restart_count, runtime.log.clone())
        };
        // The log of the run before the current one is kept (see the state directory).
        let (run, progress) = match (opts.previous, run.checked_sub(1)) {
            (false, _) => (run, progress),
            (true, Some(previous)) => (previous, None),
            (true, None) => {
                return Err(BackendError::NoPreviousRun {
                    pod: key.clone(),
                    container: name.to_owned(),
                });
            }
        };
        let paths = self
            .inner
            .table
            .runtime()
            .state
            .log_paths(&pod.key, name, run);
        Ok(read_log(paths, progress, opts))
    }

    async fn stats(&self, key: &PodKey) -> Result<Option<Vec<ContainerUsage>>, BackendError> {
        let pod = self.inner.table.pod(key)?;
        let mut usage = Vec::with_capacity(pod.containers.len());
        for container in &pod.containers {
            let process = lock(&container.runtime).process;
            let (cpu, memory) = match process {
                Some(identity) => super::inspect::group_usage(identity.pgid)?,
                None => (0, 0),
            };
            usage.push(ContainerUsage::new(&container.name, cpu, memory));
        }
        Ok(Some(usage))
    }

    async fn exec(&self, key: &PodKey, name: &str, argv: Vec<String>) -> Result<i32, BackendError> {
        let (_pod, container) = self.inner.table.container(key, name)?;
        if argv.is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "exec needs a command").into());
        }
        let pid = {
            let runtime = lock(&container.runtime);
            if !runtime.status.is_running() {
                return Err(io::Error::other(format!(
                    "container {name:?} of {key} is not running"
                ))
                .into());
            }
            runtime.process.map(|p| p.pid)
        };
        let network = network_of(&self.inner.table.runtime().network, &container.spec);
        let cgroup = self.cgroup_entry(key, &container);
        super::exec::run(network, &container.spec, pid, cgroup, &argv)
            .await
            .map_err(|source| BackendError::Start {
                container: name.to_owned(),
                source,
            })
    }

    async fn exec_session(
        &self,
        key: &PodKey,
        name: &str,
        request: ExecRequest,
    ) -> Result<ExecSession, BackendError> {
        let (_pod, container) = self.inner.table.container(key, name)?;
        let pid = {
            let runtime = lock(&container.runtime);
            if !runtime.status.is_running() {
                return Err(BackendError::Unsupported(format!(
                    "container {name:?} of pod {}/{} is not running",
                    key.namespace, key.name
                )));
            }
            runtime.process.map(|p| p.pid)
        };
        let network = network_of(&self.inner.table.runtime().network, &container.spec);
        let cgroup = self.cgroup_entry(key, &container);
        super::exec::start(network, &container.spec, pid, cgroup, request)
            .await
            .map_err(|source| BackendError::Start {
                container: name.to_owned(),
                source,
            })
    }

    async fn attach_input(&self, key: &PodKey, name: &str) -> Result<AttachInput, BackendError> {
        let input = self.attach_stdin(key, name).await?;
        let (pod, container) = self.inner.table.container(key, name)?;
        if !container.spec.tty {
            return Ok(input);
        }
        let link = self
            .inner
            .table
            .runtime()
            .state
            .terminal_path(&pod.key, &container.name);
        let resize: Resize = Box::new(move |size| super::terminal::resize(&link, size));
        let input = input.with_resize(resize);
        let shown = lock(&container.runtime)
            .terminal_output
            .as_ref()
            .and_then(tokio::sync::broadcast::WeakSender::upgrade)
            .map(|tap| tap.subscribe());
        Ok(match shown {
            Some(shown) => input.with_output(super::terminal::output_stream(shown)),
            None => input,
        })
    }

    fn events(&self) -> PodEvents {
        self.inner.table.runtime().events.subscribe()
    }
}

impl ProcessBackend {
    /// The input side of an attach session to a container started with `stdin: true`.
    async fn attach_stdin(&self, key: &PodKey, name: &str) -> Result<AttachInput, BackendError> {
        let (_pod, container) = self.inner.table.container(key, name)?;
        if !container.spec.stdin {
            return Err(BackendError::Unsupported(format!(
                "container {name:?} of pod {}/{} was not started with stdin: true, so it has no \
                 input to attach to (set stdin: true in its spec, or attach without -i)",
                key.namespace, key.name
            )));
        }
        let stdin = {
            let runtime = lock(&container.runtime);
            if !runtime.status.is_running() {
                return Err(BackendError::Unsupported(format!(
                    "container {name:?} of pod {}/{} is not running",
                    key.namespace, key.name
                )));
            }
            runtime.stdin.clone()
        };
        let Some(stdin) = stdin else {
            return Ok(AttachInput::new(None, container.spec.stdin_once));
        };
        let session = stdin
            .session()?
            .map(|s| Box::pin(s) as Pin<Box<dyn AsyncWrite + Send>>);
        Ok(AttachInput::new(session, stdin.once()))
    }
}

fn network_error(err: crate::node::network::NetworkError) -> BackendError {
    BackendError::Other(Box::new(err))
}

impl Drop for Inner {
    fn drop(&mut self) {
        let runner = self.table.runtime();
        runner.cancel.cancel();
        if let ShutdownPolicy::StopAll { .. } = self.config.on_drop {
            for pod in self.table.drain() {
                for container in &pod.containers {
                    if let Some(identity) = lock(&container.runtime).process {
                        let _ = signal_group(identity.pgid, Signal::SIGKILL);
                    }
                }
                if let Err(err) = runner.forget(&pod) {
                    tracing::warn!(pod = %pod.key, error = %err, "cannot remove the pod's files");
                }
            }
            if let Some(cgroups) = self.cgroups.cgroups() {
                cgroups.remove_parent_if_empty();
            }
        }
    }
}
