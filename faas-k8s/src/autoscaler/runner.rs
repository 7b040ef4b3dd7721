//! [`Autoscaler`]: the loop that feeds each function's [`Decider`] with the
//! gateway's counts and the event sources' lag, and writes the decisions to
//! the scale subresource.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use faas_core::trigger::{Lag, LagSource};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DynamicObject, Patch, PatchParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::decider::{Decider, Observation};
use super::metrics::TrafficMetrics;
use super::policy::ScalingPolicy;
use super::target::{POD_DELETION_COST, ScaleTarget, desired_replicas, policy_from_spec};
use crate::error::Result;
use crate::gateway::{FunctionKey, FunctionLoad, RoutingTable};

/// How the autoscaler runs.
///
/// | setting | default | meaning |
/// |---|---|---|
/// | [`tick`](AutoscalerConfigBuilder::tick) | 1 s | how often every function is decided |
/// | [`target`](AutoscalerConfigBuilder::target) | [`ScaleTarget::Function`] | what is scaled |
/// | [`default_policy`](AutoscalerConfigBuilder::default_policy) | [`ScalingPolicy::default`] | the policy a function does not override |
/// | [`namespace`](AutoscalerConfigBuilder::namespace) | all | scale only functions of one namespace |
/// | [`selector`](AutoscalerConfigBuilder::selector) | none | a label selector on the targets |
///
/// ```
/// use std::time::Duration;
/// use faas_k8s::autoscaler::{AutoscalerConfig, ScaleTarget};
///
/// let config = AutoscalerConfig::builder()
///     .tick(Duration::from_millis(500))
///     .target(ScaleTarget::Deployment)
///     .build();
/// assert_eq!(config.tick(), Duration::from_millis(500));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AutoscalerConfig {
    tick: Duration,
    target: ScaleTarget,
    default_policy: ScalingPolicy,
    namespace: Option<String>,
    selector: Option<String>,
}

impl Default for AutoscalerConfig {
    fn default() -> Self {
        AutoscalerConfig {
            tick: Duration::from_secs(1),
            target: ScaleTarget::Function,
            default_policy: ScalingPolicy::default(),
            namespace: None,
            selector: None,
        }
    }
}

impl AutoscalerConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> AutoscalerConfigBuilder {
        AutoscalerConfigBuilder {
            config: AutoscalerConfig::default(),
        }
    }

    /// How often every function is decided.
    pub fn tick(&self) -> Duration {
        self.tick
    }

    /// What is scaled.
    pub fn target(&self) -> &ScaleTarget {
        &self.target
    }

    /// The policy a function does not override.
    pub fn default_policy(&self) -> &ScalingPolicy {
        &self.default_policy
    }

    /// The one namespace scaled, if not all.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// The label selector on the targets, if any.
    pub fn selector(&self) -> Option<&str> {
        self.selector.as_deref()
    }
}

/// Builds an [`AutoscalerConfig`].
#[derive(Debug, Clone)]
#[must_use]
pub struct AutoscalerConfigBuilder {
    config: AutoscalerConfig,
}

impl AutoscalerConfigBuilder {
    /// Sets how often every function is decided (at least 10 ms).
    pub fn tick(mut self, tick: Duration) -> Self {
        self.config.tick = tick.max(Duration::from_millis(10));
        self
    }

    /// Sets what is scaled.
    pub fn target(mut self, target: ScaleTarget) -> Self {
        self.config.target = target;
        self
    }

    /// Sets the policy a function does not override.
    pub fn default_policy(mut self, policy: ScalingPolicy) -> Self {
        self.config.default_policy = policy;
        self
    }

    /// Scales only functions of `namespace`.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.config.namespace = Some(namespace.into());
        self
    }

    /// Scales only targets matching the label `selector`.
    pub fn selector(mut self, selector: impl Into<String>) -> Self {
        self.config.selector = Some(selector.into());
        self
    }

    /// The configuration.
    pub fn build(self) -> AutoscalerConfig {
        self.config
    }
}

/// What the autoscaler keeps per function between passes.
struct Scaled {
    decider: Decider,
    /// The last lag of each source (kept when a source cannot be asked).
    lags: Vec<Lag>,
    /// The deletion cost last written per pod.
    costs: HashMap<String, u64>,
    /// Whether an invalid `spec.scaling` was already reported.
    reported_invalid: bool,
}

/// The autoscaler: decides every function on each tick (and at once when the
/// gateway holds a call at zero) and writes the scale subresource.
///
/// It reads the in-flight and held counts of the gateway's [`RoutingTable`]
/// (so it runs in the gateway's process), polls any number of [`LagSource`]s
/// per function, and, before scaling in, sets
/// `controller.kubernetes.io/pod-deletion-cost` on each ready pod to its calls
/// in flight so the least busy pods go first.
///
/// ```no_run
/// use faas_k8s::autoscaler::{Autoscaler, AutoscalerConfig};
/// use faas_k8s::gateway::{Gateway, GatewayConfig};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let client = kube::Client::try_default().await?;
/// let gateway = Gateway::builder(GatewayConfig::default()).discover(client.clone()).build();
/// let autoscaler = Autoscaler::new(client, AutoscalerConfig::default(), gateway.routing_table())
///     .with_metrics(gateway.metrics());
/// tokio::spawn(autoscaler.run());
/// gateway.serve(tokio::net::TcpListener::bind("127.0.0.1:8080").await?).await?;
/// # Ok(())
/// # }
/// ```
pub struct Autoscaler {
    client: Client,
    config: AutoscalerConfig,
    table: Arc<RoutingTable>,
    metrics: TrafficMetrics,
    lag_sources: Vec<(FunctionKey, Arc<dyn LagSource>)>,
    shutdown: CancellationToken,
}

impl std::fmt::Debug for Autoscaler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Autoscaler")
            .field("config", &self.config)
            .field("lag_sources", &self.lag_sources.len())
            .finish_non_exhaustive()
    }
}

impl Autoscaler {
    /// An autoscaler over the counts of `table`.
    pub fn new(client: Client, config: AutoscalerConfig, table: Arc<RoutingTable>) -> Self {
        Autoscaler {
            client,
            config,
            table,
            metrics: TrafficMetrics::new(),
            lag_sources: Vec::new(),
            shutdown: CancellationToken::new(),
        }
    }

    /// Records decisions into `metrics` (share the gateway's so `/metrics` shows them).
    #[must_use]
    pub fn with_metrics(mut self, metrics: TrafficMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Adds an event source whose lag scales `function`.
    #[must_use]
    pub fn with_lag_source(mut self, function: FunctionKey, source: Arc<dyn LagSource>) -> Self {
        self.lag_sources.push((function, source));
        self
    }

    /// Cancel it to stop [`run`](Self::run).
    pub fn shutdown_handle(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Runs until shut down.
    ///
    /// # Errors
    ///
    /// None today: API errors are logged and retried on the next pass.
    pub async fn run(self) -> Result<()> {
        let resource = self.config.target.api_resource();
        let api: Api<DynamicObject> = match self.config.namespace() {
            Some(namespace) => Api::namespaced_with(self.client.clone(), namespace, &resource),
            None => Api::all_with(self.client.clone(), &resource),
        };
        let mut watch_config = watcher::Config::default();
        if let Some(selector) = self.config.selector() {
            watch_config = watch_config.labels(selector);
        }
        let writer = reflector::store::Writer::new(resource.clone());
        let store = writer.as_reader();
        let reflect = watcher::watcher(api, watch_config)
            .default_backoff()
            .reflect(writer)
            .for_each(|event| async move {
                if let Err(error) = event {
                    tracing::warn!(%error, "watching scale targets failed; retrying");
                }
            });
        let mut reflect = std::pin::pin!(reflect);
        let mut ticks = tokio::time::interval(self.config.tick);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut wakes = self.table.wakes();
        let mut scaled: HashMap<FunctionKey, Scaled> = HashMap::new();
        loop {
            let waking = tokio::select! {
                () = self.shutdown.cancelled() => return Ok(()),
                () = &mut reflect => return Ok(()),
                _ = ticks.tick() => false,
                changed = wakes.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    true
                }
            };
            if !waking {
                self.poll_lags(&mut scaled).await;
            }
            self.pass(&store, &mut scaled, waking).await;
        }
    }

    /// Asks every lag source, each within one tick; a source that fails keeps its last lag.
    async fn poll_lags(&self, scaled: &mut HashMap<FunctionKey, Scaled>) {
        let polls = self.lag_sources.iter().map(|(key, source)| async move {
            let lag = tokio::time::timeout(self.config.tick, source.lag()).await;
            (key, lag)
        });
        let results = futures::future::join_all(polls).await;
        let mut fresh: HashMap<&FunctionKey, Vec<Option<Lag>>> = HashMap::new();
        for (key, result) in results {
            let lag = match result {
                Ok(Ok(lag)) => Some(lag),
                Ok(Err(error)) => {
                    tracing::warn!(function = %key, %error, "a lag source failed; keeping its last lag");
                    None
                }
                Err(_) => {
                    tracing::warn!(function = %key, "a lag source did not answer within a tick");
                    None
                }
            };
            fresh.entry(key).or_default().push(lag);
        }
        for (key, lags) in fresh {
            if let Some(state) = scaled.get_mut(key) {
                let mut kept = std::mem::take(&mut state.lags);
                kept.resize(lags.len(), Lag::IDLE);
                state.lags = lags
                    .into_iter()
                    .zip(kept)
                    .map(|(new, old)| new.unwrap_or(old))
                    .collect();
            }
        }
    }

    /// Decides every target (with `waking`, only those with calls held at zero).
    async fn pass(
        &self,
        store: &Store<DynamicObject>,
        scaled: &mut HashMap<FunctionKey, Scaled>,
        waking: bool,
    ) {
        let now = Instant::now();
        let objects = store.state();
        // Every decision of the pass is written at once: functions woken together wait for one
        // round trip to the API server, not one each in turn.
        let mut writes = Vec::new();
        if !waking {
            scaled.retain(|key, _| {
                objects.iter().any(|o| {
                    o.namespace().as_deref() == Some(key.namespace()) && o.name_any() == key.name()
                })
            });
        }
        for object in objects {
            let Some(namespace) = object.namespace() else {
                continue;
            };
            let key = FunctionKey::new(namespace, object.name_any());
            let load = self.table.load_of(&key);
            if waking && !(load.held > 0 && load.ready == 0) {
                continue;
            }
            let policy = self.policy_of(&object, &key, scaled);
            let state = scaled.entry(key.clone()).or_insert_with(|| Scaled {
                decider: Decider::new(policy.clone()),
                lags: Vec::new(),
                costs: HashMap::new(),
                reported_invalid: false,
            });
            if state.decider.policy() != &policy {
                state.decider.set_policy(policy);
            }
            let current = desired_replicas(&object);
            let mut observation = Observation::new(load.in_flight, load.ready).with_held(load.held);
            if let Some(current) = current {
                observation = observation.with_desired(current);
            }
            for lag in &state.lags {
                observation = observation.with_lag(*lag);
            }
            let decision = state.decider.decide(now, &observation);
            let function = key.to_string();
            self.metrics
                .decision(&function, decision.replicas, decision.reason);
            let current = desired_replicas(&object);
            if current == Some(decision.replicas) {
                continue;
            }
            tracing::info!(
                %function,
                from = ?current,
                to = decision.replicas,
                reason = %decision.reason,
                in_flight = load.in_flight,
                held = load.held,
                ready = load.ready,
                "scaling"
            );
            if current.is_some_and(|current| decision.replicas < current) {
                // Before the scale-in is written, so the least busy pods go first.
                self.set_deletion_costs(&key, &load, &mut state.costs).await;
            }
            writes.push(self.write_scale(key, decision.replicas));
        }
        futures::future::join_all(writes).await;
    }

    /// Writes `replicas` to the scale subresource of `key`, logging a failure (the next pass
    /// decides again).
    async fn write_scale(&self, key: FunctionKey, replicas: u32) {
        if let Err(error) = self
            .config
            .target
            .write(self.client.clone(), &key, replicas)
            .await
        {
            tracing::warn!(function = %key, error = %error_chain(&error), "writing the scale failed; retrying next pass");
        }
    }

    /// The policy of one target: a Function's `spec.scaling`, else the default.
    fn policy_of(
        &self,
        object: &DynamicObject,
        key: &FunctionKey,
        scaled: &mut HashMap<FunctionKey, Scaled>,
    ) -> ScalingPolicy {
        let defaults = self.config.default_policy();
        if self.config.target != ScaleTarget::Function {
            return defaults.clone();
        }
        match policy_from_spec(object.data.pointer("/spec/scaling"), defaults) {
            Ok(policy) => policy,
            Err(error) => {
                if let Some(state) = scaled.get_mut(key)
                    && !state.reported_invalid
                {
                    state.reported_invalid = true;
                    tracing::warn!(function = %key, %error, "invalid spec.scaling; using the default policy");
                }
                defaults.clone()
            }
        }
    }

    /// Sets each ready pod's deletion cost to its calls in flight, so a scale-in
    /// removes the least busy pods first.
    async fn set_deletion_costs(
        &self,
        key: &FunctionKey,
        load: &FunctionLoad,
        costs: &mut HashMap<String, u64>,
    ) {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), key.namespace());
        costs.retain(|pod, _| load.pods.iter().any(|(name, _)| name == pod));
        for (pod, in_flight) in &load.pods {
            if costs.get(pod) == Some(in_flight) {
                continue;
            }
            let patch =
                json!({"metadata": {"annotations": {POD_DELETION_COST: in_flight.to_string()}}});
            match pods
                .patch(pod, &PatchParams::default(), &Patch::Merge(patch))
                .await
            {
                Ok(_) => {
                    costs.insert(pod.clone(), *in_flight);
                }
                Err(error) => {
                    tracing::debug!(function = %key, %pod, %error, "setting the pod deletion cost failed");
                }
            }
        }
    }
}

/// An error and its sources, joined.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
