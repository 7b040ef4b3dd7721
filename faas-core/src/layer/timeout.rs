//! [`TimeoutLayer`]: the call's deadline; past it the handler is dropped and its
//! context's cancellation token cancelled.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, ready};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tower::{Layer, Service};

use crate::cancellation::CallCancellation;
use crate::error::FunctionError;
use crate::invocation::Invocation;
use crate::output::Response;

/// Enforces a deadline: the policy's timeout from the start of the call, or the
/// context's own deadline when that comes earlier.
///
/// The call gets a cancellation token of its own (a child of its context's)
/// and sees the effective deadline in
/// [`Context::deadline`](crate::Context::deadline). When the deadline passes,
/// the inner future is dropped, the token is cancelled (so work the handler
/// spawned can stop too) and the call fails with
/// [`Timeout`](crate::ErrorKind::Timeout).
///
/// The inner future is polled before the timer: a call that finishes on its
/// first poll never registers one.
#[derive(Debug, Clone, Copy)]
pub struct TimeoutLayer {
    timeout: Option<Duration>,
}

impl TimeoutLayer {
    /// A deadline `timeout` after the call starts; `None` keeps only the context's deadline.
    pub fn new(timeout: Option<Duration>) -> Self {
        TimeoutLayer { timeout }
    }
}

impl<S> Layer<S> for TimeoutLayer {
    type Service = Timeout<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Timeout {
            inner,
            timeout: self.timeout,
        }
    }
}

/// The service of [`TimeoutLayer`].
#[derive(Debug, Clone)]
pub struct Timeout<S> {
    inner: S,
    timeout: Option<Duration>,
}

impl<S> Service<Invocation> for Timeout<S>
where
    S: Service<Invocation, Response = Response, Error = FunctionError>,
{
    type Response = Response;
    type Error = FunctionError;
    type Future = TimeoutFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), FunctionError>> {
        self.inner.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, mut invocation: Invocation) -> Self::Future {
        let context = invocation.context_mut();
        let deadline = match (self.timeout, context.deadline()) {
            // Nothing to enforce: no clock read, no token.
            (None, None) => None,
            (timeout, theirs) => {
                // The attempt's start when its host noted it (the dispatcher
                // does), else now.
                let start = context.take_started().unwrap_or_else(Instant::now);
                effective_deadline(start, timeout, theirs).map(|at| {
                    context.set_deadline(Some(at));
                    Deadline {
                        at,
                        start,
                        cancellation: context.start_call(),
                        function: context.shared_function_name().cloned(),
                        timer: None,
                    }
                })
            }
        };
        TimeoutFuture {
            inner: Some(self.inner.call(invocation)),
            deadline,
        }
    }
}

/// What a call with a deadline keeps to enforce it.
#[derive(Debug)]
struct Deadline {
    at: Instant,
    start: Instant,
    cancellation: CallCancellation,
    function: Option<Arc<str>>,
    /// Made when the first poll leaves the call pending.
    timer: Option<Pin<Box<Sleep>>>,
}

pin_project! {
    /// The future of [`Timeout`].
    #[derive(Debug)]
    pub struct TimeoutFuture<F> {
        #[pin]
        inner: Option<F>,
        deadline: Option<Deadline>,
    }
}

impl<F> Future for TimeoutFuture<F>
where
    F: Future<Output = Result<Response, FunctionError>>,
{
    type Output = Result<Response, FunctionError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let Some(inner) = this.inner.as_mut().as_pin_mut() else {
            return Poll::Ready(Err(FunctionError::internal(
                "a timed-out call was polled again",
            )));
        };
        if let Poll::Ready(result) = inner.poll(cx) {
            return Poll::Ready(result);
        }
        let Some(deadline) = this.deadline else {
            return Poll::Pending;
        };
        let at = deadline.at;
        let timer = deadline
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        ready!(timer.as_mut().poll(cx));
        // Past the deadline: drop the handler now, and tell what it spawned.
        this.inner.set(None);
        deadline.cancellation.cancel();
        Poll::Ready(Err(timed_out(
            deadline.function.as_deref().unwrap_or_default(),
            deadline.start,
            at,
        )))
    }
}

/// The deadline of a call starting at `start`: `timeout` after it, or the
/// context's own deadline when that comes first.
pub(crate) fn effective_deadline(
    start: Instant,
    timeout: Option<Duration>,
    context_deadline: Option<Instant>,
) -> Option<Instant> {
    match (timeout.map(|timeout| start + timeout), context_deadline) {
        (Some(ours), Some(theirs)) => Some(ours.min(theirs)),
        (ours, theirs) => ours.or(theirs),
    }
}

/// The error of a call of `function` that started at `start` and was still
/// running at `deadline`.
pub(crate) fn timed_out(function: &str, start: Instant, deadline: Instant) -> FunctionError {
    let allowed = deadline.saturating_duration_since(start);
    FunctionError::timeout(format!(
        "function `{function}` did not finish within its deadline of {}",
        humantime::format_duration(allowed)
    ))
}

#[cfg(test)]
mod tests {
    use tokio_util::sync::CancellationToken;
    use tower::ServiceExt;

    use super::*;
    use crate::{Context, ErrorKind, Function, handler_fn};

    #[tokio::test(start_paused = true)]
    async fn slow_call_times_out_and_is_cancelled() {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let tx = std::sync::Arc::new(std::sync::Mutex::new(Some(tx)));
        let slow = handler_fn(move |ctx: Context| {
            let token = ctx.cancellation().clone();
            if let Some(tx) = tx.lock().unwrap().take() {
                tx.send(token).unwrap();
            }
            async move {
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
        });
        let caller_token = CancellationToken::new();
        let invocation = Invocation::new("")
            .with_context(Context::new("slow").with_cancellation(caller_token.clone()));
        let err = TimeoutLayer::new(Some(Duration::from_secs(1)))
            .layer(slow.into_service())
            .oneshot(invocation)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
        assert!(err.message().contains("1s"), "{}", err.message());
        assert!(rx.await.unwrap().is_cancelled());
        assert!(
            !caller_token.is_cancelled(),
            "only the call's own token is cancelled"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn earlier_context_deadline_wins() {
        let f = handler_fn(|ctx: Context| async move { format!("{:?}", ctx.remaining().unwrap()) });
        let invocation = Invocation::new("")
            .with_context(Context::new("f").with_timeout(Duration::from_secs(2)));
        let response = TimeoutLayer::new(Some(Duration::from_secs(30)))
            .layer(f.into_service())
            .oneshot(invocation)
            .await
            .unwrap();
        assert_eq!(response.body(), "2s");
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_counts_from_the_start_the_host_noted_once() {
        let f = handler_fn(|ctx: Context| async move { format!("{:?}", ctx.remaining().unwrap()) });
        let layer = TimeoutLayer::new(Some(Duration::from_secs(30)));
        let mut invocation = Invocation::new("");
        invocation
            .context_mut()
            .set_started(Instant::now() - Duration::from_secs(10));
        let response = layer
            .layer(f.clone().into_service())
            .oneshot(invocation)
            .await
            .unwrap();
        assert_eq!(response.body(), "20s", "counted from the noted start");

        // Taken by the first deadline layer: a second one reads the clock.
        let mut invocation = Invocation::new("");
        invocation
            .context_mut()
            .set_started(Instant::now() - Duration::from_secs(10));
        let inner = layer.layer(f.into_service());
        let response = TimeoutLayer::new(Some(Duration::from_secs(5)))
            .layer(inner)
            .oneshot(invocation)
            .await
            .unwrap();
        assert_eq!(
            response.body(),
            "0ns",
            "the outer layer's 5s from a start 10s ago has passed"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn no_deadline_runs_to_completion() {
        let f = handler_fn(|| async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            "done"
        });
        let response = TimeoutLayer::new(None)
            .layer(f.into_service())
            .oneshot(Invocation::new(""))
            .await
            .unwrap();
        assert_eq!(response.body(), "done");
    }
}
