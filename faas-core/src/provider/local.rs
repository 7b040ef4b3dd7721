//! [`LocalProvider`]: the [`Provider`] API over an in-process dispatcher.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use futures::StreamExt as _;
use futures::stream::{self, BoxStream};

use super::{FunctionDeployment, FunctionStatus, Provider};
use crate::definition::FunctionDefinition;
use crate::error::{Error, FunctionError, Result};
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
pub struct LocalProvider {
    catalogue: Registry,
    dispatcher: Dispatcher,
    state: Mutex<ProviderState>,
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
            state: Mutex::new(ProviderState::default()),
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

    fn status_of(&self, registered: &RegisteredFunction, state: &ProviderState) -> FunctionStatus {
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
            .with_triggers(registered.meta().triggers.clone());
        if let Some(deployment) = deployment {
            status = status
                .with_image(deployment.image.clone().unwrap_or_else(|| name.to_owned()))
                .with_labels(deployment.labels.clone())
                .with_annotations(deployment.annotations.clone());
            if let Some(namespace) = &deployment.namespace {
                status = status.with_namespace(namespace.clone());
            }
        }
        status
    }
}

#[async_trait]
impl Provider for LocalProvider {
    async fn deploy(&self, deployment: FunctionDeployment) -> Result<()> {
        let definition = self.definition_for(&deployment)?;
        let replicas = definition.meta().scaling.min_replicas.max(1);
        let mut state = self.state();
        self.dispatcher.registry().register(definition)?;
        self.deployed(&deployment.name)?.set_replicas(replicas);
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
        Ok(())
    }

    async fn update(&self, deployment: FunctionDeployment) -> Result<()> {
        let previous = self.deployed(&deployment.name)?;
        let definition = self.definition_for(&deployment)?;
        let mut state = self.state();
        let replaced = self.dispatcher.registry().replace(definition)?;
        let current = self.deployed(&deployment.name)?;
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
        Ok(())
    }

    async fn remove(&self, name: &str) -> Result<()> {
        let mut state = self.state();
        self.dispatcher
            .registry()
            .remove(name)
            .ok_or_else(|| Error::UnknownFunction {
                name: name.to_owned(),
            })?;
        state.deployments.remove(name);
        state.carried_invocations.remove(name);
        self.dispatcher.invocation_log().clear(name);
        Ok(())
    }

    async fn list(&self) -> Result<Vec<FunctionStatus>> {
        let state = self.state();
        Ok(self
            .dispatcher
            .registry()
            .iter()
            .map(|registered| self.status_of(&registered, &state))
            .collect())
    }

    async fn status(&self, name: &str) -> Result<FunctionStatus> {
        let registered = self.deployed(name)?;
        Ok(self.status_of(&registered, &self.state()))
    }

    async fn scale(&self, name: &str, replicas: u32) -> Result<()> {
        let registered = self.deployed(name)?;
        let max = registered.meta().scaling.max_replicas;
        let replicas = max.map_or(replicas, |max| replicas.min(max));
        registered.set_replicas(replicas);
        self.dispatcher
            .invocation_log()
            .push(name, format!("scaled to {replicas} replica(s)"));
        Ok(())
    }

    async fn invoke(&self, name: &str, invocation: Invocation) -> Result<Response, FunctionError> {
        self.dispatcher.dispatch(name, invocation).await
    }

    async fn logs(&self, name: &str, options: LogQuery) -> BoxStream<'static, Result<LogLine>> {
        if !self.dispatcher.registry().contains(name) {
            let error = Error::UnknownFunction {
                name: name.to_owned(),
            };
            return stream::once(async move { Err(error) }).boxed();
        }
        self.dispatcher.invocation_log().stream(name, &options)
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

    #[tokio::test]
    async fn deploy_invoke_status() {
        let provider = provider();
        provider
            .deploy(FunctionDeployment::new("echo").with_label("team", "a"))
            .await
            .unwrap();
        let response = provider
            .invoke("echo", Invocation::new("hi"))
            .await
            .unwrap();
        assert_eq!(response.body(), "hi");
        let status = provider.status("echo").await.unwrap();
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
        let response = provider
            .invoke("shout", Invocation::new("hi"))
            .await
            .unwrap();
        assert_eq!(response.body(), "HI");
        let status = provider.status("shout").await.unwrap();
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
        assert!(matches!(missing, Error::NotInCatalogue { .. }));
        provider
            .deploy(FunctionDeployment::new("echo"))
            .await
            .unwrap();
        let duplicate = provider
            .deploy(FunctionDeployment::new("echo"))
            .await
            .unwrap_err();
        assert!(matches!(duplicate, Error::DuplicateFunction { .. }));
        assert!(matches!(
            provider.status("ghost").await,
            Err(Error::UnknownFunction { .. })
        ));
        assert!(matches!(
            provider.scale("ghost", 1).await,
            Err(Error::UnknownFunction { .. })
        ));
        assert!(matches!(
            provider.remove("ghost").await,
            Err(Error::UnknownFunction { .. })
        ));
        assert!(matches!(
            provider.update(FunctionDeployment::new("ghost")).await,
            Err(Error::UnknownFunction { .. })
        ));
        let err = provider
            .invoke("ghost", Invocation::new(""))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        let mut logs = provider.logs("ghost", LogQuery::new()).await;
        assert!(matches!(
            logs.next().await,
            Some(Err(Error::UnknownFunction { .. }))
        ));
        assert!(logs.next().await.is_none());
    }

    #[tokio::test]
    async fn scale_to_zero_and_back() {
        let provider = provider();
        provider
            .deploy(FunctionDeployment::new("echo"))
            .await
            .unwrap();
        provider.scale("echo", 0).await.unwrap();
        let err = provider
            .invoke("echo", Invocation::new(""))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        let status = provider.status("echo").await.unwrap();
        assert_eq!((status.replicas, status.available_replicas), (0, 0));
        assert!(!status.is_ready());
        provider.scale("echo", 3).await.unwrap();
        assert_eq!(provider.status("echo").await.unwrap().replicas, 3);
        provider.invoke("echo", Invocation::new("")).await.unwrap();
    }

    #[tokio::test]
    async fn update_keeps_counts_and_scale() {
        let provider = provider();
        provider
            .deploy(FunctionDeployment::new("echo"))
            .await
            .unwrap();
        provider.invoke("echo", Invocation::new("")).await.unwrap();
        provider.scale("echo", 0).await.unwrap();
        provider
            .update(FunctionDeployment::new("echo").with_max_in_flight(4))
            .await
            .unwrap();
        let status = provider.status("echo").await.unwrap();
        assert_eq!(status.invocation_count, 1);
        assert_eq!(status.replicas, 0);
        let registered = provider.dispatcher().registry().get("echo").unwrap();
        assert_eq!(registered.policy().max_in_flight(), Some(4));
    }

    #[tokio::test]
    async fn list_and_remove() {
        let provider = provider();
        provider
            .deploy(FunctionDeployment::new("upper"))
            .await
            .unwrap();
        provider
            .deploy(FunctionDeployment::new("echo"))
            .await
            .unwrap();
        let names: Vec<_> = provider
            .list()
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, ["echo", "upper"]);
        provider.remove("echo").await.unwrap();
        let names: Vec<_> = provider
            .list()
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, ["upper"]);
        // The catalogue still holds it: it can be deployed again.
        provider
            .deploy(FunctionDeployment::new("echo"))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn logs_hold_a_line_per_call() {
        let provider = provider();
        provider
            .deploy(FunctionDeployment::new("echo"))
            .await
            .unwrap();
        provider.invoke("echo", Invocation::new("a")).await.unwrap();
        let err_call = Invocation::new(vec![0xff]);
        provider.invoke("echo", err_call).await.unwrap_err();
        let lines: Vec<LogLine> = provider
            .logs("echo", LogQuery::new())
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
            .logs("echo", LogQuery::new().with_tail(1))
            .await
            .collect()
            .await;
        assert_eq!(tail.len(), 1);
    }
}
