//! The boundary between the virtual node and what actually runs pods.
//!
//! The node resolves everything that is Kubernetes-specific (environment from ConfigMaps, Secrets and
//! the downward API, `$(VAR)` expansion, restart policy and back-off, probes, deletion grace) and hands
//! a [`PodBackend`] a plain, resolved [`PodLaunch`]. The backend only runs things and reports what it
//! sees as [`PodRuntimeStatus`], announcing every change on its [`PodEvents`] stream.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};

/// Identifies one pod instance on the node (the uid distinguishes a re-created pod of the same name).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PodKey {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub name: String,
    /// The pod's `metadata.uid`.
    pub uid: String,
}

impl PodKey {
    /// A key from its three parts.
    pub fn new(
        namespace: impl Into<String>,
        name: impl Into<String>,
        uid: impl Into<String>,
    ) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            uid: uid.into(),
        }
    }
}

impl fmt::Display for PodKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{} ({})", self.namespace, self.name, self.uid)
    }
}

/// Everything a backend needs to start a pod, already resolved by the node.
#[non_exhaustive]
#[derive(Clone, Debug)]
pub struct PodLaunch {
    /// Which pod this is.
    pub key: PodKey,
    /// Its containers, in spec order.
    pub containers: Vec<ContainerLaunch>,
    /// Its init containers, in spec order: they run one after the other to completion before
    /// the containers start (the node starts each with
    /// [`restart_container`](PodBackend::restart_container)).
    pub init_containers: Vec<ContainerLaunch>,
    /// The pod's labels.
    pub labels: BTreeMap<String, String>,
    /// The pod's annotations.
    pub annotations: BTreeMap<String, String>,
    /// For a `hostNetwork: true` pod, the node's address: the pod runs in the node's own network,
    /// reports this address as its own and gets none reserved.
    pub host_network: Option<IpAddr>,
    /// The hostname its containers see (`spec.hostname`, else the pod's name).
    pub hostname: Option<String>,
    /// The kubelet-managed `/etc/hosts` its containers see (none for a `hostNetwork` pod, which
    /// sees the node's).
    pub hosts_file: Option<String>,
    /// Its volumes, resolved (the files of ConfigMaps, Secrets, the downward API, tokens).
    pub volumes: Vec<VolumeLaunch>,
    /// The group that owns its volumes (`securityContext.fsGroup`): writable volumes become
    /// group-writable with the set-group-ID bit on their directories, the files of the others
    /// group-readable, as a kubelet sets them.
    pub fs_group: Option<u32>,
}

impl PodLaunch {
    /// A launch description with no labels and no annotations.
    pub fn new(key: PodKey, containers: Vec<ContainerLaunch>) -> Self {
        Self {
            key,
            containers,
            init_containers: Vec::new(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            host_network: None,
            hostname: None,
            hosts_file: None,
            volumes: Vec::new(),
            fs_group: None,
        }
    }

    /// Sets the group that owns the pod's volumes (`fsGroup`).
    #[must_use]
    pub fn with_fs_group(mut self, fs_group: Option<u32>) -> Self {
        self.fs_group = fs_group;
        self
    }

    /// Sets the volumes.
    #[must_use]
    pub fn with_volumes(mut self, volumes: Vec<VolumeLaunch>) -> Self {
        self.volumes = volumes;
        self
    }

    /// Sets the hostname and the `/etc/hosts` content the containers see.
    #[must_use]
    pub fn with_host_identity(mut self, hostname: String, hosts_file: Option<String>) -> Self {
        self.hostname = Some(hostname);
        self.hosts_file = hosts_file;
        self
    }

    /// Runs the pod in the node's network, on the node's address `host_ip` (`hostNetwork: true`).
    #[must_use]
    pub fn with_host_network(mut self, host_ip: IpAddr) -> Self {
        self.host_network = Some(host_ip);
        self
    }

    /// Sets the init containers.
    #[must_use]
    pub fn with_init_containers(mut self, init_containers: Vec<ContainerLaunch>) -> Self {
        self.init_containers = init_containers;
        self
    }

    /// Sets the labels.
    #[must_use]
    pub fn with_labels(mut self, labels: BTreeMap<String, String>) -> Self {
        self.labels = labels;
        self
    }

    /// Sets the annotations.
    #[must_use]
    pub fn with_annotations(mut self, annotations: BTreeMap<String, String>) -> Self {
        self.annotations = annotations;
        self
    }
}

/// One container of a [`PodLaunch`].
#[non_exhaustive]
#[derive(Clone, Debug)]
pub struct ContainerLaunch {
    /// The container's name.
    pub name: String,
    /// The image, as written in the pod spec (the backend maps it to something it can run).
    pub image: String,
    /// The command, already `$(VAR)`-expanded; empty means the image's default.
    pub command: Vec<String>,
    /// The arguments, already `$(VAR)`-expanded.
    pub args: Vec<String>,
    /// The environment, fully resolved, in kubelet order; the backend adds `POD_IP`.
    pub env: Vec<(String, String)>,
    /// The working directory, if the spec sets one.
    pub working_dir: Option<String>,
    /// The container ports the spec declares.
    pub ports: Vec<u16>,
    /// Where the container may write why it ended (`terminationMessagePath`), reported in its
    /// terminated state.
    pub termination_message_path: Option<String>,
    /// With an empty termination message and a failed run, report the end of its log instead
    /// (`terminationMessagePolicy: FallbackToLogsOnError`).
    pub termination_message_from_logs: bool,
    /// Where the pod's volumes appear in the container.
    pub mounts: Vec<MountLaunch>,
    /// The user its processes run as (`securityContext.runAsUser`, the container's over the
    /// pod's); `None` runs them as the node's own user.
    pub run_as_user: Option<u32>,
    /// Their primary group (`securityContext.runAsGroup`).
    pub run_as_group: Option<u32>,
    /// Their supplementary groups: the pod's `fsGroup`, then its `supplementalGroups`.
    pub supplemental_groups: Vec<u32>,
    /// The CPU and memory it asks for and may use (`resources`).
    pub resources: ContainerResources,
    /// A sidecar: an init container that keeps running beside the containers
    /// (`restartPolicy: Always`); when the pod stops it is stopped after them.
    pub sidecar: bool,
    /// Its standard input stays open for `kubectl attach -i` (`stdin: true`); otherwise it reads
    /// an empty input.
    pub stdin: bool,
    /// Its input is closed once the first attach session that sent input ends (`stdinOnce`).
    pub stdin_once: bool,
    /// It asks for a terminal (`tty: true`).
    pub tty: bool,
}

/// The CPU and memory a container asks for and may use (its `resources`), in plain units.
///
/// ```
/// use faas_k8s::node::ContainerResources;
///
/// let resources = ContainerResources::default()
///     .with_memory_limit(Some(64 * 1024 * 1024))
///     .with_cpu(Some(250), Some(500));
/// assert_eq!(resources.cpu_limit_millis, Some(500));
/// assert!(resources.is_limited());
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ContainerResources {
    /// `limits.memory` in bytes.
    pub memory_limit_bytes: Option<u64>,
    /// `limits.cpu` in thousandths of a core.
    pub cpu_limit_millis: Option<u64>,
    /// `requests.cpu` in thousandths of a core (its share of the CPU when cores are contended).
    pub cpu_request_millis: Option<u64>,
}

impl ContainerResources {
    /// Sets the memory limit.
    #[must_use]
    pub fn with_memory_limit(mut self, bytes: Option<u64>) -> Self {
        self.memory_limit_bytes = bytes;
        self
    }

    /// Sets the CPU request and limit.
    #[must_use]
    pub fn with_cpu(mut self, request_millis: Option<u64>, limit_millis: Option<u64>) -> Self {
        self.cpu_request_millis = request_millis;
        self.cpu_limit_millis = limit_millis;
        self
    }

    /// Whether a CPU or memory limit is set.
    pub fn is_limited(&self) -> bool {
        self.memory_limit_bytes.is_some() || self.cpu_limit_millis.is_some()
    }
}

impl ContainerLaunch {
    /// A container with the given name and image and nothing else set.
    pub fn new(name: impl Into<String>, image: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            image: image.into(),
            command: Vec::new(),
            args: Vec::new(),
            env: Vec::new(),
            working_dir: None,
            ports: Vec::new(),
            termination_message_path: None,
            termination_message_from_logs: false,
            mounts: Vec::new(),
            run_as_user: None,
            run_as_group: None,
            supplemental_groups: Vec::new(),
            resources: ContainerResources::default(),
            sidecar: false,
            stdin: false,
            stdin_once: false,
            tty: false,
        }
    }

    /// Keeps its standard input open for attach sessions (`stdin`), closed after the first one
    /// that sent input ends when `once` (`stdinOnce`).
    #[must_use]
    pub fn with_stdin(mut self, stdin: bool, once: bool) -> Self {
        self.stdin = stdin;
        self.stdin_once = once;
        self
    }

    /// Asks for a terminal (`tty`).
    #[must_use]
    pub fn with_tty(mut self, tty: bool) -> Self {
        self.tty = tty;
        self
    }

    /// Marks it a sidecar (an init container with `restartPolicy: Always`).
    #[must_use]
    pub fn with_sidecar(mut self, sidecar: bool) -> Self {
        self.sidecar = sidecar;
        self
    }

    /// Sets the CPU and memory it asks for and may use.
    #[must_use]
    pub fn with_resources(mut self, resources: ContainerResources) -> Self {
        self.resources = resources;
        self
    }

    /// Runs the container's processes as `user` and `group`.
    #[must_use]
    pub fn with_identity(mut self, user: Option<u32>, group: Option<u32>) -> Self {
        self.run_as_user = user;
        self.run_as_group = group;
        self
    }

    /// Gives the container's processes these supplementary groups.
    #[must_use]
    pub fn with_supplemental_groups(mut self, groups: Vec<u32>) -> Self {
        self.supplemental_groups = groups;
        self
    }

    /// Sets the volume mounts.
    #[must_use]
    pub fn with_mounts(mut self, mounts: Vec<MountLaunch>) -> Self {
        self.mounts = mounts;
        self
    }

    /// Sets the termination message path and whether a failed run with no message reports the
    /// end of its log.
    #[must_use]
    pub fn with_termination_message(mut self, path: Option<String>, from_logs: bool) -> Self {
        self.termination_message_path = path;
        self.termination_message_from_logs = from_logs;
        self
    }

    /// Sets the command.
    #[must_use]
    pub fn with_command(mut self, command: Vec<String>) -> Self {
        self.command = command;
        self
    }

    /// Sets the arguments.
    #[must_use]
    pub fn with_args(mut self, args: Vec<String>) -> Self {
        self.args = args;
        self
    }

    /// Sets the environment.
    #[must_use]
    pub fn with_env(mut self, env: Vec<(String, String)>) -> Self {
        self.env = env;
        self
    }

    /// Sets the working directory.
    #[must_use]
    pub fn with_working_dir(mut self, dir: Option<String>) -> Self {
        self.working_dir = dir;
        self
    }

    /// Sets the declared ports.
    #[must_use]
    pub fn with_ports(mut self, ports: Vec<u16>) -> Self {
        self.ports = ports;
        self
    }
}

/// One volume of a [`PodLaunch`], resolved by the node.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeLaunch {
    /// The volume's name in the pod spec.
    pub name: String,
    /// Its files (ConfigMap, Secret, downward API, projected); `None` for an `emptyDir`.
    pub files: Option<Vec<VolumeFile>>,
    /// An `emptyDir` with `medium: Memory`.
    pub memory: bool,
}

impl VolumeLaunch {
    /// An empty directory for the pod's containers to share.
    pub fn empty_dir(name: impl Into<String>, memory: bool) -> Self {
        Self {
            name: name.into(),
            files: None,
            memory,
        }
    }

    /// A volume holding `files`.
    pub fn files(name: impl Into<String>, files: Vec<VolumeFile>) -> Self {
        Self {
            name: name.into(),
            files: Some(files),
            memory: false,
        }
    }
}

/// One file of a [`VolumeLaunch`].
#[non_exhaustive]
#[derive(Clone, PartialEq, Eq)]
pub struct VolumeFile {
    /// Its path inside the volume (relative, may hold directories).
    pub path: String,
    /// Its content.
    pub content: Vec<u8>,
    /// Its permission bits.
    pub mode: u32,
}

impl VolumeFile {
    /// A file from its parts (`mode` as the API gives it; only permission bits are kept).
    pub fn new(path: impl Into<String>, content: Vec<u8>, mode: i32) -> Self {
        Self {
            path: path.into(),
            content,
            mode: u32::try_from(mode).unwrap_or(0o644) & 0o777,
        }
    }
}

impl fmt::Debug for VolumeFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Secrets and tokens stay out of logs.
        f.debug_struct("VolumeFile")
            .field("path", &self.path)
            .field("bytes", &self.content.len())
            .field("mode", &format_args!("{:o}", self.mode))
            .finish()
    }
}

/// Where a volume appears in a container (`volumeMounts`).
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountLaunch {
    /// The volume's name.
    pub volume: String,
    /// The absolute path in the container.
    pub mount_path: String,
    /// Only this path inside the volume, if set.
    pub sub_path: Option<String>,
    /// Mounted read-only.
    pub read_only: bool,
}

impl MountLaunch {
    /// A mount of `volume` at `mount_path`.
    pub fn new(volume: impl Into<String>, mount_path: impl Into<String>) -> Self {
        Self {
            volume: volume.into(),
            mount_path: mount_path.into(),
            sub_path: None,
            read_only: false,
        }
    }

    /// Mounts only `sub_path` of the volume.
    #[must_use]
    pub fn with_sub_path(mut self, sub_path: Option<String>) -> Self {
        self.sub_path = sub_path;
        self
    }

    /// Mounts it read-only.
    #[must_use]
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }
}

/// What one container uses, as `/stats/summary` reports it.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerUsage {
    /// The container's name.
    pub name: String,
    /// CPU time used by its processes since they started, in nanoseconds.
    pub cpu_nanoseconds: u64,
    /// Resident memory of its processes, in bytes.
    pub memory_bytes: u64,
}

impl ContainerUsage {
    /// A usage from its parts.
    pub fn new(name: impl Into<String>, cpu_nanoseconds: u64, memory_bytes: u64) -> Self {
        Self {
            name: name.into(),
            cpu_nanoseconds,
            memory_bytes,
        }
    }
}

/// What the backend observes about a pod.
#[non_exhaustive]
#[derive(Clone, Debug)]
pub struct PodRuntimeStatus {
    /// Which pod this is.
    pub key: PodKey,
    /// The address the pod's processes are reachable on.
    pub pod_ip: Option<IpAddr>,
    /// One entry per container.
    pub containers: Vec<ContainerRuntimeStatus>,
}

impl PodRuntimeStatus {
    /// A status from its parts.
    pub fn new(
        key: PodKey,
        pod_ip: Option<IpAddr>,
        containers: Vec<ContainerRuntimeStatus>,
    ) -> Self {
        Self {
            key,
            pod_ip,
            containers,
        }
    }

    /// The status of the named container.
    pub fn container(&self, name: &str) -> Option<&ContainerRuntimeStatus> {
        self.containers.iter().find(|c| c.name == name)
    }
}

/// What the backend observes about one container.
#[non_exhaustive]
#[derive(Clone, Debug)]
pub struct ContainerRuntimeStatus {
    /// The container's name.
    pub name: String,
    /// Its current state.
    pub state: ContainerState,
    /// How many times the backend (re)started it beyond the first start.
    pub restart_count: u32,
    /// How its previous run ended, if it ran before.
    pub last_termination: Option<Terminated>,
}

impl ContainerRuntimeStatus {
    /// A status from its parts.
    pub fn new(
        name: impl Into<String>,
        state: ContainerState,
        restart_count: u32,
        last_termination: Option<Terminated>,
    ) -> Self {
        Self {
            name: name.into(),
            state,
            restart_count,
            last_termination,
        }
    }
}

/// The state of one container, as a kubelet reports it.
#[derive(Clone, Debug, PartialEq)]
pub enum ContainerState {
    /// Not running yet (or not any more, waiting to be restarted).
    Waiting {
        /// A short CamelCase reason (`ContainerCreating`, `CrashLoopBackOff`, ...).
        reason: String,
        /// A human-readable message.
        message: Option<String>,
    },
    /// Running since `started_at`.
    Running {
        /// When the process started.
        started_at: SystemTime,
    },
    /// Exited.
    Terminated(Terminated),
}

/// How a container's run ended.
#[derive(Clone, Debug, PartialEq)]
pub struct Terminated {
    /// The exit code (128 + signal when killed by a signal, as a shell reports it).
    pub exit_code: i32,
    /// The signal that ended it, if any.
    pub signal: Option<i32>,
    /// `Completed` (exit 0), `Error` (non-zero), `OOMKilled` or `Signal`.
    pub reason: String,
    /// When the run started.
    pub started_at: SystemTime,
    /// When it ended.
    pub finished_at: SystemTime,
    /// What the container left in its termination message file (or the end of its log).
    pub message: Option<String>,
}

/// What the node advertises as its capacity and allocatable resources.
#[non_exhaustive]
#[derive(Clone, Debug, Default)]
pub struct Capacity {
    /// CPU as a Kubernetes quantity (`"8"`, `"500m"`).
    pub cpu: String,
    /// Memory as a Kubernetes quantity (`"32Gi"`).
    pub memory: String,
    /// How many pods the node accepts.
    pub pods: u32,
}

impl Capacity {
    /// A capacity from its parts.
    pub fn new(cpu: impl Into<String>, memory: impl Into<String>, pods: u32) -> Self {
        Self {
            cpu: cpu.into(),
            memory: memory.into(),
            pods,
        }
    }
}

/// Which part of a container's log to return, as the kubelet's `containerLogs` query asks.
#[non_exhaustive]
#[derive(Clone, Debug, Default)]
pub struct LogOptions {
    /// Only the last this many lines.
    pub tail_lines: Option<usize>,
    /// Only lines written at or after this instant.
    pub since: Option<SystemTime>,
    /// Prefix each line with its RFC 3339 timestamp.
    pub timestamps: bool,
    /// Keep streaming what is written after the call.
    pub follow: bool,
    /// Stop after this many bytes.
    pub limit_bytes: Option<usize>,
    /// The log of the container's previous run instead of its current one (`kubectl logs
    /// --previous`).
    pub previous: bool,
}

/// Change notifications: the key of a pod whose runtime status changed (notify, not poll).
pub type PodEvents = BoxStream<'static, PodKey>;

/// A container's log as a stream of byte chunks.
pub type LogStream = BoxStream<'static, std::io::Result<Bytes>>;

/// Why a backend could not do what the node asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// The backend runs no pod with this key (or no such container in it).
    #[error("no pod {0} on this backend")]
    NotFound(PodKey),
    /// The image names nothing this backend can run.
    #[error("image {image:?} cannot be run: {reason}")]
    InvalidImage {
        /// The image as written in the pod spec.
        image: String,
        /// Why it cannot be run.
        reason: String,
    },
    /// A container's process could not be started.
    #[error("container {container:?} could not be started")]
    Start {
        /// The container's name.
        container: String,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The container has no previous run whose log is kept (`kubectl logs --previous` of a
    /// container that never restarted, or of a backend that keeps no per-run logs).
    #[error("previous terminated container {container:?} in pod {pod} not found")]
    NoPreviousRun {
        /// The pod.
        pod: PodKey,
        /// The container's name.
        container: String,
    },
    /// The backend has no room left (addresses, slots).
    #[error("the backend has no capacity left")]
    CapacityExhausted,
    /// An I/O operation failed.
    #[error("I/O error")]
    Io(#[from] std::io::Error),
    /// The backend cannot do this for its pods (`kubectl exec` on a backend without processes).
    #[error("{0}")]
    Unsupported(String),
    /// Anything else.
    #[error(transparent)]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

/// Runs the pods bound to a virtual node.
///
/// Implementations are given fully resolved launch descriptions and only run things and report what
/// they see; the node decides when to start, restart and stop. Every method may be called concurrently
/// for different pods.
///
/// # Example
///
/// A backend that refuses every pod, to show the shape of an implementation:
///
/// ```
/// use std::time::Duration;
/// use async_trait::async_trait;
/// use faas_k8s::node::backend::*;
///
/// struct Refuse;
///
/// #[async_trait]
/// impl PodBackend for Refuse {
///     fn name(&self) -> &str { "refuse" }
///     fn capacity(&self) -> Capacity { Capacity::new("1", "1Gi", 0) }
///     async fn create(&self, _pod: PodLaunch) -> Result<PodRuntimeStatus, BackendError> {
///         Err(BackendError::CapacityExhausted)
///     }
///     async fn update(&self, pod: PodLaunch) -> Result<(), BackendError> {
///         Err(BackendError::NotFound(pod.key))
///     }
///     async fn restart_container(&self, key: &PodKey, _c: &str) -> Result<(), BackendError> {
///         Err(BackendError::NotFound(key.clone()))
///     }
///     async fn delete(&self, _key: &PodKey, _grace: Duration) -> Result<(), BackendError> {
///         Ok(())
///     }
///     async fn status(&self, _key: &PodKey) -> Result<Option<PodRuntimeStatus>, BackendError> {
///         Ok(None)
///     }
///     async fn list(&self) -> Result<Vec<PodRuntimeStatus>, BackendError> { Ok(Vec::new()) }
///     async fn logs(&self, key: &PodKey, _c: &str, _o: LogOptions) -> Result<LogStream, BackendError> {
///         Err(BackendError::NotFound(key.clone()))
///     }
///     async fn exec(&self, key: &PodKey, _c: &str, _cmd: Vec<String>) -> Result<i32, BackendError> {
///         Err(BackendError::NotFound(key.clone()))
///     }
///     fn events(&self) -> PodEvents { Box::pin(futures::stream::pending()) }
/// }
/// ```
#[async_trait]
pub trait PodBackend: Send + Sync + 'static {
    /// Name for the provider taint and logs (`"process"`, `"function"`, ...).
    fn name(&self) -> &str;

    /// What the node advertises as capacity and allocatable.
    fn capacity(&self) -> Capacity;

    /// Why CPU and memory limits are not enforced for this backend's pods, or `None` when they
    /// are; the node tells every pod that sets a limit (a `LimitsNotEnforced` Warning Event).
    /// The default: not enforced.
    fn unenforced_limits(&self) -> Option<String> {
        Some(format!(
            "the {} backend runs containers without cgroups of their own",
            self.name()
        ))
    }

    /// Why the pod's `fsGroup` and `supplementalGroups` are not applied to this backend's
    /// containers (their processes' groups, their volumes' owner), or `None` when they are; the
    /// node tells every pod that sets them (a `GroupsNotApplied` Warning Event). The default:
    /// not applied.
    fn unapplied_groups(&self) -> Option<String> {
        Some(format!(
            "the {} backend runs containers without processes of their own",
            self.name()
        ))
    }

    /// Starts every container of the pod, or, when it has init containers, only the first of
    /// them: the node starts each next one, and then the containers, with
    /// [`restart_container`](Self::restart_container). Its status lists the init containers
    /// first, then the containers. Idempotent for an existing key (adoption): it then returns
    /// the status of what already runs.
    async fn create(&self, pod: PodLaunch) -> Result<PodRuntimeStatus, BackendError>;

    /// The pod's spec changed in a way the backend may care about (labels, annotations; containers
    /// are immutable).
    async fn update(&self, pod: PodLaunch) -> Result<(), BackendError>;

    /// (Re)starts one container that has terminated, or starts one not started yet; the node
    /// decides when, per restart policy, back-off and init order. If the container is still running (its liveness probe failed), the backend first
    /// stops it as [`delete`](Self::delete) would, SIGTERM then SIGKILL after a short grace, so the
    /// new run never overlaps the old one.
    async fn restart_container(&self, key: &PodKey, container: &str) -> Result<(), BackendError>;

    /// Reserves the address the pod will get, before [`create`](Self::create), so the node can
    /// resolve `status.podIP` in the environment and in `$(VAR)` references as a kubelet does.
    /// `create` for the same key must then use this address; `delete` releases it. Calling it again
    /// for the same key returns the same address. Backends without per-pod addresses keep the
    /// default, which reserves nothing.
    async fn reserve_ip(&self, key: &PodKey) -> Result<Option<IpAddr>, BackendError> {
        let _ = key;
        Ok(None)
    }

    /// Whether containers see the files of the pod's volumes (ConfigMaps, Secrets, the service
    /// account token, ...). A backend that does not (the default says it does) spares the node
    /// resolving them: no ConfigMap or Secret is read and no token requested for its pods, at
    /// their start or later.
    fn mounts_volumes(&self) -> bool {
        true
    }

    /// Stops the pod: SIGTERM (or equivalent), waits up to `grace`, then SIGKILL; returns when
    /// nothing of it is left running. Deleting an unknown key succeeds.
    async fn delete(&self, key: &PodKey, grace: Duration) -> Result<(), BackendError>;

    /// The current runtime status, `None` if the backend has no such pod.
    async fn status(&self, key: &PodKey) -> Result<Option<PodRuntimeStatus>, BackendError>;

    /// Every pod the backend runs (for adoption after a restart of the node).
    async fn list(&self) -> Result<Vec<PodRuntimeStatus>, BackendError>;

    /// A container's log (stdout and stderr interleaved) as a byte stream; with `follow` the stream
    /// keeps going with what is written later.
    async fn logs(
        &self,
        key: &PodKey,
        container: &str,
        opts: LogOptions,
    ) -> Result<LogStream, BackendError>;

    /// What the containers of a running pod use now, for the kubelet API's `/stats/summary`;
    /// `None` when the backend cannot tell (the default).
    async fn stats(&self, key: &PodKey) -> Result<Option<Vec<ContainerUsage>>, BackendError> {
        let _ = key;
        Ok(None)
    }

    /// Runs a command inside the container's environment (exec probes) and returns its exit code.
    async fn exec(
        &self,
        key: &PodKey,
        container: &str,
        command: Vec<String>,
    ) -> Result<i32, BackendError>;

    /// Starts a command in the container with its standard streams connected to the caller
    /// (`kubectl exec`, also with `-i` and `-t`). The default refuses with
    /// [`BackendError::Unsupported`]: a backend that runs no processes has nothing to exec into.
    async fn exec_session(
        &self,
        key: &PodKey,
        container: &str,
        request: super::exec::ExecRequest,
    ) -> Result<super::exec::ExecSession, BackendError> {
        let _ = (key, request);
        Err(BackendError::Unsupported(format!(
            "the {} backend cannot run commands in container {container:?}",
            self.name()
        )))
    }

    /// Connects a caller to the standard input of a running container started with `stdin: true`
    /// (`kubectl attach -i`), and to its terminal's size when it has one (`tty: true`, `kubectl
    /// attach -it`); what the container writes reaches the caller through
    /// [`logs`](Self::logs) as for any attach. The default refuses with
    /// [`BackendError::Unsupported`]: a backend without processes has no input to attach to.
    async fn attach_input(
        &self,
        key: &PodKey,
        container: &str,
    ) -> Result<super::exec::AttachInput, BackendError> {
        let _ = key;
        Err(BackendError::Unsupported(format!(
            "the {} backend's container {container:?} takes no input",
            self.name()
        )))
    }

    /// Status change notifications: the key of every pod whose runtime status changed (a container
    /// exited, started, ...). The node calls it once when it starts.
    fn events(&self) -> PodEvents;
}
