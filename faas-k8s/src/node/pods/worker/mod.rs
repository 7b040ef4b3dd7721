//! One task per pod: drives the pod through its [`Stage`]s and writes its status.
//!
//! The worker wakes up on a new version of the pod, a change reported by the backend, a probe
//! result or a timer (a restart back-off or a retry that is due), does what the state machine says,
//! and writes the pod's status when it differs from what the API server has.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::{Pod, Service};
use kube::Api;
use kube::runtime::reflector::Store;
use tokio::sync::{Semaphore, SemaphorePermit, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::super::backend::{
    BackendError, Capacity, ContainerState, PodBackend, PodKey, PodLaunch, PodRuntimeStatus,
};
use super::super::backoff::RestartBackoff;
use super::super::config::NodeConfig;
use super::super::probe::{ProbeReport, ProbeTarget, ProbeUpdate, probe_container};
use super::inbox::{Inbox, WorkerMsg};
use super::launch::{build_launch, build_volumes, pod_key};
use super::record::{PodRecord, SharedPodParts};
mod limits;
mod report;
mod terminate;
#[cfg(test)]
mod tests;

use super::state::{
    ExitDecision, Phase, RestartPolicy, Stage, decide_exit, deletion_grace, initial_stage,
};

/// What every worker shares.
pub(crate) struct PodContext {
    pub(crate) client: kube::Client,
    pub(crate) backend: Arc<dyn PodBackend>,
    pub(crate) config: Arc<NodeConfig>,
    pub(crate) allocatable: Capacity,
    /// The cluster's Services, for the pods' service variables.
    pub(crate) services: Store<Service>,
    /// Bounds the workers' requests in flight ([`NodeConfig::max_api_requests`]).
    pub(crate) api_requests: Semaphore,
    /// What the pods share: specs, labels and annotations, each kept once.
    pub(crate) shared: SharedPodParts,
}

impl PodContext {
    /// Waits for a turn to send a request to the API server; the turn lasts as long as the
    /// permit.
    pub(crate) async fn api_turn(&self) -> SemaphorePermit<'_> {
        // The semaphore is never closed.
        self.api_requests
            .acquire()
            .await
            .expect("the API request semaphore is never closed")
    }
}

/// How long a pod waits for the first listing of Services before its start is retried.
const SERVICES_WAIT: Duration = Duration::from_secs(10);

/// When the API server cannot be reached, status writes are retried this often.
const STATUS_RETRY: Duration = Duration::from_secs(2);
/// How long a pod's first Running status waits for its containers' first readiness result, so
/// that a container ready at once is reported Running and Ready in one write. With two writes a
/// few milliseconds apart, the EndpointSlice controller often syncs the second against a cache
/// that has not seen its own first update yet, and retries that Service only after its one
/// second back-off: a pod woken from zero would reach the gateway a second late.
const FIRST_READY_WAIT: Duration = Duration::from_secs(1);
/// A pod deleted from the API server without a grace period still gets this long to stop.
const MIN_GRACE: Duration = Duration::from_secs(2);

#[derive(Debug)]
struct ContainerTrack {
    backoff: RestartBackoff,
    /// A restart is due at this instant (the container waits in `CrashLoopBackOff`).
    restart_due: Option<(Instant, Duration)>,
    /// The end of the last run a decision was made about.
    handled_exit: Option<SystemTime>,
    ready: bool,
    started: bool,
    /// The current run (keyed by when it started) and its probing task; no task when the
    /// container has neither probes nor a postStart hook.
    probes: Option<(SystemTime, Option<JoinHandle<()>>)>,
}

impl ContainerTrack {
    fn stop_probes(&mut self) {
        if let Some((_, Some(task))) = self.probes.take() {
            task.abort();
        }
        self.ready = false;
        self.started = false;
    }
}

/// The containers' tracks, in spec order: a pod has a few, so a slice searched by name (a map's
/// node is sized for eleven).
#[derive(Debug)]
struct Tracks(Box<[(String, ContainerTrack)]>);

impl Tracks {
    fn get(&self, name: &str) -> Option<&ContainerTrack> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    fn get_mut(&mut self, name: &str) -> Option<&mut ContainerTrack> {
        self.0.iter_mut().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    fn values(&self) -> impl Iterator<Item = &ContainerTrack> {
        self.0.iter().map(|(_, t)| t)
    }

    fn values_mut(&mut self) -> impl Iterator<Item = &mut ContainerTrack> {
        self.0.iter_mut().map(|(_, t)| t)
    }
}

pub(crate) struct Worker {
    ctx: Arc<PodContext>,
    key: PodKey,
    pod: PodRecord,
    stage: Stage,
    policy: RestartPolicy,
    runtime: Option<PodRuntimeStatus>,
    runtime_dirty: bool,
    tracks: Tracks,
    /// Why the pod cannot start (waiting reason and message), when it cannot.
    blocked: Option<(String, String)>,
    retry_at: Option<Instant>,
    /// No status write before this instant: a failed write's retry, or the pod's first Running
    /// status waiting for its first readiness result (see [`FIRST_READY_WAIT`]).
    status_retry_at: Option<Instant>,
    launch_backoff: RestartBackoff,
    /// Why the node ended the pod itself (`DeadlineExceeded`), reported as its status reason.
    failure: Option<(String, String)>,
    /// The init containers, in the order they run.
    init_names: Vec<String>,
    /// An init container failed and the restart policy says never again: the pod failed.
    init_failed: bool,
    /// Every init container completed (or, a sidecar, started): from then on sidecars are
    /// supervised beside the containers.
    init_done: bool,
    /// When the running pod's volume files are next brought up to date.
    next_volume_sync: Option<Instant>,
    gone: bool,
    finished: bool,
    probe_reports: ProbeReports,
}

/// Where probing tasks report, made when the first one starts: most pods have no probe.
#[derive(Debug, Default)]
struct ProbeReports {
    tx: Option<mpsc::UnboundedSender<ProbeReport>>,
    rx: Option<mpsc::UnboundedReceiver<ProbeReport>>,
}

impl ProbeReports {
    fn sender(&mut self) -> mpsc::UnboundedSender<ProbeReport> {
        if let Some(tx) = &self.tx {
            return tx.clone();
        }
        let (tx, rx) = mpsc::unbounded_channel();
        self.rx = Some(rx);
        self.tx.insert(tx).clone()
    }

    async fn next(&mut self) -> Option<ProbeReport> {
        match &mut self.rx {
            Some(rx) => rx.recv().await,
            None => futures::future::pending().await,
        }
    }
}

impl Worker {
    pub(crate) fn new(ctx: Arc<PodContext>, pod: Pod) -> Self {
        let key = pod_key(&pod);
        let phase = Phase::parse(pod.status.as_ref().and_then(|s| s.phase.as_deref()));
        let stage = initial_stage(phase, pod.metadata.deletion_timestamp.is_some());
        let policy =
            RestartPolicy::parse(pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()));
        let (base, max) = (ctx.config.backoff_base, ctx.config.backoff_max);
        let init_names: Vec<String> = pod
            .spec
            .iter()
            .flat_map(|s| s.init_containers.iter().flatten())
            .map(|c| c.name.clone())
            .collect();
        let tracks = pod
            .spec
            .iter()
            .flat_map(|s| {
                s.init_containers
                    .iter()
                    .flatten()
                    .chain(s.containers.iter())
            })
            .map(|c| {
                (
                    c.name.clone(),
                    ContainerTrack {
                        backoff: RestartBackoff::new(base, max),
                        restart_due: None,
                        handled_exit: None,
                        ready: false,
                        started: false,
                        probes: None,
                    },
                )
            })
            .collect::<Vec<_>>()
            .into_boxed_slice();
        let retry = ctx.config.config_retry_interval;
        let pod = PodRecord::new(pod, &ctx.shared);
        Self {
            ctx,
            key,
            pod,
            stage,
            policy,
            runtime: None,
            runtime_dirty: true,
            tracks: Tracks(tracks),
            blocked: None,
            retry_at: None,
            status_retry_at: None,
            launch_backoff: RestartBackoff::new(retry, retry.max(max)),
            failure: None,
            init_names,
            init_failed: false,
            init_done: false,
            next_volume_sync: None,
            gone: false,
            finished: false,
            probe_reports: ProbeReports::default(),
        }
    }

    fn api(&self) -> Api<Pod> {
        Api::namespaced(self.ctx.client.clone(), &self.key.namespace)
    }

    /// Runs until the pod is gone and stopped, or until the node shuts down (`rx` closes), and
    /// returns the pod's key (the worker's own: its task keeps no copy of it).
    ///
    /// The worker stays where it was boxed: its task holds a pointer to it, not a copy of it
    /// (the task's future would otherwise keep room for the worker twice, before and after it
    /// moves into this call).
    pub(crate) async fn run(mut self: Box<Self>, mut rx: Inbox) -> PodKey {
        loop {
            // Boxed, like every large step below: the task keeps only what an idle worker needs,
            // not room for the deepest call it may make.
            Box::pin(self.step()).await;
            if self.finished {
                break;
            }
            let deadline = self.next_deadline();
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(msg) => self.handle(msg),
                    None => break,
                },
                Some(report) = self.probe_reports.next() => Box::pin(self.handle_probe(report)).await,
                () = sleep_until(deadline) => {}
            }
            while let Some(msg) = rx.try_recv() {
                self.handle(msg);
            }
        }
        for track in self.tracks.values_mut() {
            track.stop_probes();
        }
        self.key
    }

    fn handle(&mut self, msg: WorkerMsg) {
        match msg {
            WorkerMsg::Pod(pod) => {
                if pod.metadata.uid.as_deref() == Some(self.key.uid.as_str()) {
                    let labels_changed = pod.metadata.labels.as_ref() != self.pod.labels()
                        || pod.metadata.annotations.as_ref() != self.pod.annotations();
                    self.pod.update(*pod, &self.ctx.shared);
                    if labels_changed && self.stage == Stage::Running {
                        let backend = self.ctx.backend.clone();
                        let launch = PodLaunch::new(self.key.clone(), Vec::new())
                            .with_labels(self.pod.labels().cloned().unwrap_or_default())
                            .with_annotations(self.pod.annotations().cloned().unwrap_or_default());
                        let key = self.key.clone();
                        tokio::spawn(async move {
                            if let Err(e) = backend.update(launch).await {
                                tracing::debug!(pod = %key, error = %e, "backend update failed");
                            }
                        });
                    }
                }
            }
            WorkerMsg::Gone => self.gone = true,
            WorkerMsg::Runtime => self.runtime_dirty = true,
        }
    }

    async fn handle_probe(&mut self, report: ProbeReport) {
        let Some(track) = self.tracks.get_mut(&report.container) else {
            return;
        };
        if track.probes.as_ref().map(|(run, _)| *run) != Some(report.run) {
            return; // about an earlier run
        }
        match report.update {
            ProbeUpdate::Started => track.started = true,
            ProbeUpdate::Ready(ready) => {
                track.ready = ready;
                // The first result is in: the status held for it is written now.
                if ready && self.awaiting_first_ready() {
                    self.status_retry_at = None;
                }
            }
            ProbeUpdate::LivenessFailed(message)
            | ProbeUpdate::StartupFailed(message)
            | ProbeUpdate::PostStartFailed(message) => {
                tracing::info!(pod = %self.key, container = %report.container, %message,
                    "probe failed, restarting the container");
                track.stop_probes();
                if self.policy == RestartPolicy::Never {
                    self.stop_for_good().await;
                } else if let Err(e) = self
                    .ctx
                    .backend
                    .restart_container(&self.key, &report.container)
                    .await
                {
                    tracing::warn!(pod = %self.key, error = %e, "restart after a failed probe");
                }
                self.runtime_dirty = true;
            }
        }
    }

    fn spec_grace(&self) -> Duration {
        deletion_grace(
            None,
            self.pod
                .spec()
                .and_then(|s| s.termination_grace_period_seconds),
        )
    }

    fn next_deadline(&self) -> Option<Instant> {
        let restarts = self
            .tracks
            .values()
            .filter_map(|t| t.restart_due.map(|(at, _)| at));
        restarts
            .chain(self.retry_at)
            .chain(self.status_retry_at)
            .chain(self.active_deadline())
            .chain(
                self.next_volume_sync
                    .filter(|_| self.stage == Stage::Running),
            )
            .min()
    }

    /// When the pod's `spec.activeDeadlineSeconds` runs out, counted from its start time, while
    /// the pod still runs or waits to.
    fn active_deadline(&self) -> Option<Instant> {
        if matches!(self.stage, Stage::Terminating | Stage::Terminated) {
            return None;
        }
        let seconds = self.pod.spec()?.active_deadline_seconds?;
        let started = self.pod.start_time()?.0.as_second();
        let deadline = SystemTime::UNIX_EPOCH
            + Duration::from_secs(u64::try_from(started).unwrap_or(0))
            + Duration::from_secs(u64::try_from(seconds).unwrap_or(0));
        let left = deadline
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        Some(Instant::now() + left)
    }

    /// Past `spec.activeDeadlineSeconds` the pod is stopped and fails with `DeadlineExceeded`,
    /// as a kubelet does it; returns whether it did.
    async fn enforce_active_deadline(&mut self) -> bool {
        if self.active_deadline().is_none_or(|at| at > Instant::now()) {
            return false;
        }
        tracing::info!(pod = %self.key, "the pod's active deadline passed; stopping it");
        for track in self.tracks.values_mut() {
            track.stop_probes();
            track.restart_due = None;
        }
        if let Err(e) = self.ctx.backend.delete(&self.key, self.spec_grace()).await {
            tracing::warn!(pod = %self.key, error = %e, "stopping a pod past its deadline failed; retrying");
            self.status_retry_at = Some(Instant::now() + STATUS_RETRY);
            return true;
        }
        self.runtime = Some(self.final_runtime());
        self.runtime_dirty = false;
        self.blocked = None;
        self.retry_at = None;
        self.failure = Some((
            "DeadlineExceeded".to_owned(),
            "Pod was active on the node longer than the specified deadline".to_owned(),
        ));
        self.stage = Stage::Terminated;
        true
    }

    async fn step(&mut self) {
        if self.pod.metadata().deletion_timestamp.is_some() || self.gone {
            self.terminate().await;
            return;
        }
        if self.enforce_active_deadline().await {
            self.write_status().await;
            return;
        }
        match self.stage {
            Stage::Pending | Stage::Creating => self.start().await,
            Stage::Running => self.supervise().await,
            Stage::Terminating | Stage::Terminated => {}
        }
        self.write_status().await;
    }

    async fn start(&mut self) {
        if self.retry_at.is_some_and(|at| at > Instant::now()) {
            return;
        }
        self.retry_at = None;
        // Adoption: a backend that already runs this pod (the node restarted) keeps it.
        match self.ctx.backend.status(&self.key).await {
            Ok(Some(status)) => {
                tracing::info!(pod = %self.key, "adopted a running pod");
                self.runtime = Some(status);
                self.runtime_dirty = false;
                self.blocked = None;
                self.stage = Stage::Running;
                self.supervise().await;
                return;
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(pod = %self.key, error = %e, "backend status failed");
            }
        }
        let host_network = self
            .pod
            .spec()
            .and_then(|s| s.host_network)
            .unwrap_or(false)
            .then(|| self.ctx.config.host_ip());
        let pod_ip = match host_network {
            Some(host_ip) => Some(host_ip),
            None => match self.ctx.backend.reserve_ip(&self.key).await {
                Ok(ip) => ip.or_else(|| self.recorded_pod_ip()),
                Err(e) => {
                    self.block("CreateContainerError", e.to_string());
                    return;
                }
            },
        };
        let services = &self.ctx.services;
        if tokio::time::timeout(SERVICES_WAIT, services.wait_until_ready())
            .await
            .is_err()
        {
            self.blocked = Some((
                "CreateContainerConfigError".to_owned(),
                "services have not yet been read at least once, cannot construct envvars"
                    .to_owned(),
            ));
            self.retry_at = Some(Instant::now() + self.ctx.config.config_retry_interval);
            return;
        }
        let services = services.state();
        let services: Vec<&Service> = services.iter().map(AsRef::as_ref).collect();
        let launch = build_launch(
            &self.pod.to_pod(),
            pod_ip,
            self.ctx.config.host_ip(),
            &self.ctx.allocatable,
            &services,
            &self.ctx.client,
            self.ctx.backend.mounts_volumes(),
        )
        .await;
        let launch = match launch {
            Ok(launch) => match host_network {
                Some(host_ip) => launch.with_host_network(host_ip),
                None => launch,
            },
            Err(e) => {
                tracing::info!(pod = %self.key, error = %e.0, "container configuration unresolved");
                self.blocked = Some(("CreateContainerConfigError".to_owned(), e.0));
                self.retry_at = Some(Instant::now() + self.ctx.config.config_retry_interval);
                return;
            }
        };
        self.stage = Stage::Creating;
        match self.ctx.backend.create(launch).await {
            Ok(status) => {
                tracing::info!(pod = %self.key, ip = ?status.pod_ip, "pod started");
                let unenforced = self.ctx.backend.unenforced_limits();
                let pod = self.pod.to_pod();
                limits::warn_unenforced(&self.ctx, &pod, unenforced).await;
                limits::warn_unapplied_groups(&self.ctx, &pod).await;
                self.runtime = Some(status);
                self.runtime_dirty = true;
                self.blocked = None;
                self.stage = Stage::Running;
                self.supervise().await;
            }
            Err(e) => {
                let reason = match &e {
                    BackendError::InvalidImage { .. } => "ErrImagePull",
                    BackendError::CapacityExhausted => "OutOfCapacity",
                    _ => "CreateContainerError",
                };
                tracing::warn!(pod = %self.key, error = %e, "pod could not be started");
                self.stage = Stage::Pending;
                self.block(reason, error_chain(&e));
            }
        }
    }

    fn block(&mut self, reason: &str, message: String) {
        self.blocked = Some((reason.to_owned(), message));
        let delay = self.launch_backoff.next_delay(Instant::now());
        self.retry_at = Some(Instant::now() + delay.max(self.ctx.config.backoff_base));
    }

    fn recorded_pod_ip(&self) -> Option<IpAddr> {
        self.pod.pod_ip().and_then(|ip| ip.parse().ok())
    }

    async fn refresh_runtime(&mut self) {
        if !self.runtime_dirty {
            return;
        }
        match self.ctx.backend.status(&self.key).await {
            Ok(Some(status)) => {
                self.runtime = Some(status);
                self.runtime_dirty = false;
            }
            Ok(None) => {
                // The backend lost the pod (its processes and records are gone): start it again.
                tracing::warn!(pod = %self.key, "the backend no longer runs the pod; starting it again");
                self.runtime = None;
                self.runtime_dirty = false;
                for track in self.tracks.values_mut() {
                    track.stop_probes();
                    track.restart_due = None;
                }
                self.stage = Stage::Pending;
            }
            Err(e) => {
                tracing::warn!(pod = %self.key, error = %e, "backend status failed");
                self.status_retry_at = Some(Instant::now() + STATUS_RETRY);
            }
        }
    }

    /// The Running stage: decide about exits, restart what is due, keep probes in step with runs.
    async fn supervise(&mut self) {
        if !self.init_names.is_empty() && !self.init_done {
            self.refresh_runtime().await;
            if self.stage != Stage::Running || !self.advance_init().await {
                return;
            }
            self.init_done = true;
            self.start_app_containers().await;
        }
        // A restarted container can have exited again by the time the backend is asked how it
        // is: decide about that exit too before judging whether the pod is done.
        for _ in 0..3 {
            self.refresh_runtime().await;
            if self.stage != Stage::Running || !self.decide_and_restart().await {
                break;
            }
        }
        if self.stage != Stage::Running {
            return;
        }
        self.sync_volumes().await;
        if self.runtime_dirty {
            self.refresh_runtime().await;
        }
        let all_done = self.runtime.as_ref().is_some_and(|r| {
            r.containers
                .iter()
                .filter(|c| !self.init_names.contains(&c.name))
                .all(|c| match &c.state {
                    ContainerState::Terminated(t) => self.tracks.get(&c.name).is_none_or(|track| {
                        track.handled_exit == Some(t.finished_at) && track.restart_due.is_none()
                    }),
                    _ => false,
                })
        });
        if all_done {
            tracing::info!(pod = %self.key, "every container finished; the pod is done");
            self.stage = Stage::Terminated;
        }
    }

    /// Decides about every exit not yet decided about, keeps probes in step with runs, and
    /// restarts the containers whose back-off is over; returns whether it restarted any.
    async fn decide_and_restart(&mut self) -> bool {
        let now = Instant::now();
        let Some(runtime) = self.runtime.clone() else {
            return false;
        };
        let mut restart_now = Vec::new();
        for container in &runtime.containers {
            let sidecar = self.is_sidecar(&container.name);
            if self.init_names.contains(&container.name) && !sidecar {
                continue;
            }
            // A sidecar runs again whatever the pod's policy.
            let policy = if sidecar {
                RestartPolicy::Always
            } else {
                self.policy
            };
            if let ContainerState::Running { started_at } = &container.state {
                self.ensure_probes(&container.name, *started_at, runtime.pod_ip);
            }
            let Some(track) = self.tracks.get_mut(&container.name) else {
                continue;
            };
            match &container.state {
                ContainerState::Terminated(t) => {
                    track.stop_probes();
                    if track.handled_exit != Some(t.finished_at) {
                        track.handled_exit = Some(t.finished_at);
                        let backoff = &mut track.backoff;
                        match decide_exit(policy, t, || backoff.next_delay(now)) {
                            ExitDecision::RestartAfter(delay) => {
                                tracing::info!(pod = %self.key, container = %container.name,
                                    exit_code = t.exit_code, ?delay, "container exited; restarting after back-off");
                                track.restart_due = Some((now + delay, delay));
                            }
                            ExitDecision::Stay => {
                                tracing::info!(pod = %self.key, container = %container.name,
                                    exit_code = t.exit_code, "container exited; not restarting");
                            }
                        }
                    }
                    if let Some((at, _)) = track.restart_due
                        && at <= now
                    {
                        restart_now.push(container.name.clone());
                    }
                }
                ContainerState::Running { .. } => track.restart_due = None,
                ContainerState::Waiting { .. } => track.stop_probes(),
            }
        }
        let restarted = !restart_now.is_empty();
        for name in restart_now {
            if let Some(track) = self.tracks.get_mut(&name) {
                track.restart_due = None;
            }
            if let Err(e) = self.ctx.backend.restart_container(&self.key, &name).await {
                tracing::warn!(pod = %self.key, container = %name, error = %e, "restart failed");
                if let Some(track) = self.tracks.get_mut(&name) {
                    let delay = track.backoff.next_delay(now);
                    let delay = delay.max(self.ctx.config.backoff_base);
                    track.restart_due = Some((now + delay, delay));
                }
            }
            self.runtime_dirty = true;
        }
        restarted
    }
}

impl Worker {
    /// Whether `name` is a sidecar: an init container with `restartPolicy: Always`.
    fn is_sidecar(&self, name: &str) -> bool {
        self.pod
            .spec()
            .into_iter()
            .flat_map(|s| s.init_containers.iter().flatten())
            .any(|c| c.name == name && c.restart_policy.as_deref() == Some("Always"))
    }

    /// Starts probing the run of `name` that started at `started_at`, unless it is probed.
    fn ensure_probes(&mut self, name: &str, started_at: SystemTime, pod_ip: Option<IpAddr>) {
        let spec = self
            .pod
            .spec()
            .into_iter()
            .flat_map(|s| {
                s.containers
                    .iter()
                    .chain(s.init_containers.iter().flatten())
            })
            .find(|c| c.name == name)
            .cloned()
            .unwrap_or_default();
        let Some(track) = self.tracks.get_mut(name) else {
            return;
        };
        if track.probes.as_ref().map(|(run, _)| *run) == Some(started_at) {
            return;
        }
        track.stop_probes();
        let probed = spec.startup_probe.is_some()
            || spec.readiness_probe.is_some()
            || spec.liveness_probe.is_some()
            || spec
                .lifecycle
                .as_ref()
                .is_some_and(|l| l.post_start.is_some());
        // A readiness probe that may pass at once: the first Running status waits for it.
        let ready_at_once = spec.readiness_probe.as_ref().is_some_and(|p| {
            p.initial_delay_seconds.unwrap_or(0) <= 0
                && spec.startup_probe.is_none()
                && spec
                    .lifecycle
                    .as_ref()
                    .is_none_or(|l| l.post_start.is_none())
        });
        // Nothing to probe: the run is started and ready as it is (see `view`).
        let task = probed.then(|| {
            let target = ProbeTarget {
                backend: self.ctx.backend.clone(),
                key: self.key.clone(),
                container: spec,
                pod_ip,
            };
            tokio::spawn(probe_container(
                target,
                started_at,
                self.probe_reports.sender(),
            ))
        });
        track.probes = Some((started_at, task));
        if ready_at_once && !self.first_status_written() {
            self.status_retry_at = Some(Instant::now() + FIRST_READY_WAIT);
        }
    }

    /// Whether the API server has a Running status of this pod from this node already.
    fn first_status_written(&self) -> bool {
        self.pod.has_status()
            && (self.pod.phase() != Some("Pending") || self.pod.pod_ip().is_some())
    }

    /// Whether the first Running status is held for a readiness result (see
    /// [`FIRST_READY_WAIT`]).
    fn awaiting_first_ready(&self) -> bool {
        !self.first_status_written() && self.status_retry_at.is_some()
    }

    /// Whether the sidecar `name` has started: it runs, and its startup probe and postStart
    /// hook (if it has them) are through.
    fn sidecar_started(&self, name: &str) -> bool {
        let spec = self
            .pod
            .spec()
            .into_iter()
            .flat_map(|s| s.init_containers.iter().flatten())
            .find(|c| c.name == name);
        let gated = spec.is_some_and(|c| {
            c.startup_probe.is_some()
                || c.lifecycle.as_ref().is_some_and(|l| l.post_start.is_some())
        });
        !gated || self.tracks.get(name).is_some_and(|t| t.started)
    }

    /// Runs the init containers one after the other, each to a successful end, restarting a
    /// failed one with back-off (or failing the pod under `restartPolicy: Never`); returns
    /// whether all of them completed.
    async fn advance_init(&mut self) -> bool {
        let Some(runtime) = self.runtime.clone() else {
            return false;
        };
        let now = Instant::now();
        for name in self.init_names.clone() {
            let Some(container) = runtime.container(&name) else {
                return false;
            };
            let sidecar = self.is_sidecar(&name);
            if sidecar && let ContainerState::Running { started_at } = &container.state {
                // The next one waits only for the sidecar's start, not its end.
                self.ensure_probes(&name, *started_at, runtime.pod_ip);
                if self.sidecar_started(&name) {
                    continue;
                }
                return false;
            }
            let Some(track) = self.tracks.get_mut(&name) else {
                return false;
            };
            match &container.state {
                ContainerState::Terminated(t) if t.exit_code == 0 && !sidecar => {}
                ContainerState::Terminated(t) => {
                    if track.handled_exit != Some(t.finished_at) {
                        track.handled_exit = Some(t.finished_at);
                        if self.policy == RestartPolicy::Never && !sidecar {
                            tracing::info!(pod = %self.key, container = %name, "init container failed; the pod fails");
                            self.init_failed = true;
                            self.stage = Stage::Terminated;
                            return false;
                        }
                        let delay = track.backoff.next_delay(now);
                        track.restart_due = Some((now + delay, delay));
                    }
                    if track.restart_due.is_some_and(|(at, _)| at <= now) {
                        track.restart_due = None;
                        self.start_container(&name, now).await;
                    }
                    return false;
                }
                ContainerState::Running { .. } => return false,
                ContainerState::Waiting { .. } => {
                    if track.restart_due.is_none_or(|(at, _)| at <= now) {
                        track.restart_due = None;
                        self.start_container(&name, now).await;
                    }
                    return false;
                }
            }
        }
        true
    }

    /// Brings the files of the running pod's volumes up to date, every
    /// [`volume_sync_interval`](NodeConfig::volume_sync_interval).
    async fn sync_volumes(&mut self) {
        let has_volumes = self.ctx.backend.mounts_volumes()
            && self
                .pod
                .spec()
                .is_some_and(|s| s.volumes.as_ref().is_some_and(|v| !v.is_empty()));
        if !has_volumes {
            return;
        }
        let now = Instant::now();
        let interval = self.ctx.config.volume_sync_interval;
        match self.next_volume_sync {
            None => {
                // Written when the pod was created.
                self.next_volume_sync = Some(now + interval);
                return;
            }
            Some(at) if at > now => return,
            Some(_) => self.next_volume_sync = Some(now + interval),
        }
        let pod_ip = self.runtime.as_ref().and_then(|r| r.pod_ip);
        let launch = build_volumes(
            &self.pod.to_pod(),
            pod_ip,
            self.ctx.config.host_ip(),
            &self.ctx.allocatable,
            &self.ctx.client,
        )
        .await;
        let result = match launch {
            Ok(launch) => self
                .ctx
                .backend
                .update(launch)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.0),
        };
        if let Err(e) = result {
            tracing::warn!(pod = %self.key, error = %e, "bringing the pod's volumes up to date failed; retrying later");
        }
    }

    /// Once the init containers completed: starts the containers not started yet.
    async fn start_app_containers(&mut self) {
        let Some(runtime) = self.runtime.clone() else {
            return;
        };
        let now = Instant::now();
        for container in &runtime.containers {
            let never_ran = matches!(&container.state, ContainerState::Waiting { reason, .. } if reason == "ContainerCreating")
                && container.restart_count == 0
                && container.last_termination.is_none();
            if !self.init_names.contains(&container.name) && never_ran {
                self.start_container(&container.name, now).await;
            }
        }
    }

    /// Starts (or starts again) one container; a failure is retried after back-off.
    async fn start_container(&mut self, name: &str, now: Instant) {
        if let Err(e) = self.ctx.backend.restart_container(&self.key, name).await {
            tracing::warn!(pod = %self.key, container = %name, error = %e, "starting a container failed");
            if let Some(track) = self.tracks.get_mut(name) {
                let delay = track
                    .backoff
                    .next_delay(now)
                    .max(self.ctx.config.backoff_base);
                track.restart_due = Some((now + delay, delay));
            }
        }
        self.runtime_dirty = true;
        self.refresh_runtime().await;
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => futures::future::pending().await,
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
