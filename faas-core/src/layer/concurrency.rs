//! [`RefuseOverLimitLayer`]: at most N calls at once; one more is refused at
//! once with `Overloaded`, never queued.
//!
//! Named apart from tower's `ConcurrencyLimit`, which makes a call over the
//! limit wait for a permit: a function host would rather answer 429 at once
//! and let the caller (or the source that redelivers) decide.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, ready};

use pin_project_lite::pin_project;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};
use tower::{Layer, Service};

use super::Answered;
use crate::error::FunctionError;
use crate::invocation::Invocation;
use crate::output::Response;

/// Limits calls in flight. A call over the limit fails at once with
/// [`Overloaded`](crate::ErrorKind::Overloaded) (429): the caller, or the
/// trigger's source, decides whether to try again; nothing waits in a queue.
///
/// Clones of the layer and of its services share one semaphore.
#[derive(Debug, Clone)]
pub struct RefuseOverLimitLayer {
    semaphore: Arc<Semaphore>,
    max: usize,
}

impl RefuseOverLimitLayer {
    /// At most `max` calls at once.
    pub fn new(max: usize) -> Self {
        let max = max.min(Semaphore::MAX_PERMITS);
        RefuseOverLimitLayer {
            semaphore: Arc::new(Semaphore::new(max)),
            max,
        }
    }

    /// A limit sharing `semaphore` with other holders (e.g. a registered function's
    /// limiter); `max` is only reported in error messages.
    pub fn with_semaphore(semaphore: Arc<Semaphore>, max: usize) -> Self {
        RefuseOverLimitLayer { semaphore, max }
    }
}

impl<S> Layer<S> for RefuseOverLimitLayer {
    type Service = RefuseOverLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RefuseOverLimit {
            inner,
            semaphore: Arc::clone(&self.semaphore),
            max: self.max,
        }
    }
}

/// The service of [`RefuseOverLimitLayer`].
#[derive(Debug, Clone)]
pub struct RefuseOverLimit<S> {
    inner: S,
    semaphore: Arc<Semaphore>,
    max: usize,
}

impl<S> Service<Invocation> for RefuseOverLimit<S>
where
    S: Service<Invocation, Response = Response, Error = FunctionError>,
{
    type Response = Response;
    type Error = FunctionError;
    type Future = RefuseOverLimitFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), FunctionError>> {
        self.inner.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, invocation: Invocation) -> Self::Future {
        let state = match Arc::clone(&self.semaphore).try_acquire_owned() {
            Ok(permit) => State::Admitted {
                future: self.inner.call(invocation),
                permit: Some(permit),
            },
            Err(error) => State::Refused {
                error: Answered::new(refused(
                    error,
                    invocation.context().function_name(),
                    self.max,
                )),
            },
        };
        RefuseOverLimitFuture { state }
    }
}

pin_project! {
    /// The future of [`RefuseOverLimit`].
    #[derive(Debug)]
    pub struct RefuseOverLimitFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project! {
    #[project = StateProjection]
    #[derive(Debug)]
    enum State<F> {
        /// Running, holding a permit until it finishes.
        Admitted { #[pin] future: F, permit: Option<OwnedSemaphorePermit> },
        Refused { error: Answered },
    }
}

impl<F> Future for RefuseOverLimitFuture<F>
where
    F: Future<Output = Result<Response, FunctionError>>,
{
    type Output = Result<Response, FunctionError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProjection::Admitted { future, permit } => {
                let result = ready!(future.poll(cx));
                // The slot frees as the call ends, not when the future is dropped.
                drop(permit.take());
                Poll::Ready(result)
            }
            StateProjection::Refused { error } => error.take(),
        }
    }
}

/// The error of a call of `function` that found no permit under a limit of `max`.
pub(crate) fn refused(error: TryAcquireError, function: &str, max: usize) -> FunctionError {
    match error {
        TryAcquireError::NoPermits => FunctionError::overloaded(format!(
            "function `{function}` is at its limit of {max} calls in flight; try again later"
        )),
        TryAcquireError::Closed => {
            FunctionError::unavailable(format!("function `{function}` no longer accepts calls"))
        }
    }
}

#[cfg(test)]
mod tests {
    use tower::ServiceExt;

    use super::*;
    use crate::{ErrorKind, Function, handler_fn};

    #[tokio::test]
    async fn over_the_limit_is_refused_at_once() {
        let gate = Arc::new(tokio::sync::Notify::new());
        let wait = Arc::clone(&gate);
        let f = handler_fn(move || {
            let wait = Arc::clone(&wait);
            async move { wait.notified().await }
        });
        let layer = RefuseOverLimitLayer::new(1);
        let first = tokio::spawn(
            layer
                .layer(f.clone().into_service())
                .oneshot(Invocation::new("")),
        );
        // Wait until the first call holds the permit.
        while layer.semaphore.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let err = layer
            .layer(f.into_service())
            .oneshot(Invocation::new(""))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Overloaded);
        assert!(err.message().contains("limit of 1"));
        gate.notify_one();
        first.await.unwrap().unwrap();
        assert_eq!(layer.semaphore.available_permits(), 1);
    }

    #[tokio::test]
    async fn closed_semaphore_is_unavailable() {
        let semaphore = Arc::new(Semaphore::new(1));
        semaphore.close();
        let err = RefuseOverLimitLayer::with_semaphore(semaphore, 1)
            .layer(handler_fn(|| async {}).into_service())
            .oneshot(Invocation::new(""))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable);
    }
}
