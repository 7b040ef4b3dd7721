//! [`FunctionController`]: the reconciler on kube-runtime's `Controller`, with leader election
//! and shutdown, as a value the embedding program drives.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::stream::BoxStream;
use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::runtime::controller::{self, Action};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{Controller, WatchStreamExt as _, watcher};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;

use super::applied::AppliedObjects;
use super::backoff::RetryBackoff;
use super::config::OperatorConfig;
use super::detached::DetachedCreates;
use super::leader::{LeaderElection, LeaseLock};
use super::progress::ProgressClock;
use super::readiness;
use super::reconcile::{Context, error_policy, reconcile};
use super::stats::OperatorStats;
use crate::error::{Error, Result};
use crate::function::{FUNCTION_LABEL, Function};

/// What the controller's stream yields for each reconcile: the Function and the action taken,
/// or why it could not run.
pub type ReconcileResult =
    std::result::Result<(ObjectRef<Function>, Action), controller::Error<Error, watcher::Error>>;

/// The function operator: reconciles every `Function` into a Deployment and a Service and
/// reports its status.
///
/// Nothing runs until [`run`](Self::run) is awaited (or the stream of [`stream`](Self::stream)
/// is polled). `run` takes part in leader election when [`with_leader_election`] is set, and
/// returns once shut down through [`shutdown_handle`](Self::shutdown_handle) (or a signal with
/// [`shutdown_on_signal`](Self::shutdown_on_signal)).
///
/// [`with_leader_election`]: Self::with_leader_election
///
/// ```no_run
/// use faas_k8s::operator::{FunctionController, LeaderElection, OperatorConfig};
///
/// # async fn example() -> faas_k8s::Result<()> {
/// let client = kube::Client::try_default().await.expect("a kubeconfig");
/// FunctionController::new(client, OperatorConfig::default())
///     .with_leader_election(LeaderElection::new("faas-system", "faas-operator", "pod-a"))
///     .shutdown_on_signal()
///     .run()
///     .await
/// # }
/// ```
pub struct FunctionController {
    client: Client,
    config: OperatorConfig,
    election: Option<LeaderElection>,
    shutdown: faas_core::HostShutdown,
    on_signal: bool,
    stats: Arc<OperatorStats>,
}

impl std::fmt::Debug for FunctionController {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FunctionController")
            .field("config", &self.config)
            .field("election", &self.election)
            .finish_non_exhaustive()
    }
}

fn owned_api<K>(client: &Client, config: &OperatorConfig) -> Api<K>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
{
    match &config.namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    }
}

/// A cache of the objects of kind `K` that carry the function label, and its event stream;
/// `observe` sees each event once the cache holds it.
fn reflect<K>(
    client: &Client,
    config: &OperatorConfig,
    observe: impl Fn(&watcher::Event<K>) + Send + 'static,
) -> (
    reflector::Store<K>,
    impl futures::Stream<Item = std::result::Result<K, watcher::Error>> + Send + 'static,
)
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store();
    let stream = reflector::reflector(
        writer,
        watcher(
            owned_api::<K>(client, config),
            watcher::Config::default().labels(FUNCTION_LABEL),
        ),
    )
    .inspect_ok(observe)
    .default_backoff()
    .touched_objects();
    (store, stream)
}

/// The last readiness signal (see [`readiness::pod_signal`]) of each pod that has one.
#[derive(Default)]
struct PodSignals {
    last: HashMap<ObjectRef<Pod>, u64>,
}

impl PodSignals {
    /// Whether `pod` says something new about its Function's readiness: only then does its
    /// event wake the Function's reconcile. A pod's other changes (scheduled, started, ready)
    /// reach the Function through its Deployment's status, and would only repeat reconciles that
    /// find nothing to do.
    fn changed(&mut self, pod: &Pod) -> bool {
        let key = ObjectRef::from_obj(pod);
        let signal = readiness::pod_signal(pod);
        let previous = match signal {
            Some(signal) => self.last.insert(key, signal),
            None => self.last.remove(&key),
        };
        previous != signal
    }
}

impl FunctionController {
    /// An operator using `client` (its identity needs the rules of
    /// [`cluster_role`](super::cluster_role)).
    pub fn new(client: Client, config: OperatorConfig) -> Self {
        FunctionController {
            client,
            config,
            election: None,
            shutdown: faas_core::HostShutdown::new(),
            on_signal: false,
            stats: Arc::new(OperatorStats::default()),
        }
    }

    /// Reconciles only while holding the Lease of `election`; stands by otherwise.
    #[must_use]
    pub fn with_leader_election(mut self, election: LeaderElection) -> Self {
        self.election = Some(election);
        self
    }

    /// Also shuts down on SIGTERM or SIGINT.
    #[must_use]
    pub fn shutdown_on_signal(mut self) -> Self {
        self.on_signal = true;
        self
    }

    /// A handle that stops [`run`](Self::run) from anywhere.
    pub fn shutdown_handle(&self) -> faas_core::HostShutdown {
        self.shutdown.clone()
    }

    /// What the operator has done so far.
    pub fn stats(&self) -> Arc<OperatorStats> {
        self.stats.clone()
    }

    /// The controller's stream: polling it reconciles Functions; it ends when `shutdown`
    /// resolves (after reconciles in progress finish). No leader election: an embedding
    /// operator that runs several replicas decides when to poll it.
    pub fn stream(
        &self,
        shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
    ) -> BoxStream<'static, ReconcileResult> {
        let client = &self.client;
        let config = &self.config;
        let functions: Api<Function> = owned_api(client, config);
        let applied_deployments = AppliedObjects::<Deployment>::new(self.stats.clone());
        let applied_services = AppliedObjects::<Service>::new(self.stats.clone());
        let (deployments, deployment_events) = reflect::<Deployment>(client, config, {
            let applied = applied_deployments.clone();
            move |event| applied.observe(event)
        });
        let (services, service_events) = reflect::<Service>(client, config, {
            let applied = applied_services.clone();
            move |event| applied.observe(event)
        });
        let (pods, pod_events) = reflect::<Pod>(client, config, |_| {});
        let mut signals = PodSignals::default();
        let pod_events = pod_events.filter(move |event| {
            std::future::ready(event.as_ref().map_or(true, |pod| signals.changed(pod)))
        });
        let reporter = Reporter {
            controller: config.field_manager.clone(),
            instance: Some(config.instance.clone()),
        };
        let context = Arc::new(Context {
            client: client.clone(),
            config: config.clone(),
            deployments,
            services,
            applied_deployments,
            applied_services,
            service_creates: DetachedCreates::default(),
            written_functions: AppliedObjects::new(self.stats.clone()),
            pods,
            recorder: Recorder::new(client.clone(), reporter),
            stats: self.stats.clone(),
            backoff: RetryBackoff::default(),
            progress: ProgressClock::default(),
            refused: Mutex::new(HashMap::new()),
        });
        Controller::new(functions, watcher::Config::default())
            .with_config(controller::Config::default().concurrency(config.concurrency))
            .owns_stream(deployment_events)
            .owns_stream(service_events)
            .watches_stream(pod_events, |pod: Pod| {
                let name = pod.metadata.labels.as_ref()?.get(FUNCTION_LABEL)?.clone();
                let namespace = pod.metadata.namespace.clone()?;
                Some(ObjectRef::new(&name).within(&namespace))
            })
            .graceful_shutdown_on(shutdown)
            .run(reconcile, error_policy, context)
            .boxed()
    }

    /// Runs until shut down: with leader election, waits for the Lease, reconciles while it
    /// holds it, and stands by again if it loses it; releases the Lease on shutdown.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the signal handlers cannot be installed.
    pub async fn run(self) -> Result<()> {
        if self.on_signal {
            let shutdown = self.shutdown.clone();
            let mut terminate =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .map_err(|e| Error::io("installing the SIGTERM handler", e))?;
            tokio::spawn(async move {
                tokio::select! {
                    _ = terminate.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                    () = shutdown.cancelled() => {}
                }
                shutdown.shutdown();
            });
        }
        let lock = self
            .election
            .clone()
            .map(|election| LeaseLock::new(self.client.clone(), election));
        loop {
            if let Some(lock) = &lock {
                tokio::select! {
                    acquired = lock.acquire() => acquired?,
                    () = self.shutdown.cancelled() => return Ok(()),
                }
            }
            let (lost_tx, lost_rx) = tokio::sync::oneshot::channel::<()>();
            // Renews the Lease while leading; aborted with this future, so a dropped operator
            // stops renewing as a crashed one would.
            let _holder = match &lock {
                Some(lock) => {
                    let lock = lock.clone();
                    AbortOnDrop(tokio::spawn(async move {
                        lock.hold().await;
                        let _ = lost_tx.send(());
                    }))
                }
                None => AbortOnDrop(tokio::spawn(async move {
                    // Without an election leadership is never lost: keep the sender alive.
                    std::future::pending::<()>().await;
                    drop(lost_tx);
                })),
            };
            let shutdown = self.shutdown.clone();
            let stop = async move {
                tokio::select! {
                    () = shutdown.cancelled() => {}
                    _ = lost_rx => {}
                }
            };
            let mut stream = self.stream(stop);
            while let Some(result) = stream.next().await {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "controller event");
                }
            }
            if self.shutdown.is_shutdown() {
                if let Some(lock) = &lock {
                    lock.release().await;
                }
                return Ok(());
            }
            tracing::warn!("leadership lost: standing by");
        }
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};

    use super::*;

    fn pod(scheduled: Option<&str>) -> Pod {
        let mut pod = Pod::default();
        pod.metadata.name = Some("f-1".into());
        pod.metadata.namespace = Some("ns".into());
        pod.status = Some(PodStatus {
            conditions: scheduled.map(|message| {
                vec![PodCondition {
                    type_: "PodScheduled".into(),
                    status: "False".into(),
                    message: Some(message.into()),
                    ..PodCondition::default()
                }]
            }),
            ..PodStatus::default()
        });
        pod
    }

    #[test]
    fn only_pod_changes_readiness_reads_wake_a_reconcile() {
        let mut signals = PodSignals::default();
        assert!(!signals.changed(&pod(None)), "a plain pod says nothing");
        let mut running = pod(None);
        running.status.as_mut().unwrap().phase = Some("Running".into());
        assert!(!signals.changed(&running), "nor does it once it runs");
        assert!(signals.changed(&pod(Some("no node fits"))));
        assert!(
            !signals.changed(&pod(Some("no node fits"))),
            "the same reason again"
        );
        assert!(signals.changed(&pod(Some("0/1 nodes are available"))));
        assert!(signals.changed(&pod(None)), "the reason went away");
        let mut leaving = pod(Some("no node fits"));
        assert!(signals.changed(&leaving));
        leaving.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ));
        assert!(
            signals.changed(&leaving),
            "a pod going away drops its signal"
        );
        assert!(signals.last.is_empty());
    }
}
