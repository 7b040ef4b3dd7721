//! [`Provider`]: what a platform offers to manage functions, modelled on the
//! OpenFaaS provider API: deploy, update, remove, list, status, scale, invoke, logs, and
//! watching a function until it is ready.
//!
//! Functions are named by namespace and name ([`FunctionRef`]); failures come as a
//! [`ProviderError`] whose variants every provider shares. [`LocalProvider`] implements it
//! in-process; `faas-k8s`'s `KubernetesProvider` implements it on a cluster, and the
//! [`suite`] runs the same checks against both.

mod deployment;
mod error;
#[cfg(feature = "local")]
mod local;
mod reference;
mod status;
pub mod suite;

use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt as _;
use futures::stream::BoxStream;

pub use deployment::FunctionDeployment;
pub use error::ProviderError;
#[cfg(feature = "local")]
pub use local::LocalProvider;
pub use reference::{DEFAULT_NAMESPACE, FunctionRef, InvalidFunctionRef};
pub use status::FunctionStatus;

use crate::error::FunctionError;
use crate::invocation::Invocation;
use crate::logs::{LogLine, LogQuery};
use crate::output::Response;

/// The result of a provider operation.
pub type ProviderResult<T> = std::result::Result<T, ProviderError>;

/// A platform that deploys, scales, calls and tails functions.
///
/// Every method names the function by namespace and name. Operations on a function that is
/// not deployed fail with [`ProviderError::NotFound`]; deploying one that exists fails with
/// [`ProviderError::Conflict`] (use [`update`](Self::update) to change it).
///
/// ```
/// use faas_core::{FunctionDefinition, FunctionDeployment, FunctionRef, Invocation, LocalExecutor, LocalProvider, Provider, Registry};
///
/// async fn hello(name: String) -> String { format!("hello, {name}") }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let catalogue = Registry::from([FunctionDefinition::from_handler("hello", hello)]);
/// let executor = LocalExecutor::new(Registry::new());
/// let provider = LocalProvider::new(catalogue, executor.dispatcher());
///
/// provider.deploy(FunctionDeployment::new("hello")).await.unwrap();
/// let hello = FunctionRef::named("hello");
/// provider.wait_ready(&hello, std::time::Duration::from_secs(5)).await.unwrap();
/// let response = provider.invoke(&hello, Invocation::new("ada")).await.unwrap();
/// assert_eq!(response.body(), "hello, ada");
/// assert_eq!(provider.status(&hello).await.unwrap().invocation_count, 1);
/// # });
/// ```
#[async_trait]
pub trait Provider: Send + Sync {
    /// Deploys a new function and starts serving it.
    async fn deploy(&self, deployment: FunctionDeployment) -> ProviderResult<()>;

    /// Changes a deployed function (image, environment, triggers, policy, scaling).
    async fn update(&self, deployment: FunctionDeployment) -> ProviderResult<()>;

    /// Stops and removes a function.
    async fn remove(&self, function: &FunctionRef) -> ProviderResult<()>;

    /// The status of every deployed function of `namespace` (of every namespace when `None`),
    /// sorted by namespace and name.
    async fn list(&self, namespace: Option<&str>) -> ProviderResult<Vec<FunctionStatus>>;

    /// The status of one function.
    async fn status(&self, function: &FunctionRef) -> ProviderResult<FunctionStatus>;

    /// Sets the desired replicas; 0 stops serving (calls fail with `Unavailable`
    /// unless the platform wakes the function on demand).
    async fn scale(&self, function: &FunctionRef, replicas: u32) -> ProviderResult<()>;

    /// Calls a function once and returns its answer.
    async fn invoke(
        &self,
        function: &FunctionRef,
        invocation: Invocation,
    ) -> Result<Response, FunctionError>;

    /// The function's log lines; with [`LogQuery::follow`] the stream stays open
    /// for new lines. An unknown function gives a stream with one error.
    async fn logs(
        &self,
        function: &FunctionRef,
        options: LogQuery,
    ) -> BoxStream<'static, ProviderResult<LogLine>>;

    /// The function's status now, then again each time it changes; ends after an error (such
    /// as [`ProviderError::NotFound`] once the function is removed).
    async fn watch(
        &self,
        function: &FunctionRef,
    ) -> BoxStream<'static, ProviderResult<FunctionStatus>>;

    /// Waits until the function is ready (at most `timeout`) and returns its status.
    ///
    /// # Errors
    ///
    /// [`ProviderError::NotReady`] as soon as the status says it is failing (with the reason),
    /// or when `timeout` passes first (with the last reason seen); any error of
    /// [`watch`](Self::watch).
    async fn wait_ready(
        &self,
        function: &FunctionRef,
        timeout: Duration,
    ) -> ProviderResult<FunctionStatus> {
        let mut statuses = self.watch(function).await;
        let mut last: Option<FunctionStatus> = None;
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                next = statuses.next() => match next {
                    Some(Ok(status)) if status.is_ready() => return Ok(status),
                    Some(Ok(status)) if status.failed => {
                        return Err(ProviderError::NotReady {
                            function: function.clone(),
                            reason: status.reason.clone().unwrap_or_default(),
                            message: status.message.clone().unwrap_or_default(),
                        });
                    }
                    Some(Ok(status)) => last = Some(status),
                    Some(Err(error)) => return Err(error),
                    None => {
                        return Err(ProviderError::Unavailable {
                            message: format!("the status of {function} stopped coming"),
                            source: None,
                        });
                    }
                },
                () = &mut deadline => {
                    return Err(ProviderError::NotReady {
                        function: function.clone(),
                        reason: last
                            .as_ref()
                            .and_then(|status| status.reason.clone())
                            .unwrap_or_else(|| "Timeout".to_owned()),
                        message: format!(
                            "not ready after {}s{}",
                            timeout.as_secs(),
                            last.as_ref()
                                .and_then(|status| status.message.as_deref())
                                .map(|message| format!(": {message}"))
                                .unwrap_or_default()
                        ),
                    });
                }
            }
        }
    }
}
