//! The pieces of an [`InvocationPolicy`](crate::InvocationPolicy) as
//! [`tower`] layers over `Service<Invocation, Response = Response, Error = FunctionError>`.
//!
//! Stack them, outermost first: [`RefuseOverLimitLayer`] (refuse at once when
//! full), [`TimeoutLayer`] (deadline and cancellation), [`CatchPanicLayer`] (a
//! panic becomes an error), around a [`FunctionService`](crate::FunctionService);
//! for event deliveries add [`RetryLayer`] on the outside. The
//! [`Dispatcher`](crate::Dispatcher) applies the same policies in this order,
//! with the same decisions and errors, but in a single future per call rather
//! than a boxed future per layer.
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
pub(crate) mod concurrency;
mod extension;
pub(crate) mod retry;
pub(crate) mod timeout;

pub use catch_panic::{CatchPanic, CatchPanicLayer};
pub use concurrency::{RefuseOverLimit, RefuseOverLimitLayer};

/// The former name of [`RefuseOverLimitLayer`].
#[deprecated(
    note = "renamed `RefuseOverLimitLayer`: it refuses a call over the limit at once, where tower's `ConcurrencyLimitLayer` waits"
)]
#[doc(hidden)]
pub type ConcurrencyLimitLayer = RefuseOverLimitLayer;
pub use extension::{AddExtension, AddState, StateLayer};
pub use retry::{Retry, RetryLayer, RetryOutcome};
pub use timeout::{Timeout, TimeoutLayer};

use futures::future::BoxFuture;

use crate::error::FunctionError;
use crate::output::Response;

/// The future every layer here returns.
pub type LayerFuture = BoxFuture<'static, Result<Response, FunctionError>>;
