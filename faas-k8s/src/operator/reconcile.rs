//! One reconcile of one `Function`: look up its Secrets, create its Deployment and Service when
//! they do not exist and apply them when they do not say what the Function says, judge its
//! readiness and write its status when that changed. A steady Function causes no write at all.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Secret, Service};
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Resource, ResourceExt as _};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use super::applied::AppliedObjects;
use super::backoff::RetryBackoff;
use super::config::OperatorConfig;
use super::detached::{CreateState, DetachedCreates};
use super::drift::{Drift, drift};
use super::ownership;
use super::progress::ProgressClock;
use super::readiness::{self, Observed};
use super::resources;
use super::stats::OperatorStats;
use crate::error::{Error, Result};
use crate::function::{FUNCTION_LABEL, Function, FunctionStatus, ReadyReason};

/// A write refused for lack of permission: the generation it was for, when, and the message.
pub(crate) type Refusal = (i64, Instant, String);

/// What every reconcile shares.
pub(crate) struct Context {
    pub(crate) client: kube::Client,
    pub(crate) config: OperatorConfig,
    pub(crate) deployments: Store<Deployment>,
    pub(crate) services: Store<Service>,
    /// Deployments applied that the cache may not show yet.
    pub(crate) applied_deployments: AppliedObjects<Deployment>,
    /// Services applied that the cache may not show yet.
    pub(crate) applied_services: AppliedObjects<Service>,
    /// Service creates running apart from the reconcile that started them.
    pub(crate) service_creates: DetachedCreates,
    /// Functions as their last status write returned them, while the cache may not show it.
    pub(crate) written_functions: AppliedObjects<Function>,
    pub(crate) pods: Store<Pod>,
    pub(crate) recorder: Recorder,
    pub(crate) stats: Arc<OperatorStats>,
    /// The back-off of each failing Function.
    pub(crate) backoff: RetryBackoff,
    /// When each progressing Function last moved, to write its `Progressing` status only once
    /// it stalls.
    pub(crate) progress: ProgressClock,
    /// Writes refused for lack of permission, per (uid, kind): the generation and when, so the
    /// same write is not tried again on every event before `forbidden_retry` has passed.
    pub(crate) refused: Mutex<HashMap<(String, &'static str), Refusal>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How soon a Function whose Service create is in flight is reconciled again at the latest.
const SERVICE_CREATE_CHECK: Duration = Duration::from_secs(2);

/// What applying one object came to.
enum Applied {
    /// The live object already said it: nothing written.
    Unchanged,
    /// Written; `true` when it existed before (drift or a spec change healed).
    Written { existed: bool },
    /// Refused by the API server with a reason to report.
    Refused(ReadyReason, String),
}

impl Context {
    /// Writes `desired` unless `live` (the newer of the cache and the last write's answer)
    /// already says it: a create when there is no live object, else a server-side apply. The
    /// API server's answer is kept in `applied` until the cache has it.
    async fn apply<K>(
        &self,
        function: &Function,
        live: Option<Arc<K>>,
        applied: &AppliedObjects<K>,
        desired: &K,
        kind: &'static str,
    ) -> Result<Applied>
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + Serialize
            + DeserializeOwned
            + std::fmt::Debug,
    {
        let Some(why) = drift(live.as_deref(), desired) else {
            return Ok(Applied::Unchanged);
        };
        let namespace = function.namespace().unwrap_or_default();
        let name = function.name_any();
        let refusal_key = (function.uid().unwrap_or_default(), kind);
        let generation = function.metadata.generation.unwrap_or(0);
        if let Some((refused_generation, at, message)) = lock(&self.refused).get(&refusal_key)
            && *refused_generation == generation
            && at.elapsed() < self.config.forbidden_retry
        {
            return Ok(Applied::Refused(ReadyReason::Forbidden, message.clone()));
        }
        let api: Api<K> = Api::namespaced(self.client.clone(), &namespace);
        self.stats.object_writes.fetch_add(1, Ordering::Relaxed);
        let written = match &why {
            Drift::Missing => {
                self.stats.creates.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%namespace, %name, kind, "creating: not seen yet");
                let params = PostParams {
                    field_manager: Some(self.config.field_manager.clone()),
                    ..PostParams::default()
                };
                match api.create(&params, desired).await {
                    // There after all (the cache had not caught up, or the operator just
                    // started): correct it as drift.
                    Err(kube::Error::Api(status)) if status.code == 409 => {
                        tracing::debug!(%namespace, %name, kind, "exists already: applying");
                        self.apply_over(&api, &name, None, desired).await
                    }
                    created => created,
                }
            }
            Drift::Differs(path) => {
                self.stats.corrections.fetch_add(1, Ordering::Relaxed);
                let version = live
                    .as_ref()
                    .and_then(|live| live.meta().resource_version.clone());
                tracing::debug!(
                    %namespace, %name, kind, differs_at = %path, ?version,
                    "applying: the live object differs"
                );
                self.apply_over(&api, &name, live.as_deref(), desired).await
            }
        };
        match written {
            Ok(object) => {
                applied.remember(object);
                lock(&self.refused).remove(&refusal_key);
                Ok(Applied::Written {
                    existed: live.is_some(),
                })
            }
            Err(kube::Error::Api(status)) if status.code == 403 => {
                self.stats.forbidden.fetch_add(1, Ordering::Relaxed);
                let message = format!(
                    "the operator may not write {kind} {namespace}/{name}: {}; grant it the \
                     ClusterRole from `faas-operator rbac`",
                    status.message
                );
                lock(&self.refused)
                    .insert(refusal_key, (generation, Instant::now(), message.clone()));
                Ok(Applied::Refused(ReadyReason::Forbidden, message))
            }
            Err(kube::Error::Api(status)) if status.code == 422 => Ok(Applied::Refused(
                ReadyReason::InvalidSpec,
                format!("the API server refused {kind} {name}: {}", status.message),
            )),
            Err(e) => Err(Error::kube(
                format!("applying {kind} {namespace}/{name}"),
                e,
            )),
        }
    }

    /// Applies `desired` over the object `name` under the operator's field manager; first makes
    /// the fields the operator's create recorded its applied fields (see
    /// [`ownership`](super::ownership)) when `live` shows such fields, or is not known.
    async fn apply_over<K>(
        &self,
        api: &Api<K>,
        name: &str,
        live: Option<&K>,
        desired: &K,
    ) -> kube::Result<K>
    where
        K: Resource<DynamicType = ()> + Clone + Serialize + DeserializeOwned + std::fmt::Debug,
    {
        let manager = &self.config.field_manager;
        if live.is_none_or(|live| ownership::has_created_fields(live, manager)) {
            self.take_over_created_fields(api, name).await?;
        }
        let params = PatchParams::apply(manager).force();
        api.patch(name, &params, &Patch::Apply(desired)).await
    }

    /// Turns the field manager's update entry of object `name` into its apply entry, when it
    /// has one; the patch fails with a conflict if the object changed since it was read.
    async fn take_over_created_fields<K>(&self, api: &Api<K>, name: &str) -> kube::Result<()>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
    {
        let manager = &self.config.field_manager;
        let Some(current) = api.get_opt(name).await? else {
            return Ok(());
        };
        let entries = current.meta().managed_fields.as_deref().unwrap_or_default();
        let Some(entries) = ownership::as_applied(entries, manager) else {
            return Ok(());
        };
        self.stats.ownership_moves.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            name,
            "making the fields the operator created its applied fields"
        );
        let patch = serde_json::json!({
            "metadata": {
                "resourceVersion": current.meta().resource_version,
                "managedFields": entries,
            }
        });
        let params = PatchParams {
            field_manager: Some(manager.clone()),
            ..PatchParams::default()
        };
        api.patch(name, &params, &Patch::Merge(&patch)).await?;
        Ok(())
    }

    /// Whether a write of `kind` for `function` was refused for lack of permission at its
    /// current generation, recently enough that it is not tried again yet.
    fn refused_before(&self, function: &Function, kind: &'static str) -> bool {
        let key = (function.uid().unwrap_or_default(), kind);
        lock(&self.refused)
            .get(&key)
            .is_some_and(|(generation, at, _)| {
                *generation == function.metadata.generation.unwrap_or(0)
                    && at.elapsed() < self.config.forbidden_retry
            })
    }

    /// The Secrets `function` needs that do not exist, or a refusal to look them up.
    async fn missing_secrets(
        &self,
        function: &Function,
    ) -> Result<std::result::Result<Vec<String>, String>> {
        let namespace = function.namespace().unwrap_or_default();
        let spec = &function.spec;
        let mut needed: Vec<&str> = spec.secrets.iter().map(String::as_str).collect();
        needed.extend(spec.env_from.iter().filter_map(|source| {
            let secret = source.secret_ref.as_ref()?;
            (secret.optional != Some(true)).then_some(secret.name.as_str())
        }));
        needed.extend(spec.env.iter().filter_map(|var| {
            let key = var.value_from.as_ref()?.secret_key_ref.as_ref()?;
            (key.optional != Some(true)).then_some(key.name.as_str())
        }));
        needed.sort_unstable();
        needed.dedup();
        let api: Api<Secret> = Api::namespaced(self.client.clone(), &namespace);
        let mut missing = Vec::new();
        for name in needed {
            match api.get_metadata_opt(name).await {
                Ok(Some(_)) => {}
                Ok(None) => missing.push(name.to_owned()),
                Err(kube::Error::Api(status)) if status.code == 403 => {
                    self.stats.forbidden.fetch_add(1, Ordering::Relaxed);
                    return Ok(Err(format!(
                        "the operator may not read Secret {namespace}/{name}: {}",
                        status.message
                    )));
                }
                Err(e) => return Err(Error::kube(format!("looking up Secret {name}"), e)),
            }
        }
        Ok(Ok(missing))
    }

    async fn publish(&self, function: &Function, type_: EventType, reason: &str, note: String) {
        let event = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(note),
            action: "Reconcile".to_owned(),
            secondary: None,
        };
        if let Err(e) = self
            .recorder
            .publish(&event, &function.object_ref(&()))
            .await
        {
            tracing::debug!(error = %e, "recording an Event failed");
        }
    }
}

/// Reconciles one Function; see the [module](self) documentation.
pub(crate) async fn reconcile(function: Arc<Function>, ctx: Arc<Context>) -> Result<Action> {
    ctx.stats.reconciles.fetch_add(1, Ordering::Relaxed);
    let start = Instant::now();
    let result = reconcile_function(function, &ctx).await;
    ctx.stats.record_reconcile(start.elapsed());
    result
}

async fn reconcile_function(function: Arc<Function>, shared: &Arc<Context>) -> Result<Action> {
    let ctx = shared.as_ref();
    let namespace = function.namespace().unwrap_or_default();
    let name = function.name_any();
    if function.metadata.deletion_timestamp.is_some() {
        // Owner references let the garbage collector remove the Deployment and Service.
        ctx.progress.forget(&function);
        ctx.applied_deployments
            .forget(&ObjectRef::new(&name).within(&namespace));
        ctx.applied_services
            .forget(&ObjectRef::new(&name).within(&namespace));
        ctx.service_creates
            .forget(&ObjectRef::new(&name).within(&namespace));
        ctx.written_functions
            .forget(&ObjectRef::from_obj(function.as_ref()));
        ctx.backoff.succeeded(&function);
        return Ok(Action::await_change());
    }
    if let Some(wait) = ctx.backoff.remaining(&function) {
        // Woken by an event while backing off from a failure: retry when the back-off ends.
        ctx.stats.held_back.fetch_add(1, Ordering::Relaxed);
        return Ok(Action::requeue(wait));
    }
    // The status this operator wrote last, even when the cache has not delivered it yet: a
    // reconcile woken meanwhile (by a pod, say) must not write the same status again.
    let function = ctx
        .written_functions
        .freshest(
            &ObjectRef::from_obj(function.as_ref()),
            Some(function.clone()),
        )
        .unwrap_or(function);

    let mut observed = Observed::default();
    match ctx.missing_secrets(&function).await? {
        Ok(missing) => observed.missing_secrets = missing,
        Err(refusal) => observed.refused = Some((ReadyReason::Forbidden, refusal)),
    }

    let deployment_ref = ObjectRef::new(&name).within(&namespace);
    let live_deployment = ctx
        .applied_deployments
        .freshest(&deployment_ref, ctx.deployments.get(&deployment_ref));
    let service_ref = ObjectRef::new(&name).within(&namespace);
    let live_service = ctx
        .applied_services
        .freshest(&service_ref, ctx.services.get(&service_ref));
    let desired_deployment = resources::deployment(&function);
    let desired_service = resources::service(&function);
    let desired_service_now = desired_service.clone();
    // A missing Service is created apart from this reconcile (see `detached`); one in flight
    // is not written again.
    let mut service_in_flight = false;
    let service_write = match ctx.service_creates.take(&service_ref) {
        Some(CreateState::InFlight) => {
            // The watch can show the created Service before its create has
            // answered: the reconcile it wakes then finds the Service there.
            service_in_flight = live_service.is_none();
            None
        }
        Some(CreateState::Failed) => Some(live_service),
        None if live_service.is_none() && !ctx.refused_before(&function, "Service") => {
            service_in_flight = true;
            ctx.service_creates.started(service_ref.clone());
            let shared = shared.clone();
            let function = function.clone();
            tokio::spawn(async move {
                let created = shared
                    .apply(
                        &function,
                        None,
                        &shared.applied_services,
                        &desired_service,
                        "Service",
                    )
                    .await;
                let succeeded = matches!(created, Ok(Applied::Written { .. } | Applied::Unchanged));
                if let Err(e) = &created {
                    // A refusal is not a failure: the next reconcile reports it as a condition.
                    shared.stats.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(error = %crate::error::ErrorChain(e), "the Service create");
                }
                if !succeeded {
                    tracing::warn!(
                        function = %function.name_any(),
                        namespace = ?function.namespace(),
                        "creating the Service failed: the next reconcile tries again"
                    );
                }
                shared.service_creates.finished(
                    &ObjectRef::new(&function.name_any())
                        .within(&function.namespace().unwrap_or_default()),
                    succeeded,
                );
            });
            None
        }
        None => Some(live_service),
    };
    // The two objects do not depend on each other: one round trip for both.
    // Both run to the end even when one fails, so the other's answer is kept.
    let (deployment_applied, service_applied) = futures::join!(
        ctx.apply(
            &function,
            live_deployment.clone(),
            &ctx.applied_deployments,
            &desired_deployment,
            "Deployment",
        ),
        async {
            match service_write {
                Some(live_service) => {
                    ctx.apply(
                        &function,
                        live_service,
                        &ctx.applied_services,
                        &desired_service_now,
                        "Service",
                    )
                    .await
                }
                None => Ok(Applied::Unchanged),
            }
        },
    );
    let (deployment_applied, service_applied) = (deployment_applied?, service_applied?);
    let mut healed = Vec::new();
    let mut wrote = false;
    for (kind, applied) in [
        ("Deployment", deployment_applied),
        ("Service", service_applied),
    ] {
        match applied {
            Applied::Unchanged => {}
            Applied::Written { existed } => {
                wrote = true;
                if existed {
                    healed.push(kind);
                }
            }
            Applied::Refused(reason, message) => {
                if observed.refused.is_none() {
                    observed.refused = Some((reason, message));
                }
            }
        }
    }
    if !healed.is_empty() {
        ctx.publish(
            &function,
            EventType::Normal,
            "Applied",
            format!(
                "{} brought back to what the Function says",
                healed.join(" and ")
            ),
        )
        .await;
    }

    let pods: Vec<Arc<Pod>> = ctx
        .pods
        .state()
        .into_iter()
        .filter(|pod| {
            pod.metadata.namespace.as_deref() == Some(namespace.as_str())
                && pod.labels().get(FUNCTION_LABEL) == Some(&name)
        })
        .collect();
    observed.pods = pods.iter().map(AsRef::as_ref).collect();
    observed.deployment = live_deployment.as_deref();
    observed.service_missing = service_in_flight;

    let status = readiness::status(&function, &observed);
    let reason = readiness::judge(&function, &observed).0;
    let previous = function.status.as_ref();
    let mut requeue = match reason {
        ReadyReason::Ready | ReadyReason::ScaledToZero => ctx.config.resync,
        ReadyReason::Forbidden => ctx.config.forbidden_retry,
        ReadyReason::SecretMissing => ctx.config.secret_retry,
        _ => ctx.config.resync.min(Duration::from_secs(30)),
    };
    let wait = if reason == ReadyReason::Progressing {
        ctx.progress
            .wait(&function, &observed, ctx.config.progress_report_delay)
    } else {
        ctx.progress.forget(&function);
        None
    };
    if !readiness::same_status(previous, &status) {
        match wait {
            Some(wait) => requeue = requeue.min(wait),
            None => {
                write_status(ctx, &function, &status).await?;
                wrote = true;
                let before = previous
                    .and_then(FunctionStatus::ready_condition)
                    .map(|condition| condition.reason.clone());
                if reason.is_failure() && before.as_deref() != Some(reason.as_str()) {
                    let note = status
                        .ready_condition()
                        .map(|condition| condition.message.clone())
                        .unwrap_or_default();
                    ctx.publish(&function, EventType::Warning, reason.as_str(), note)
                        .await;
                }
            }
        }
    }
    if !wrote {
        ctx.stats.idle_reconciles.fetch_add(1, Ordering::Relaxed);
    }
    if service_in_flight {
        // A create that fails has no watch event to wake the Function: look again soon.
        requeue = requeue.min(SERVICE_CREATE_CHECK);
    }
    ctx.backoff.succeeded(&function);
    Ok(Action::requeue(requeue))
}

async fn write_status(ctx: &Context, function: &Function, status: &FunctionStatus) -> Result<()> {
    let api: Api<Function> = Api::namespaced(
        ctx.client.clone(),
        &function.namespace().unwrap_or_default(),
    );
    let params = PatchParams {
        field_manager: Some(ctx.config.field_manager.clone()),
        ..PatchParams::default()
    };
    ctx.stats.status_writes.fetch_add(1, Ordering::Relaxed);
    let patch = serde_json::json!({ "status": status });
    match api
        .patch_status(&function.name_any(), &params, &Patch::Merge(&patch))
        .await
    {
        Ok(written) => {
            ctx.written_functions.remember(written);
            Ok(())
        }
        // Deleted meanwhile: nothing to report on.
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(e) => Err(Error::kube(
            format!("writing the status of Function {}", function.name_any()),
            e,
        )),
    }
}

/// A failed reconcile is retried after a delay that doubles per consecutive failure of the same
/// Function, so one broken Function neither spins nor slows the others.
pub(crate) fn error_policy(function: Arc<Function>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.stats.failures.fetch_add(1, Ordering::Relaxed);
    let (failures, delay) = ctx.backoff.failed(&function, &ctx.config);
    tracing::warn!(
        function = %function.name_any(),
        namespace = ?function.namespace(),
        failures,
        retry_in = ?delay,
        error = %crate::error::ErrorChain(error),
        "reconcile failed"
    );
    Action::requeue(delay)
}
