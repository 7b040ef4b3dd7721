//! [`RefuseOverLimitLayer`]: at most N calls at once; one more is refused at
//! once with `Overloaded`, never queued.
//!
//! Named apart from tower's `ConcurrencyLimit`, which makes a call over the
//! limit wait for a permit: a function host would rather answer 429 at once
//! and let the caller (or the source that redelivers) decide.

use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context as TaskContext, Poll, ready};

use pin_project_lite::pin_project;
use tower::{Layer, Service};

use super::Answered;
use crate::error::FunctionError;
use crate::invocation::Invocation;
use crate::output::Response;

/// How many calls run under a limit, against its maximum: the count that the
/// clones of a [`RefuseOverLimitLayer`] share, and (through
/// [`RegisteredFunction::limiter`](crate::RegisteredFunction::limiter)) every
/// host calling one registered function.
///
/// A counter, not a semaphore: a call over the limit is refused, never
/// queued, so no call ever waits for a slot, and taking one and giving it
/// back is one atomic operation each (a semaphore's release takes the lock
/// of its waiters' queue, some 100 instructions a call more, counted with
/// callgrind on B2).
///
/// ```
/// use std::sync::Arc;
/// use faas_core::layer::InFlightLimit;
///
/// let limit = Arc::new(InFlightLimit::new(2));
/// assert_eq!((limit.max(), limit.in_flight(), limit.available()), (2, 0, 2));
/// ```
#[derive(Debug)]
pub struct InFlightLimit {
    max: usize,
    in_flight: AtomicUsize,
}

impl InFlightLimit {
    /// At most `max` calls at once.
    pub fn new(max: usize) -> Self {
        InFlightLimit {
            max,
            in_flight: AtomicUsize::new(0),
        }
    }

    /// No limit (`usize::MAX` calls); calls are still counted.
    pub fn unlimited() -> Self {
        InFlightLimit::new(usize::MAX)
    }

    /// The most calls that run at once.
    pub fn max(&self) -> usize {
        self.max
    }

    /// How many calls run now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// How many more calls would be taken now.
    pub fn available(&self) -> usize {
        self.max.saturating_sub(self.in_flight())
    }

    /// A slot for one call under `limit`, held until the slot drops; `None`
    /// at the limit.
    fn try_take<L: Deref<Target = InFlightLimit> + Clone>(limit: &L) -> Option<InFlightSlot<L>> {
        let before = limit.in_flight.fetch_add(1, Ordering::AcqRel);
        if before >= limit.max {
            limit.in_flight.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(InFlightSlot {
            limit: limit.clone(),
        })
    }
}

/// One call counted in an [`InFlightLimit`] until it drops.
#[derive(Debug)]
struct InFlightSlot<L: Deref<Target = InFlightLimit>> {
    limit: L,
}

impl<L: Deref<Target = InFlightLimit>> Drop for InFlightSlot<L> {
    fn drop(&mut self) {
        self.limit.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Limits calls in flight. A call over the limit fails at once with
/// [`Overloaded`](crate::ErrorKind::Overloaded) (429): the caller, or the
/// trigger's source, decides whether to try again; nothing waits in a queue.
///
/// Clones of the layer and of its services share one [`InFlightLimit`],
/// held as `L`: an `Arc` by default, or a reference where the limit outlives
/// the services (a host calling a registered function for one call does
/// without the two reference counts an `Arc` costs a call).
#[derive(Debug, Clone)]
pub struct RefuseOverLimitLayer<L = Arc<InFlightLimit>> {
    limit: L,
}

impl<'a> RefuseOverLimitLayer<&'a InFlightLimit> {
    /// A layer counting its calls in `limit`, borrowed.
    pub fn borrowing(limit: &'a InFlightLimit) -> Self {
        RefuseOverLimitLayer { limit }
    }
}

impl RefuseOverLimitLayer {
    /// At most `max` calls at once.
    pub fn new(max: usize) -> Self {
        RefuseOverLimitLayer::with_limit(Arc::new(InFlightLimit::new(max)))
    }

    /// A layer counting its calls in `limit`, shared with other holders (e.g. a
    /// registered function's [`limiter`](crate::RegisteredFunction::limiter)).
    pub fn with_limit(limit: Arc<InFlightLimit>) -> Self {
        RefuseOverLimitLayer { limit }
    }

    /// The count this layer's calls are held in.
    pub fn limit(&self) -> &Arc<InFlightLimit> {
        &self.limit
    }
}

impl<S, L: Clone> Layer<S> for RefuseOverLimitLayer<L> {
    type Service = RefuseOverLimit<S, L>;

    fn layer(&self, inner: S) -> Self::Service {
        RefuseOverLimit {
            inner,
            limit: self.limit.clone(),
        }
    }
}

/// The service of [`RefuseOverLimitLayer`].
#[derive(Debug, Clone)]
pub struct RefuseOverLimit<S, L = Arc<InFlightLimit>> {
    inner: S,
    limit: L,
}

impl<S, L> Service<Invocation> for RefuseOverLimit<S, L>
where
    S: Service<Invocation, Response = Response, Error = FunctionError>,
    L: Deref<Target = InFlightLimit> + Clone,
{
    type Response = Response;
    type Error = FunctionError;
    type Future = RefuseOverLimitFuture<S::Future, L>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), FunctionError>> {
        self.inner.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, invocation: Invocation) -> Self::Future {
        let state = match InFlightLimit::try_take(&self.limit) {
            Some(slot) => State::Admitted {
                future: self.inner.call(invocation),
                slot: Some(slot),
            },
            None => State::Refused {
                error: Answered::new(refused(
                    invocation.context().function_name(),
                    self.limit.max,
                )),
            },
        };
        RefuseOverLimitFuture { state }
    }
}

pin_project! {
    /// The future of [`RefuseOverLimit`].
    #[derive(Debug)]
    pub struct RefuseOverLimitFuture<F, L = Arc<InFlightLimit>>
    where
        L: Deref<Target = InFlightLimit>,
    {
        #[pin]
        state: State<F, L>,
    }
}

pin_project! {
    #[project = StateProjection]
    #[derive(Debug)]
    enum State<F, L>
    where
        L: Deref<Target = InFlightLimit>,
    {
        /// Running, counted until it finishes.
        Admitted { #[pin] future: F, slot: Option<InFlightSlot<L>> },
        Refused { error: Answered },
    }
}

impl<F, L> Future for RefuseOverLimitFuture<F, L>
where
    F: Future<Output = Result<Response, FunctionError>>,
    L: Deref<Target = InFlightLimit>,
{
    type Output = Result<Response, FunctionError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProjection::Admitted { future, slot } => {
                let result = ready!(future.poll(cx));
                // The slot frees as the call ends, not when the future is dropped.
                drop(slot.take());
                Poll::Ready(result)
            }
            StateProjection::Refused { error } => error.take(),
        }
    }
}

/// The error of a call of `function` refused under a limit of `max`.
fn refused(function: &str, max: usize) -> FunctionError {
    FunctionError::overloaded(format!(
        "function `{function}` is at its limit of {max} calls in flight; try again later"
    ))
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
        // Wait until the first call holds the slot.
        while layer.limit().available() > 0 {
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
        assert_eq!(layer.limit().available(), 1);
        assert_eq!(layer.limit().in_flight(), 0);
    }

    #[tokio::test]
    async fn a_shared_limit_counts_the_calls_of_every_holder() {
        let limit = Arc::new(InFlightLimit::new(1));
        let gate = Arc::new(tokio::sync::Notify::new());
        let wait = Arc::clone(&gate);
        let slow = handler_fn(move || {
            let wait = Arc::clone(&wait);
            async move { wait.notified().await }
        });
        let first = tokio::spawn(
            RefuseOverLimitLayer::with_limit(Arc::clone(&limit))
                .layer(slow.into_service())
                .oneshot(Invocation::new("")),
        );
        while limit.in_flight() == 0 {
            tokio::task::yield_now().await;
        }
        let err = RefuseOverLimitLayer::with_limit(Arc::clone(&limit))
            .layer(handler_fn(|| async {}).into_service())
            .oneshot(Invocation::new(""))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Overloaded);
        assert_eq!(limit.in_flight(), 1, "a refused call takes no slot");
        gate.notify_one();
        first.await.unwrap().unwrap();
        assert_eq!(limit.in_flight(), 0);
    }
}
