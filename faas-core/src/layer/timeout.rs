//! [`TimeoutLayer`]: the call's deadline; past it the handler is dropped and its
//! context's cancellation token cancelled.

use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use tokio::time::Instant;
use tower::{Layer, Service};

use super::LayerFuture;
use crate::error::FunctionError;
use crate::invocation::Invocation;
use crate::output::Response;

/// Enforces a deadline: the policy's timeout from the start of the call, or the
/// context's own deadline when that comes earlier.
///
/// The call gets a child of its context's cancellation token and sees the
/// effective deadline in [`Context::deadline`](crate::Context::deadline). When
/// the deadline passes, the inner future is dropped, the token is cancelled (so
/// work the handler spawned can stop too) and the call fails with
/// [`Timeout`](crate::ErrorKind::Timeout).
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
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = FunctionError;
    type Future = LayerFuture;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), FunctionError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut invocation: Invocation) -> Self::Future {
        let start = Instant::now();
        let context = invocation.context_mut();
        let deadline = effective_deadline(start, self.timeout, context.deadline());
        let cancellation = context.start_call();
        context.set_deadline(deadline);
        let function = context.function_name().to_owned();
        let future = self.inner.call(invocation);
        Box::pin(async move {
            within(deadline, future).await.unwrap_or_else(|deadline| {
                cancellation.cancel();
                Err(timed_out(&function, start, deadline))
            })
        })
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

/// Runs `future` until `deadline`; `Err(deadline)` when the deadline passed
/// first (the future is dropped then).
///
/// The future is polled once before any timer exists: a call that finishes at
/// once never registers one.
pub(crate) async fn within<F: Future>(
    deadline: Option<Instant>,
    future: F,
) -> Result<F::Output, Instant> {
    let mut future = std::pin::pin!(future);
    if let Poll::Ready(output) =
        std::future::poll_fn(|cx| Poll::Ready(future.as_mut().poll(cx))).await
    {
        return Ok(output);
    }
    match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, future)
            .await
            .map_err(|_| deadline),
        None => Ok(future.await),
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
