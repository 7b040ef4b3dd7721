//! [`Function`]: anything that answers an [`Invocation`], and [`FunctionService`],
//! the same as a [`tower::Service`].

use std::fmt;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use async_trait::async_trait;
use futures::future::BoxFuture;
use tower::{Service, ServiceExt as _};

use crate::error::FunctionError;
use crate::invocation::Invocation;
use crate::output::Response;

/// A function: takes an invocation, answers with a response or an error.
///
/// Usually made from a plain `async fn` with [`handler_fn`](crate::handler_fn) or
/// [`FunctionDefinition::from_handler`](crate::FunctionDefinition::from_handler);
/// implement it directly for full control. The trait is dyn-compatible, so
/// functions of different types live together as [`SharedFunction`].
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
/// let f: faas_core::SharedFunction = std::sync::Arc::new(Echo);
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

/// A function of any type behind an [`Arc`]: shared by every call, cheap to
/// clone; what a [`Registry`](crate::Registry) holds.
pub type SharedFunction = Arc<dyn Function>;

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
    function: SharedFunction,
}

impl FunctionService {
    /// A service calling `function`.
    pub fn new(function: SharedFunction) -> Self {
        FunctionService { function }
    }

    /// The function behind the service.
    pub fn function(&self) -> &SharedFunction {
        &self.function
    }
}

impl std::fmt::Debug for FunctionService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FunctionService").finish_non_exhaustive()
    }
}

impl From<SharedFunction> for FunctionService {
    fn from(function: SharedFunction) -> Self {
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

/// A function borrowed for the length of a call, as a [`tower::Service`]: the
/// innermost service of the dispatcher's policy stack. Borrowing saves the
/// reference count and the second box that [`FunctionService`] needs to own
/// its function.
#[cfg(feature = "local")]
#[derive(Clone, Copy)]
pub(crate) struct BorrowedFunction<'a>(pub(crate) &'a dyn Function);

#[cfg(feature = "local")]
impl<'a> tower::Service<Invocation> for BorrowedFunction<'a> {
    type Response = Response;
    type Error = FunctionError;
    type Future = BoxFuture<'a, Result<Response, FunctionError>>;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    #[inline]
    fn call(&mut self, invocation: Invocation) -> Self::Future {
        self.0.call(invocation)
    }
}

/// A [`tower::Service`] of invocations as a [`Function`]: what
/// [`FunctionDefinition::from_service`](crate::FunctionDefinition::from_service)
/// and [`FunctionDefinition::layer`](crate::FunctionDefinition::layer) register.
///
/// Each call clones the service and waits for it to be ready, as
/// [`ServiceExt::oneshot`](tower::ServiceExt::oneshot) does, so a service that
/// applies back-pressure in `poll_ready` makes calls wait there.
///
/// ```
/// use faas_core::{Function, FunctionError, Invocation, Response, ServiceFunction};
///
/// // Any tower service of invocations: here one made from a closure.
/// let service = tower::service_fn(|invocation: Invocation| async move {
///     Ok::<Response, FunctionError>(Response::new(invocation.body().clone()))
/// });
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let response = ServiceFunction::new(service).call(Invocation::new("hi")).await.unwrap();
/// assert_eq!(response.body(), "hi");
/// # });
/// ```
#[derive(Clone)]
pub struct ServiceFunction<S> {
    service: S,
}

impl<S> ServiceFunction<S> {
    /// A function calling `service`.
    pub fn new(service: S) -> Self {
        ServiceFunction { service }
    }

    /// The service inside.
    pub fn service(&self) -> &S {
        &self.service
    }
}

impl<S> fmt::Debug for ServiceFunction<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceFunction")
            .field("service", &std::any::type_name::<S>())
            .finish()
    }
}

// Written out rather than with `#[async_trait]`: the service's future is
// boxed once, not wrapped in a second future first.
impl<S> Function for ServiceFunction<S>
where
    S: Service<Invocation, Response = Response, Error = FunctionError>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    fn call<'life0, 'async_trait>(
        &'life0 self,
        invocation: Invocation,
    ) -> BoxFuture<'async_trait, Result<Response, FunctionError>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.service.clone().oneshot(invocation))
    }
}
