//! [`Function`]: anything that answers an [`Invocation`], and [`FunctionService`],
//! the same as a [`tower::Service`].

use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use async_trait::async_trait;
use futures::future::BoxFuture;

use crate::error::FunctionError;
use crate::invocation::Invocation;
use crate::output::Response;

/// A function: takes an invocation, answers with a response or an error.
///
/// Usually made from a plain `async fn` with [`handler_fn`](crate::handler_fn) or
/// [`FunctionDefinition::from_handler`](crate::FunctionDefinition::from_handler);
/// implement it directly for full control. The trait is dyn-compatible, so
/// functions of different types live together as [`BoxFunction`].
///
/// ```
/// use async_trait::async_trait;
/// use faas_core::{Function, FunctionError, Invocation, IntoOutput, Response};
///
/// struct Echo;
///
/// #[async_trait]
/// impl Function for Echo {
///     async fn call(&self, invocation: Invocation) -> Result<Response, FunctionError> {
///         invocation.body().clone().into_output()
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let f: faas_core::BoxFunction = std::sync::Arc::new(Echo);
/// let response = f.call(Invocation::new("ping")).await.unwrap();
/// assert_eq!(response.body(), "ping");
/// # });
/// ```
#[async_trait]
pub trait Function: Send + Sync + 'static {
    /// Answers one invocation.
    async fn call(&self, invocation: Invocation) -> Result<Response, FunctionError>;

    /// This function as a [`tower::Service`].
    fn into_service(self) -> FunctionService
    where
        Self: Sized,
    {
        FunctionService::new(Arc::new(self))
    }
}

/// A shared, type-erased function.
pub type BoxFunction = Arc<dyn Function>;

#[async_trait]
impl<F: Function + ?Sized> Function for Arc<F> {
    async fn call(&self, invocation: Invocation) -> Result<Response, FunctionError> {
        (**self).call(invocation).await
    }
}

#[async_trait]
impl<F: Function + ?Sized> Function for Box<F> {
    async fn call(&self, invocation: Invocation) -> Result<Response, FunctionError> {
        (**self).call(invocation).await
    }
}

/// A [`Function`] as a [`tower::Service`]; always ready, cheap to clone.
///
/// ```
/// use faas_core::{handler_fn, Function, Invocation};
/// use tower::ServiceExt;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let service = handler_fn(|body: String| async move { body.to_uppercase() }).into_service();
/// let response = service.oneshot(Invocation::new("hi")).await.unwrap();
/// assert_eq!(response.body(), "HI");
/// # });
/// ```
#[derive(Clone)]
pub struct FunctionService {
    function: BoxFunction,
}

impl FunctionService {
    /// A service calling `function`.
    pub fn new(function: BoxFunction) -> Self {
        FunctionService { function }
    }

    /// The function behind the service.
    pub fn function(&self) -> &BoxFunction {
        &self.function
    }
}

impl std::fmt::Debug for FunctionService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FunctionService").finish_non_exhaustive()
    }
}

impl From<BoxFunction> for FunctionService {
    fn from(function: BoxFunction) -> Self {
        FunctionService::new(function)
    }
}

impl tower::Service<Invocation> for FunctionService {
    type Response = Response;
    type Error = FunctionError;
    type Future = BoxFuture<'static, Result<Response, FunctionError>>;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, invocation: Invocation) -> Self::Future {
        let function = Arc::clone(&self.function);
        // Through `dyn Function` itself: `Arc<dyn Function>` is a `Function`
        // too, and calling that would box a second future.
        Box::pin(async move { function.as_ref().call(invocation).await })
    }
}
