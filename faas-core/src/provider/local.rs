//! [`LocalProvider`]: the [`Provider`] API over an in-process dispatcher.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use futures::StreamExt as _;
use futures::stream::{self, BoxStream};

use super::{
    DEFAULT_NAMESPACE, FunctionDeployment, FunctionRef, FunctionStatus, Provider, ProviderError,
    ProviderResult,
};
use crate::definition::FunctionDefinition;
use crate::error::{Error, ErrorKind, FunctionError, Result};
use crate::invocation::Invocation;
use crate::logs::{LogLine, LogQuery};
use crate::output::Response;
use crate::registry::{RegisteredFunction, Registry};
use crate::trigger::Dispatcher;

/// Deploys functions from a catalogue into an in-process [`Dispatcher`]
/// (usually a [`LocalExecutor`](crate::LocalExecutor)'s).
///
/// - `deploy` takes the catalogue entry named by the deployment's `image` (or,
///   without one, by its name), applies the deployment's triggers, policy and
///   scaling overrides, registers it under the deployment's name and serves it at once;
/// - `scale` to 0 stops accepting calls (they fail with `Unavailable`, 503), any
///   other number serves again; in-process, every replica shares the one process;
/// - `list` and `status` report the live counts: replicas, calls finished, calls in flight;
/// - `logs` reads the dispatcher's [`InvocationLog`](crate::InvocationLog): one line
///   per finished call, plus deploy, update and scale events.
///
/// Functions registered in the dispatcher directly (not through `deploy`) are
/// listed and managed too.
///
/// In-process there is one namespace ([`DEFAULT_NAMESPACE`] unless
/// [`with_namespace`](Self::with_namespace) says otherwise): functions named in another one are
/// not found, and deploying into another one is refused as invalid.
pub struct LocalProvider {
    catalogue: Registry,
    dispatcher: Dispatcher,
    namespace: String,
    state: Arc<Mutex<ProviderState>>,
    /// Bumped on every deploy, update, scale and remove: what [`Provider::watch`] waits on.
    changes: tokio::sync::watch::Sender<u64>,
}

#[derive(Default)]
struct ProviderState {
    /// The deployment behind each function deployed through this provider.
    deployments: BTreeMap<String, FunctionDeployment>,
    /// Calls counted by earlier versions of an updated function.
    carried_invocations: BTreeMap<String, u64>,
}

impl fmt::Debug for LocalProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalProvider")
            .field("catalogue", &self.catalogue)
            .field("dispatcher", &self.dispatcher)
            .finish_non_exhaustive()
    }
}

impl LocalProvider {
    /// A provider deploying from `catalogue` into `dispatcher`'s registry.
    pub fn new(catalogue: Registry, dispatcher: Dispatcher) -> Self {
        LocalProvider {
            catalogue,
            dispatcher,
            namespace: DEFAULT_NAMESPACE.to_owned(),
            state: Arc::new(Mutex::new(ProviderState::default())),
            changes: tokio::sync::watch::Sender::new(0),
        }
    }

    /// Serves `namespace` instead of the default one.
    #[must_use]
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// The one namespace it serves.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The function's name here, or `NotFound` when `function` is in another namespace.
    fn local_name<'a>(&self, function: &'a FunctionRef) -> ProviderResult<&'a str> {
        if function.namespace == self.namespace {
            Ok(&function.name)
        } else {
            Err(ProviderError::not_found(function))
        }
    }

    fn core_error(&self, error: Error) -> ProviderError {
        ProviderError::from_core(error, &self.namespace)
    }

    fn changed(&self) {
        self.changes.send_modify(|version| *version += 1);
    }

    /// Refuses a deployment into a namespace this provider does not serve.
    fn check_namespace(&self, deployment: &FunctionDeployment) -> ProviderResult<()> {
        match deployment.namespace.as_deref() {
            Some(namespace) if namespace != self.namespace => Err(ProviderError::Invalid {
                message: format!(
                    "this in-process provider serves namespace `{}` only, not `{namespace}`",
                    self.namespace
                ),
            }),
            _ => Ok(()),
        }
    }

    /// The deployable functions.
    pub fn catalogue(&self) -> &Registry {
        &self.catalogue
    }

    /// The dispatcher it deploys into.
    pub fn dispatcher(&self) -> &Dispatcher {
        &self.dispatcher
    }

    fn state(&self) -> MutexGuard<'_, ProviderState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The function `function` names, deployed here, or `NotFound`.
    fn found(&self, function: &FunctionRef) -> ProviderResult<RegisteredFunction> {
        let name = self.local_name(function)?;
        self.deployed(name)
            .map_err(|_| ProviderError::not_found(function))
    }

    fn deployed(&self, name: &str) -> Result<RegisteredFunction> {
        self.dispatcher
            .registry()
            .get(name)
            .ok_or_else(|| Error::UnknownFunction {
                name: name.to_owned(),
            })
    }

    /// The definition to serve for `deployment`: the catalogue entry, renamed,
    /// with the deployment's overrides.
    fn definition_for(&self, deployment: &FunctionDeployment) -> Result<FunctionDefinition> {
        let entry = deployment.image.as_deref().unwrap_or(&deployment.name);
        let registered = self
            .catalogue
            .get(entry)
            .ok_or_else(|| Error::NotInCatalogue {
                name: entry.to_owned(),
            })?;
        let mut definition = registered.definition().clone().with_name(&deployment.name);
        let policy = deployment.apply_to_policy(definition.policy().clone());
        definition = definition.with_policy(policy);
        if let Some(scaling) = &deployment.scaling {
            definition = definition.with_scaling(scaling.clone());
        }
        if !deployment.triggers.is_empty() {
            definition.meta_mut().triggers = deployment.triggers.clone();
        }
        Ok(definition)
    }
}

/// The status of `function` as `dispatcher` serves it, or `None` when it is
/// not deployed here (another namespace, or no such function).
fn current_status(
    dispatcher: &Dispatcher,
    state: &Mutex<ProviderState>,
    namespace: &str,
    function: &FunctionRef,
) -> Option<FunctionStatus> {
    if function.namespace != namespace {
        return None;
    }
    let registered = dispatcher.registry().get(&function.name)?;
    let state = state.lock().unwrap_or_else(PoisonError::into_inner);
    Some(status_of(&registered, &state, namespace))
}

fn status_of(
    registered: &RegisteredFunction,
    state: &ProviderState,
    namespace: &str,
) -> FunctionStatus {
    let name = registered.name();
    let deployment = state.deployments.get(name);
    let replicas = registered.replicas();
    let carried = state.carried_invocations.get(name).copied().unwrap_or(0);
    let mut status = FunctionStatus::new(name)
        .with_replicas(replicas, replicas)
        .with_invocations(
            carried + registered.invocation_count(),
            registered.in_flight() as u64,
        )
        .with_triggers(registered.meta().triggers.clone())
        .with_namespace(namespace);
    status = if replicas > 0 {
        status.with_readiness(
            true,
            "Ready",
            format!("{replicas} replica(s) serving"),
            false,
        )
    } else {
        status.with_readiness(
            false,
            "ScaledToZero",
            "scaled to zero: calls fail until it is scaled up",
            false,
        )
    };
    if let Some(deployment) = deployment {
        status = status
            .with_image(deployment.image.clone().unwrap_or_else(|| name.to_owned()))
            .with_labels(deployment.labels.clone())
            .with_annotations(deployment.annotations.clone());
    }
    status
}

#[async_trait]
impl Provider for LocalProvider {
    async fn deploy(&self, deployment: FunctionDeployment) -> ProviderResult<()> {
        self.check_namespace(&deployment)?;
        let definition = self
            .definition_for(&deployment)
            .map_err(|e| self.core_error(e))?;
        let replicas = definition.meta().scaling.min_replicas.max(1);
        {
            let mut state = self.state();
            self.dispatcher
                .registry()
                .register(definition)
                .map_err(|e| self.core_error(e))?;
            self.deployed(&deployment.name)
                .map_err(|e| self.core_error(e))?
                .set_replicas(replicas);
            self.dispatcher.invocation_log().push(
                &deployment.name,
                format!(
                    "deployed from catalogue entry `{}` with {replicas} replica(s)",
                    deployment.image.as_deref().unwrap_or(&deployment.name)
                ),
            );
            state.carried_invocations.remove(&deployment.name);
            state
                .deployments
                .insert(deployment.name.clone(), deployment);
        }
        self.changed();
        Ok(())
    }

    async fn update(&self, deployment: FunctionDeployment) -> ProviderResult<()> {
        self.check_namespace(&deployment)?;
        let previous = self
            .deployed(&deployment.name)
            .map_err(|e| self.core_error(e))?;
        let definition = self
            .definition_for(&deployment)
            .map_err(|e| self.core_error(e))?;
        {
            let mut state = self.state();
            let replaced = self
                .dispatcher
                .registry()
                .replace(definition)
                .map_err(|e| self.core_error(e))?;
            let current = self
                .deployed(&deployment.name)
                .map_err(|e| self.core_error(e))?;
            // Keep the scale it had, including scaled to zero.
            current.set_replicas(previous.replicas());
            if let Some(replaced) = replaced {
                *state
                    .carried_invocations
                    .entry(deployment.name.clone())
                    .or_default() += replaced.invocation_count();
            }
            self.dispatcher
                .invocation_log()
                .push(&deployment.name, "updated".to_owned());
            state
                .deployments
                .insert(deployment.name.clone(), deployment);
        }
        self.changed();
        Ok(())
    }

    async fn remove(&self, function: &FunctionRef) -> ProviderResult<()> {
        let name = self.local_name(function)?;
        {
            let mut state = self.state();
            self.dispatcher
                .registry()
                .remove(name)
                .ok_or_else(|| ProviderError::not_found(function))?;
            state.deployments.remove(name);
            state.carried_invocations.remove(name);
            self.dispatcher.invocation_log().clear(name);
        }
        self.changed();
        Ok(())
    }

    async fn list(&self, namespace: Option<&str>) -> ProviderResult<Vec<FunctionStatus>> {
        if namespace.is_some_and(|namespace| namespace != self.namespace) {
            return Ok(Vec::new());
        }
        let state = self.state();
        Ok(self
            .dispatcher
            .registry()
            .iter()
            .map(|registered| status_of(&registered, &state, &self.namespace))
            .collect())
    }

    async fn status(&self, function: &FunctionRef) -> ProviderResult<FunctionStatus> {
        current_status(&self.dispatcher, &self.state, &self.namespace, function)
            .ok_or_else(|| ProviderError::not_found(function))
    }

    async fn scale(&self, function: &FunctionRef, replicas: u32) -> ProviderResult<()> {
        let registered = self.found(function)?;
        let name = registered.name();
        let max = registered.meta().scaling.max_replicas;
        let replicas = max.map_or(replicas, |max| replicas.min(max));
        registered.set_replicas(replicas);
        self.dispatcher
            .invocation_log()
            .push(name, format!("scaled to {replicas} replica(s)"));
        self.changed();
        Ok(())
    }

    async fn invoke(
        &self,
        function: &FunctionRef,
        invocation: Invocation,
    ) -> Result<Response, FunctionError> {
        if function.namespace != self.namespace {
            return Err(FunctionError::new(
                ErrorKind::NotFound,
                format!("function {function} not found"),
            ));
        }
        self.dispatcher.dispatch(&function.name, invocation).await
    }

    async fn logs(
        &self,
        function: &FunctionRef,
        options: LogQuery,
    ) -> BoxStream<'static, ProviderResult<LogLine>> {
        let known = self
            .local_name(function)
            .is_ok_and(|name| self.dispatcher.registry().contains(name));
        if !known {
            let error = ProviderError::not_found(function);
            return stream::once(async move { Err(error) }).boxed();
        }
        let namespace = self.namespace.clone();
        self.dispatcher
            .invocation_log()
            .stream(&function.name, &options)
            .map(move |line| line.map_err(|e| ProviderError::from_core(e, &namespace)))
            .boxed()
    }

    async fn watch(
        &self,
        function: &FunctionRef,
    ) -> BoxStream<'static, ProviderResult<FunctionStatus>> {
        let dispatcher = self.dispatcher.clone();
        let state = self.state.clone();
        let namespace = self.namespace.clone();
        let function = function.clone();
        let changes = self.changes.subscribe();
        // The status now, then after every change that alters it; an error ends the stream.
        let statuses = stream::unfold(
            (changes, None::<FunctionStatus>, false, true),
            move |(mut changes, last, done, first)| {
                let dispatcher = dispatcher.clone();
                let state = state.clone();
                let namespace = namespace.clone();
                let function = function.clone();
                async move {
                    if done {
                        return None;
                    }
                    let mut first = first;
                    loop {
                        if !first && changes.changed().await.is_err() {
                            return None;
                        }
                        first = false;
                        match current_status(&dispatcher, &state, &namespace, &function) {
                            None => {
                                let error = ProviderError::not_found(&function);
                                return Some((Err(error), (changes, last, true, false)));
                            }
                            Some(status) if last.as_ref() != Some(&status) => {
                                return Some((
                                    Ok(status.clone()),
                                    (changes, Some(status), false, false),
                                ));
                            }
                            Some(_) => {}
                        }
                    }
                }
            },
        );
        statuses.boxed()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{ErrorKind, ScalingHints, TriggerSpec};

    fn provider() -> LocalProvider {
        let catalogue = Registry::from([
            FunctionDefinition::from_handler("echo", |body: String| async move { body }),
            FunctionDefinition::from_handler(
                "upper",
                |body: String| async move { body.to_uppercase() },
            )
            .with_trigger(TriggerSpec::http("/upper")),
        ]);
        LocalProvider::new(catalogue, Dispatcher::new(Registry::new()))
    }

    async fn deploy(provider: &LocalProvider, deployment: FunctionDeployment) {
        provider.deploy(deployment).await.unwrap();
    }

    async fn call(
        provider: &LocalProvider,
        name: &str,
        body: &'static str,
    ) -> std::result::Result<Response, FunctionError> {
        provider
            .invoke(&FunctionRef::named(name), Invocation::new(body))
            .await
    }

    #[tokio::test]
    async fn deploy_invoke_status() {
        let provider = provider();
        deploy(
            &provider,
            FunctionDeployment::new("echo").with_label("team", "a"),
        )
        .await;
        let response = call(&provider, "echo", "hi").await.unwrap();
        assert_eq!(response.body(), "hi");
        let status = provider.status(&FunctionRef::named("echo")).await.unwrap();
        assert_eq!(status.invocation_count, 1);
        assert_eq!(status.replicas, 1);
        assert_eq!(status.available_replicas, 1);
        assert_eq!(status.in_flight, 0);
        assert_eq!(status.image.as_deref(), Some("echo"));
        assert_eq!(status.labels["team"], "a");
        assert!(status.is_ready());
    }

    #[tokio::test]
    async fn deploy_a_catalogue_entry_under_another_name() {
        let provider = provider();
        provider
            .deploy(
                FunctionDeployment::new("shout")
                    .with_image("upper")
                    .with_timeout(Duration::from_secs(1))
                    .with_scaling(ScalingHints::default().with_min_replicas(2)),
            )
            .await
            .unwrap();
        let response = call(&provider, "shout", "hi").await.unwrap();
        assert_eq!(response.body(), "HI");
        let status = provider.status(&FunctionRef::named("shout")).await.unwrap();
        assert_eq!(status.replicas, 2);
        assert_eq!(status.triggers, [TriggerSpec::http("/upper")]);
        let registered = provider.dispatcher().registry().get("shout").unwrap();
        assert_eq!(registered.policy().timeout(), Some(Duration::from_secs(1)));
    }

    #[tokio::test]
    async fn errors_for_unknown_and_duplicate() {
        let provider = provider();
        let missing = provider
            .deploy(FunctionDeployment::new("nope"))
            .await
            .unwrap_err();
        assert!(matches!(missing, ProviderError::Invalid { .. }));
        deploy(&provider, FunctionDeployment::new("echo")).await;
        let duplicate = provider
            .deploy(FunctionDeployment::new("echo"))
            .await
            .unwrap_err();
        assert!(matches!(duplicate, ProviderError::Conflict { .. }));
        assert!(matches!(
            provider.status(&FunctionRef::named("ghost")).await,
            Err(ProviderError::NotFound { .. })
        ));
        assert!(matches!(
            provider.scale(&FunctionRef::named("ghost"), 1).await,
            Err(ProviderError::NotFound { .. })
        ));
        assert!(matches!(
            provider.remove(&FunctionRef::named("ghost")).await,
            Err(ProviderError::NotFound { .. })
        ));
        assert!(matches!(
            provider.update(FunctionDeployment::new("ghost")).await,
            Err(ProviderError::NotFound { .. })
        ));
        let err = call(&provider, "ghost", "").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        let mut logs = provider
            .logs(&FunctionRef::named("ghost"), LogQuery::new())
            .await;
        assert!(matches!(
            logs.next().await,
            Some(Err(ProviderError::NotFound { .. }))
        ));
        assert!(logs.next().await.is_none());
    }

    #[tokio::test]
    async fn scale_to_zero_and_back() {
        let provider = provider();
        deploy(&provider, FunctionDeployment::new("echo")).await;
        provider
            .scale(&FunctionRef::named("echo"), 0)
            .await
            .unwrap();
        let err = call(&provider, "echo", "").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        let status = provider.status(&FunctionRef::named("echo")).await.unwrap();
        assert_eq!((status.replicas, status.available_replicas), (0, 0));
        assert!(!status.is_ready());
        provider
            .scale(&FunctionRef::named("echo"), 3)
            .await
            .unwrap();
        assert_eq!(
            provider
                .status(&FunctionRef::named("echo"))
                .await
                .unwrap()
                .replicas,
            3
        );
        call(&provider, "echo", "").await.unwrap();
    }

    #[tokio::test]
    async fn update_keeps_counts_and_scale() {
        let provider = provider();
        deploy(&provider, FunctionDeployment::new("echo")).await;
        call(&provider, "echo", "").await.unwrap();
        provider
            .scale(&FunctionRef::named("echo"), 0)
            .await
            .unwrap();
        provider
            .update(FunctionDeployment::new("echo").with_max_in_flight(4))
            .await
            .unwrap();
        let status = provider.status(&FunctionRef::named("echo")).await.unwrap();
        assert_eq!(status.invocation_count, 1);
        assert_eq!(status.replicas, 0);
        let registered = provider.dispatcher().registry().get("echo").unwrap();
        assert_eq!(registered.policy().max_in_flight(), Some(4));
    }

    #[tokio::test]
    async fn list_and_remove() {
        let provider = provider();
        deploy(&provider, FunctionDeployment::new("upper")).await;
        deploy(&provider, FunctionDeployment::new("echo")).await;
        let names: Vec<_> = provider
            .list(None)
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, ["echo", "upper"]);
        provider.remove(&FunctionRef::named("echo")).await.unwrap();
        let names: Vec<_> = provider
            .list(None)
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, ["upper"]);
        // The catalogue still holds it: it can be deployed again.
        deploy(&provider, FunctionDeployment::new("echo")).await;
    }

    #[tokio::test]
    async fn logs_hold_a_line_per_call() {
        let provider = provider();
        deploy(&provider, FunctionDeployment::new("echo")).await;
        call(&provider, "echo", "a").await.unwrap();
        let err_call = Invocation::new(vec![0xff]);
        provider
            .invoke(&FunctionRef::named("echo"), err_call)
            .await
            .unwrap_err();
        let lines: Vec<LogLine> = provider
            .logs(&FunctionRef::named("echo"), LogQuery::new())
            .await
            .map(|line| line.unwrap())
            .collect()
            .await;
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(lines[0].text.starts_with("deployed"));
        assert!(lines[1].text.contains("status=200"));
        assert!(lines[2].text.contains("status=400"));
        assert!(lines[2].text.contains("bad_input"));
        let tail: Vec<_> = provider
            .logs(&FunctionRef::named("echo"), LogQuery::new().with_tail(1))
            .await
            .collect()
            .await;
        assert_eq!(tail.len(), 1);
    }
}
