//! [`tower`] layers over `Service<Invocation, Response = Response, Error = FunctionError>`:
//! the pieces of an [`InvocationPolicy`](crate::InvocationPolicy), and the
//! layers that hand values to every call.
//!
//! Policy, outermost first: [`RefuseOverLimitLayer`] (refuse at once when
//! full; named apart from tower's `ConcurrencyLimitLayer`, which waits),
//! [`TimeoutLayer`] (deadline and cancellation), [`CatchPanicLayer`] (a panic
//! becomes an error), around a [`FunctionService`](crate::FunctionService);
//! for event deliveries add [`RetryLayer`] on the outside.
//! [`InvocationPolicyLayer`] stacks the first three from an
//! [`InvocationPolicy`](crate::InvocationPolicy): it is how the
//! [`Dispatcher`](crate::Dispatcher) applies a function's policy, so a
//! service built by hand with it behaves as the executor does. Their futures
//! are named types, not boxes: a stack of them costs one allocation, the
//! innermost function's. Values:
//! [`StateLayer`] gives every call the host's [`State`](crate::State), and
//! [`Extension`](crate::Extension) is itself a layer ([`AddExtension`]).
//!
//! Any of these, or any other tower layer of invocations, wraps one function
//! before it is registered ([`FunctionDefinition::layer`](crate::FunctionDefinition::layer))
//! or every call of a host (`LocalExecutorBuilder::layer`, [`Registry::layer`](crate::Registry::layer)).
//!
//! ```
//! use std::time::Duration;
//! use faas_core::layer::{CatchPanicLayer, RefuseOverLimitLayer, TimeoutLayer};
//! use faas_core::{handler_fn, Function, Invocation};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let service = ServiceBuilder::new()
//!     .layer(RefuseOverLimitLayer::new(10))
//!     .layer(TimeoutLayer::new(Some(Duration::from_secs(1))))
//!     .layer(CatchPanicLayer::new())
//!     .service(handler_fn(|| async { "ok" }).into_service());
//! let response = service.oneshot(Invocation::new("")).await.unwrap();
//! assert_eq!(response.body(), "ok");
//! # });
//! ```

pub(crate) mod catch_panic;
mod concurrency;
mod extension;
mod policy;
mod retry;
mod timeout;

pub use catch_panic::{CatchPanic, CatchPanicFuture, CatchPanicLayer};
pub use concurrency::{
    InFlightLimit, RefuseOverLimit, RefuseOverLimitFuture, RefuseOverLimitLayer,
};
pub use extension::{AddExtension, AddState, StateLayer};
pub use policy::{InvocationPolicyLayer, InvocationPolicyService};
pub use retry::{Retry, RetryLayer, RetryOutcome};
pub use timeout::{Timeout, TimeoutFuture, TimeoutLayer};

use futures::future::BoxFuture;

use crate::error::FunctionError;
use crate::output::Response;

/// An error a layer answers without (or after) its inner service, handed out
/// once: a future polled again after it answered gets an internal error.
#[derive(Debug)]
pub(crate) struct Answered(Option<FunctionError>);

impl Answered {
    pub(crate) fn new(error: FunctionError) -> Self {
        Answered(Some(error))
    }

    pub(crate) fn take(&mut self) -> std::task::Poll<Result<Response, FunctionError>> {
        std::task::Poll::Ready(Err(self.0.take().unwrap_or_else(|| {
            FunctionError::internal("a call that already answered was polled again")
        })))
    }
}

/// The future of [`Retry`], and of services written by hand in the examples.
pub type LayerFuture = BoxFuture<'static, Result<Response, FunctionError>>;
