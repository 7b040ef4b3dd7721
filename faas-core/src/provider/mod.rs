//! [`Provider`]: what a platform offers to manage functions, modelled on the
//! OpenFaaS provider API: deploy, update, remove, list, status, scale, invoke, logs.
//!
//! [`LocalProvider`] implements it in-process; the Kubernetes and virtual-node
//! providers of `faas-k8s` implement the same trait.

mod deployment;
#[cfg(feature = "local")]
mod local;
mod status;

use async_trait::async_trait;
use futures::stream::BoxStream;

pub use deployment::FunctionDeployment;
#[cfg(feature = "local")]
pub use local::LocalProvider;
pub use status::FunctionStatus;

use crate::error::{FunctionError, Result};
use crate::invocation::Invocation;
use crate::logs::{LogLine, LogQuery};
use crate::output::Response;

/// A platform that deploys, scales, calls and tails functions.
///
/// Every method names the function by its deployed name. Operations on a name
/// that is not deployed fail with [`Error::UnknownFunction`](crate::Error::UnknownFunction);
/// deploying a name in use fails with
/// [`Error::DuplicateFunction`](crate::Error::DuplicateFunction) (use
/// [`update`](Self::update) to change a deployed function).
///
/// ```
/// use faas_core::{FunctionDefinition, FunctionDeployment, Invocation, LocalExecutor, LocalProvider, Provider, Registry};
///
/// async fn hello(name: String) -> String { format!("hello, {name}") }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let catalogue = Registry::from([FunctionDefinition::from_handler("hello", hello)]);
/// let executor = LocalExecutor::new(Registry::new());
/// let provider = LocalProvider::new(catalogue, executor.dispatcher());
///
/// provider.deploy(FunctionDeployment::new("hello")).await.unwrap();
/// let response = provider.invoke("hello", Invocation::new("ada")).await.unwrap();
/// assert_eq!(response.body(), "hello, ada");
/// assert_eq!(provider.status("hello").await.unwrap().invocation_count, 1);
/// # });
/// ```
#[async_trait]
pub trait Provider: Send + Sync {
    /// Deploys a new function and starts serving it.
    async fn deploy(&self, deployment: FunctionDeployment) -> Result<()>;

    /// Changes a deployed function (image, environment, triggers, policy, scaling).
    async fn update(&self, deployment: FunctionDeployment) -> Result<()>;

    /// Stops and removes a function.
    async fn remove(&self, name: &str) -> Result<()>;

    /// The status of every deployed function, sorted by name.
    async fn list(&self) -> Result<Vec<FunctionStatus>>;

    /// The status of one function.
    async fn status(&self, name: &str) -> Result<FunctionStatus>;

    /// Sets the desired replicas; 0 stops serving (calls fail with `Unavailable`
    /// unless the platform wakes the function on demand).
    async fn scale(&self, name: &str, replicas: u32) -> Result<()>;

    /// Calls a function once and returns its answer.
    async fn invoke(&self, name: &str, invocation: Invocation) -> Result<Response, FunctionError>;

    /// The function's log lines; with [`LogQuery::follow`] the stream stays open
    /// for new lines. An unknown function gives a stream with one error.
    async fn logs(&self, name: &str, options: LogQuery) -> BoxStream<'static, Result<LogLine>>;
}
