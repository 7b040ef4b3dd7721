//! [`Invoker`]: how a trigger reaches a function, in its own process or on a
//! cluster.

use async_trait::async_trait;

#[cfg(feature = "local")]
use super::Dispatcher;
use crate::error::FunctionError;
use crate::invocation::Invocation;
use crate::output::Response;
use crate::policy::InvocationPolicy;

/// The way a trigger calls functions: one attempt of one call.
///
/// Event sources are written against it, so the same source serves
/// functions in its own process (the [`Dispatcher`], which applies each
/// function's policy: in-flight limit, deadline, panic isolation) or
/// functions on a cluster (an invoker that posts to the gateway's
/// `/function/{name}`, as a connector running beside the gateway does).
///
/// Retries are not its business: a source that can redeliver settles each
/// message after one attempt with [`deliver_once`](super::deliver_once), and
/// the broker redelivers.
///
/// ```
/// use faas_core::trigger::Invoker;
/// use faas_core::{Dispatcher, FunctionDefinition, Invocation, Registry};
///
/// async fn shout(text: String) -> String { text.to_uppercase() }
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let dispatcher = Dispatcher::new(Registry::from([FunctionDefinition::from_handler("shout", shout)]));
/// let invoker: &dyn Invoker = &dispatcher;
/// let response = invoker.invoke("shout", Invocation::new("hi")).await.unwrap();
/// assert_eq!(response.body(), "HI");
/// assert_eq!(invoker.policy("shout").unwrap().retry().max_attempts, 3);
/// assert!(invoker.policy("nope").is_none());
/// # });
/// ```
#[async_trait]
pub trait Invoker: Send + Sync + 'static {
    /// Calls `function` once with `invocation` and returns its answer.
    ///
    /// # Errors
    ///
    /// The call's error: the function's own, or the host's (`NotFound`,
    /// `Unavailable`, `Overloaded`, `Timeout`, ...).
    async fn invoke(
        &self,
        function: &str,
        invocation: Invocation,
    ) -> Result<Response, FunctionError>;

    /// The policy that decides what happens to a failed delivery of
    /// `function` (its retries and dead letter); `None` when the invoker does
    /// not know the function (the default policy applies then).
    fn policy(&self, function: &str) -> Option<InvocationPolicy>;
}

#[cfg(feature = "local")]
#[async_trait]
impl Invoker for Dispatcher {
    async fn invoke(
        &self,
        function: &str,
        invocation: Invocation,
    ) -> Result<Response, FunctionError> {
        self.dispatch(function, invocation).await
    }

    fn policy(&self, function: &str) -> Option<InvocationPolicy> {
        self.registry()
            .get(function)
            .map(|registered| registered.policy().clone())
    }
}
