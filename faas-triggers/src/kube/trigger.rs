//! [`KubeTrigger`]: changes of Kubernetes objects feeding one function.

use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use async_trait::async_trait;
use faas_core::trigger::{DeadLetterRoute, Invoker, Settlement, deliver_once};
use faas_core::{Dispatcher, Trigger};
use futures::stream::{self, BoxStream};
use futures::{StreamExt as _, future};
use kube::api::{DynamicObject, ListParams, WatchEvent, WatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{self, ApiResource, Scope};
use kube::runtime::watcher;
use kube::{Api, Client};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tokio_util::time::DelayQueue;

use super::checkpoint::Store;
use super::config::{ChangeKind, CheckpointStore, KubeTriggerConfig};
use super::event::invocation_of;
use super::lag::KubeLag;
use super::ledger::{Ledger, Queued};
use crate::event::{Reconnect, invalid, invoker_or};
use crate::{Error, Result};

/// The in-flight limit when neither the trigger nor the function's policy
/// sets one.
const FALLBACK_MAX_IN_FLIGHT: usize = 16;
/// Changes held in memory before the trigger stops reading the watch until
/// calls catch up.
const MAX_BUFFERED: u64 = 10_000;
/// How often at most a ConfigMap checkpoint is written (a file one is
/// written after every change handled).
const CONFIG_MAP_SAVE_INTERVAL: Duration = Duration::from_secs(1);

/// Delivers the changes of Kubernetes objects (any kind, through kube's
/// dynamic API) to one function, at least once, resuming where it stopped.
///
/// At start it finds the resource by discovery (an unknown kind or a
/// namespace given for a cluster-scoped kind is an
/// [`Error::InvalidConfig`] naming `kube.kind` or `kube.namespace`), checks
/// the selectors with the API server (a malformed one names
/// `kube.label_selector` or `kube.field_selector`), loads its checkpoint,
/// then watches: from the checkpoint's resourceVersion when it has one,
/// otherwise (or once that expired: `410 Gone`) through kube-runtime's
/// watcher, which lists, watches, and lists again on `410 Gone`; each list
/// is compared with what was handled (see the [module](super) page for
/// what a restart delivers).
///
/// Every change is one call (a CloudEvent; the object as JSON is its data);
/// changes of one object go one after the other, in order; different
/// objects go side by side up to the in-flight limit. A failed call is
/// delivered again after the policy's backoff with the next attempt number;
/// one that failed for good goes to the policy's dead letter. Only then
/// does the checkpoint move past it.
///
/// ```no_run
/// use faas_core::{FunctionDefinition, Json, LocalExecutor, Registry};
/// use faas_triggers::kube::{CheckpointStore, KubeTrigger, KubeTriggerConfig};
///
/// async fn audit(Json(deployment): Json<serde_json::Value>) -> String {
///     format!("saw {}", deployment["metadata"]["name"])
/// }
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let registry = Registry::from([FunctionDefinition::from_handler("audit", audit)]);
/// let config = KubeTriggerConfig::new("apps/v1", "Deployment")
///     .with_namespace("shop")
///     .with_label_selector("tier=web")
///     .with_checkpoint(CheckpointStore::ConfigMap { namespace: "shop".into(), name: "audit-checkpoint".into() });
/// LocalExecutor::builder(registry)
///     .trigger(KubeTrigger::new("audit", config)?)
///     .build()
///     .shutdown_on_signal()
///     .run()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
#[must_use]
pub struct KubeTrigger {
    function: String,
    config: KubeTriggerConfig,
    client: Option<Client>,
    invoker: Option<Arc<dyn Invoker>>,
    pending: Arc<AtomicU64>,
}

impl std::fmt::Debug for KubeTrigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeTrigger")
            .field("function", &self.function)
            .field("config", &self.config)
            .field("invoker", &self.invoker.as_ref().map(|_| "Invoker"))
            .finish_non_exhaustive()
    }
}

/// One step of the watch, whichever way it watches.
enum Step {
    ListStarted,
    Applied(DynamicObject),
    Deleted(DynamicObject),
    ListDone,
    Bookmark(String),
    /// The checkpoint's resourceVersion is too old: list instead.
    Expired,
    /// Watching from the checkpoint failed: list instead.
    ResumeFailed(String),
    /// The API server could not be asked: wait, then go on.
    Failed(String),
}

enum Setup {
    Config(Error),
    Unreachable(String),
}

impl KubeTrigger {
    /// Delivers the changes `config` watches to `function`, with the
    /// cluster's client from the environment (in-cluster service account,
    /// else `KUBECONFIG`) unless [`with_client`](Self::with_client) gives one.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming a bad setting.
    pub fn new(function: impl Into<String>, config: KubeTriggerConfig) -> Result<Self> {
        config.validate()?;
        Ok(KubeTrigger {
            function: function.into(),
            config,
            client: None,
            invoker: None,
            pending: Arc::default(),
        })
    }

    /// Talks to the API server through `client`.
    pub fn with_client(mut self, client: Client) -> Self {
        self.client = Some(client);
        self
    }

    /// Calls the function through `invoker` (e.g. a
    /// [`GatewayInvoker`](crate::gateway::GatewayInvoker)) instead of the
    /// host's dispatcher.
    pub fn with_invoker(mut self, invoker: Arc<dyn Invoker>) -> Self {
        self.invoker = Some(invoker);
        self
    }

    /// The function it feeds.
    pub fn function(&self) -> &str {
        &self.function
    }

    /// A [`LagSource`](faas_core::trigger::LagSource) for the autoscaler:
    /// the changes this trigger received and has not handled yet.
    pub fn lag_source(&self) -> KubeLag {
        KubeLag::new(self.function.clone(), Arc::clone(&self.pending))
    }

    fn source_name(&self) -> String {
        let scope = self.config.namespace.as_deref().map_or_else(
            || "all namespaces".to_owned(),
            |ns| format!("namespace {ns}"),
        );
        format!(
            "kube {} {} in {scope}",
            self.config.api_version, self.config.kind
        )
    }

    async fn run_trigger(self, dispatcher: Dispatcher, shutdown: CancellationToken) -> Result<()> {
        let invoker = invoker_or(self.invoker.as_ref(), &dispatcher);
        let max_in_flight = self
            .config
            .max_in_flight
            .or_else(|| {
                invoker
                    .policy(&self.function)
                    .and_then(|p| p.max_in_flight())
            })
            .unwrap_or(FALLBACK_MAX_IN_FLIGHT);
        let mut reconnect = Reconnect::new(self.source_name(), dispatcher.readiness().clone());
        let client = match self.client.clone() {
            Some(client) => client,
            None => Client::try_default().await.map_err(|error| {
                invalid(
                    "kube.client",
                    "in-cluster service account or KUBECONFIG",
                    format!("no usable cluster configuration: {error}"),
                )
            })?,
        };
        let setup = loop {
            match set_up(&client, &self.config).await {
                Ok(setup) => break setup,
                Err(Setup::Config(error)) => return Err(error),
                Err(Setup::Unreachable(reason)) => {
                    if !reconnect.failed(&reason, &shutdown).await {
                        reconnect.stopped();
                        return Ok(());
                    }
                }
            }
        };
        reconnect.connected();
        let running = Running {
            function: self.function.clone(),
            resource: setup.resource,
            changes: self.config.changes.clone(),
            invoker,
            max_in_flight,
        };
        let ledger = Ledger::new(
            setup.checkpoint,
            &self.config.api_version,
            &self.config.kind,
            Arc::clone(&self.pending),
        );
        let steps = steps(
            setup.api,
            &self.config,
            ledger.checkpoint().resource_version.clone(),
        );
        let result = run_loop(
            &running,
            ledger,
            &setup.store,
            steps,
            &mut reconnect,
            &shutdown,
        )
        .await;
        reconnect.stopped();
        result
    }
}

/// What the trigger found at start.
struct Ready {
    resource: ApiResource,
    api: Api<DynamicObject>,
    store: Store,
    checkpoint: super::checkpoint::Checkpoint,
}

/// Discovery, the selectors' check and the checkpoint.
async fn set_up(client: &Client, config: &KubeTriggerConfig) -> Result<Ready, Setup> {
    let gvk = GroupVersionKind::gvk(config.group(), config.version(), &config.kind);
    let (resource, capabilities) = discovery::pinned_kind(client, &gvk)
        .await
        .map_err(|error| match error {
            kube::Error::Discovery(_) => Setup::Config(invalid(
                "kube.kind",
                &format!("{}/{}", config.api_version, config.kind),
                format!("the API server serves no such kind: {error}"),
            )),
            kube::Error::Api(status) if status.code == 404 => Setup::Config(invalid(
                "kube.api_version",
                &config.api_version,
                format!(
                    "the API server serves no such group and version: {}",
                    status.message
                ),
            )),
            other => Setup::Unreachable(format!("discovery failed: {other}")),
        })?;
    if !capabilities.supports_operation(discovery::verbs::WATCH) {
        return Err(Setup::Config(invalid(
            "kube.kind",
            &config.kind,
            "this resource cannot be watched",
        )));
    }
    let api: Api<DynamicObject> = match (&capabilities.scope, config.namespace.as_deref()) {
        (Scope::Cluster, Some(namespace)) => {
            return Err(Setup::Config(invalid(
                "kube.namespace",
                namespace,
                format!("{} is cluster-scoped: leave the namespace out", config.kind),
            )));
        }
        (Scope::Namespaced, Some(namespace)) => {
            Api::namespaced_with(client.clone(), namespace, &resource)
        }
        _ => Api::all_with(client.clone(), &resource),
    };
    // The API server is the grammar's authority: ask it once per selector.
    for (key, params) in [
        (
            "kube.label_selector",
            config
                .label_selector
                .as_deref()
                .map(|s| ListParams::default().labels(s)),
        ),
        (
            "kube.field_selector",
            config
                .field_selector
                .as_deref()
                .map(|s| ListParams::default().fields(s)),
        ),
    ] {
        let Some(params) = params else { continue };
        let selector = params
            .label_selector
            .clone()
            .or_else(|| params.field_selector.clone())
            .unwrap_or_default();
        match api.list_metadata(&params.limit(1)).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 400 => {
                return Err(Setup::Config(invalid(key, &selector, status.message)));
            }
            Err(error) => return Err(Setup::Unreachable(error.to_string())),
        }
    }
    let store = Store::new(&config.checkpoint, client);
    let checkpoint = store.load().await.map_err(|reason| {
        if matches!(config.checkpoint, CheckpointStore::File(_))
            || reason.starts_with("not a checkpoint")
        {
            Setup::Config(invalid("kube.checkpoint", &store.describe(), reason))
        } else {
            Setup::Unreachable(format!("reading the checkpoint: {reason}"))
        }
    })?;
    Ok(Ready {
        resource,
        api,
        store,
        checkpoint,
    })
}

/// The steps of the watch: from `resume_from` when there is one, then (when
/// that ends, fails or expired) kube-runtime's watcher, which lists first.
fn steps(
    api: Api<DynamicObject>,
    config: &KubeTriggerConfig,
    resume_from: Option<String>,
) -> BoxStream<'static, Step> {
    let mut watch_config = watcher::Config::default();
    if let Some(labels) = &config.label_selector {
        watch_config = watch_config.labels(labels);
    }
    if let Some(fields) = &config.field_selector {
        watch_config = watch_config.fields(fields);
    }
    let listed = watcher(api.clone(), watch_config).map(|event| match event {
        Ok(watcher::Event::Init) => Step::ListStarted,
        Ok(watcher::Event::InitApply(object) | watcher::Event::Apply(object)) => {
            Step::Applied(object)
        }
        Ok(watcher::Event::InitDone) => Step::ListDone,
        Ok(watcher::Event::Delete(object)) => Step::Deleted(object),
        Err(error) => Step::Failed(error.to_string()),
    });
    let Some(from) = resume_from else {
        return listed.boxed();
    };
    let mut params = WatchParams::default().timeout(290);
    if let Some(labels) = &config.label_selector {
        params = params.labels(labels);
    }
    if let Some(fields) = &config.field_selector {
        params = params.fields(fields);
    }
    let resumed = stream::once(async move { api.watch(&params, &from).await })
        .flat_map(|started| match started {
            Ok(events) => events
                .map(|event| match event {
                    Ok(WatchEvent::Added(object) | WatchEvent::Modified(object)) => {
                        Step::Applied(object)
                    }
                    Ok(WatchEvent::Deleted(object)) => Step::Deleted(object),
                    Ok(WatchEvent::Bookmark(bookmark)) => {
                        Step::Bookmark(bookmark.metadata.resource_version)
                    }
                    Ok(WatchEvent::Error(status)) if status.code == 410 => Step::Expired,
                    Ok(WatchEvent::Error(status)) => Step::ResumeFailed(status.message),
                    Err(error) => Step::ResumeFailed(error.to_string()),
                })
                .left_stream(),
            Err(kube::Error::Api(status)) if status.code == 410 => {
                stream::iter([Step::Expired]).right_stream()
            }
            Err(error) => stream::iter([Step::ResumeFailed(error.to_string())]).right_stream(),
        })
        .scan(false, |ended, step| {
            if *ended {
                return future::ready(None);
            }
            *ended = matches!(step, Step::Expired | Step::ResumeFailed(_));
            future::ready(Some(step))
        });
    resumed.chain(listed).boxed()
}

/// What every call shares.
struct Running {
    function: String,
    resource: ApiResource,
    changes: Vec<ChangeKind>,
    invoker: Arc<dyn Invoker>,
    max_in_flight: usize,
}

/// Reads the watch, runs the calls, records what was handled, until
/// `shutdown`; then lets the calls running finish and saves the checkpoint.
async fn run_loop(
    running: &Running,
    mut ledger: Ledger,
    store: &Store,
    steps: BoxStream<'static, Step>,
    reconnect: &mut Reconnect,
    shutdown: &CancellationToken,
) -> Result<()> {
    let mut steps = pin!(steps);
    let tracker = TaskTracker::new();
    let (done_sender, mut done) = mpsc::unbounded_channel::<(Queued, Settlement)>();
    let mut delayed: DelayQueue<Queued> = DelayQueue::new();
    let mut in_flight = 0_usize;
    let mut paused_until: Option<Instant> = None;
    let mut save_interval = match store {
        Store::ConfigMap { .. } => CONFIG_MAP_SAVE_INTERVAL,
        _ => Duration::ZERO,
    };
    let mut last_save = Instant::now();
    let call = |queued: Queued| {
        let invocation = invocation_of(
            &queued.change,
            &running.resource,
            &running.function,
            queued.attempt,
        );
        let invoker = Arc::clone(&running.invoker);
        let function = running.function.clone();
        let done = done_sender.clone();
        tracker.spawn(async move {
            let metadata = &queued.change.object.metadata;
            let attributes = [
                ("uid", queued.change.uid.as_str()),
                ("change", queued.change.kind.as_str()),
                ("namespace", metadata.namespace.as_deref().unwrap_or("")),
                ("name", metadata.name.as_deref().unwrap_or("")),
                ("resourceVersion", queued.change.resource_version()),
            ];
            let delivery = deliver_once(
                &*invoker,
                &function,
                invocation,
                DeadLetterRoute::new(None, &attributes),
            )
            .await;
            let settlement = delivery.settlement();
            let _ = done.send((queued, settlement));
        });
    };
    loop {
        while in_flight < running.max_in_flight {
            let Some(queued) = ledger.start() else { break };
            if running.changes.contains(&queued.change.kind) {
                in_flight += 1;
                call(queued);
            } else {
                ledger.handled(&queued);
            }
        }
        if ledger.is_dirty() && last_save.elapsed() >= save_interval {
            if !save(store, &mut ledger).await {
                // Try again a little later, not at once.
                save_interval = save_interval.max(Duration::from_secs(1));
            }
            last_save = Instant::now();
        }
        let reading = ledger.pending() < MAX_BUFFERED && paused_until.is_none();
        let save_due = ledger.is_dirty().then(|| last_save + save_interval);
        tokio::select! {
            () = shutdown.cancelled() => break,
            Some((queued, settlement)) = done.recv() => {
                in_flight -= 1;
                match settlement {
                    Settlement::Nack { delay } => {
                        delayed.insert(queued, delay);
                    }
                    _ => ledger.handled(&queued),
                }
            }
            Some(expired) = delayed.next(), if !delayed.is_empty() => {
                let mut queued = expired.into_inner();
                queued.attempt = queued.attempt.saturating_add(1);
                in_flight += 1;
                call(queued);
            }
            () = tokio::time::sleep_until(paused_until.unwrap_or_else(Instant::now)), if paused_until.is_some() => {
                paused_until = None;
            }
            () = tokio::time::sleep_until(save_due.unwrap_or_else(Instant::now)), if save_due.is_some() => {}
            step = steps.next(), if reading => {
                let Some(step) = step else { break };
                match step {
                    Step::Failed(reason) => {
                        paused_until = Some(Instant::now() + reconnect.failed_now(&reason));
                        continue;
                    }
                    Step::Expired => {
                        tracing::info!(function = %running.function, "the checkpoint's resourceVersion expired (410 Gone); listing instead");
                    }
                    Step::ResumeFailed(reason) => {
                        tracing::warn!(function = %running.function, %reason, "watching from the checkpoint failed; listing instead");
                    }
                    Step::ListStarted => ledger.list_started(),
                    Step::Applied(object) => ledger.applied(object),
                    Step::Deleted(object) => ledger.deleted(object),
                    Step::ListDone => ledger.list_done(),
                    Step::Bookmark(version) => ledger.bookmark(version),
                }
                reconnect.connected();
            }
        }
    }
    // Let the calls running finish and record them; waiting redeliveries
    // stay unhandled, so the next start delivers them again.
    drop(done_sender);
    tracker.close();
    while let Some((queued, settlement)) = done.recv().await {
        if settlement.removes_message() {
            ledger.handled(&queued);
        }
    }
    tracker.wait().await;
    if ledger.is_dirty() && !save(store, &mut ledger).await {
        tracing::warn!(store = %store.describe(), "stopped without storing the last changes handled; they are delivered again at the next start");
    }
    Ok(())
}

/// Stores the checkpoint; a failure is logged (a restart then delivers the
/// changes since the last stored one again, which at-least-once allows).
async fn save(store: &Store, ledger: &mut Ledger) -> bool {
    match store.save(ledger.checkpoint()).await {
        Ok(()) => {
            ledger.saved();
            true
        }
        Err(error) => {
            tracing::warn!(store = %store.describe(), %error, "could not store the checkpoint; trying again later");
            false
        }
    }
}

#[async_trait]
impl Trigger for KubeTrigger {
    fn name(&self) -> &str {
        "kube"
    }

    async fn run(
        self: Box<Self>,
        dispatcher: Dispatcher,
        shutdown: CancellationToken,
    ) -> Result<(), faas_core::Error> {
        (*self)
            .run_trigger(dispatcher, shutdown)
            .await
            .map_err(|error| faas_core::Error::trigger("kube", error))
    }
}
