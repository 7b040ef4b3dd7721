//! [`RetryLayer`]: more attempts after a retryable failure, with exponential
//! backoff and jitter.

use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use futures::FutureExt as _;
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt};

use super::LayerFuture;
use crate::error::FunctionError;
use crate::invocation::Invocation;
use crate::output::Response;
use crate::policy::RetryPolicy;

/// Retries per a [`RetryPolicy`].
///
/// Attempt numbers continue from the invocation's
/// [`Context::attempt`](crate::Context::attempt), so a source that redelivers can
/// say how many deliveries came before and the policy bounds them all. Each
/// attempt sees its number in its context. Retrying stops early when the
/// context's deadline would pass during the backoff or its cancellation token is
/// cancelled (the host is shutting down); the last error is returned.
#[derive(Debug, Clone)]
pub struct RetryLayer {
    policy: Arc<RetryPolicy>,
}

impl RetryLayer {
    /// Retries per `policy`.
    pub fn new(policy: RetryPolicy) -> Self {
        RetryLayer {
            policy: Arc::new(policy),
        }
    }
}

impl<S> Layer<S> for RetryLayer {
    type Service = Retry<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Retry {
            inner,
            policy: Arc::clone(&self.policy),
        }
    }
}

/// The service of [`RetryLayer`].
#[derive(Debug, Clone)]
pub struct Retry<S> {
    inner: S,
    policy: Arc<RetryPolicy>,
}

/// The end of a retried call: its result, the number of the last attempt, and why
/// retrying ended.
#[derive(Debug)]
#[non_exhaustive]
pub struct RetryOutcome {
    /// The last attempt's result.
    pub result: Result<Response, FunctionError>,
    /// The number of the last attempt (1-based).
    pub attempts: u32,
    /// True when retrying stopped because the call was cancelled, not because the
    /// policy gave up: the failure is not final.
    pub cancelled: bool,
}

impl<S> Retry<S>
where
    S: Service<Invocation, Response = Response, Error = FunctionError> + Clone,
{
    /// Runs the attempts and reports how it ended.
    ///
    /// Each attempt calls a clone of the inner service, once it is ready.
    pub fn call_with_outcome(
        &self,
        invocation: Invocation,
    ) -> impl Future<Output = RetryOutcome> + use<S> {
        let inner = self.inner.clone();
        let policy = Arc::clone(&self.policy);
        async move { retrying(&policy, invocation, move |this| inner.clone().oneshot(this)).await }
    }
}

/// Runs `attempt` on copies of `invocation` until one succeeds or `policy` gives
/// up: the loop of [`Retry`].
///
/// Each copy carries its attempt number. Between attempts it waits the policy's
/// backoff, unless the context's deadline would pass meanwhile or its token is
/// cancelled.
#[allow(
    clippy::manual_async_fn,
    reason = "an `async fn` would keep a second copy of the invocation in its future"
)]
fn retrying<'a, F, Fut>(
    policy: &'a RetryPolicy,
    invocation: Invocation,
    mut attempt_once: F,
) -> impl Future<Output = RetryOutcome> + 'a
where
    F: FnMut(Invocation) -> Fut + 'a,
    Fut: Future<Output = Result<Response, FunctionError>>,
{
    async move {
        let mut attempt = invocation.context().attempt();
        loop {
            let mut this = invocation.clone();
            this.context_mut().set_attempt(attempt);
            let error = match attempt_once(this).await {
                Ok(response) => {
                    return RetryOutcome {
                        result: Ok(response),
                        attempts: attempt,
                        cancelled: false,
                    };
                }
                Err(error) => error,
            };
            let context = invocation.context();
            if context.is_cancelled() {
                return RetryOutcome {
                    result: Err(error),
                    attempts: attempt,
                    cancelled: true,
                };
            }
            if !policy.should_retry(&error, attempt) {
                return RetryOutcome {
                    result: Err(error),
                    attempts: attempt,
                    cancelled: false,
                };
            }
            let delay = policy.backoff(attempt);
            if context
                .deadline()
                .is_some_and(|deadline| Instant::now() + delay >= deadline)
            {
                return RetryOutcome {
                    result: Err(error),
                    attempts: attempt,
                    cancelled: false,
                };
            }
            tracing::debug!(
                function = context.function_name(),
                call_id = %context.call_id(),
                attempt,
                ?delay,
                %error,
                "retrying"
            );
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = context.cancellation().cancelled() => {
                    return RetryOutcome { result: Err(error), attempts: attempt, cancelled: true };
                }
            }
            attempt += 1;
        }
    }
}

impl<S> Service<Invocation> for Retry<S>
where
    S: Service<Invocation, Response = Response, Error = FunctionError> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = FunctionError;
    type Future = LayerFuture;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Result<(), FunctionError>> {
        // Each attempt waits for its own clone of the inner service to be ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, invocation: Invocation) -> Self::Future {
        Box::pin(
            self.call_with_outcome(invocation)
                .map(|outcome| outcome.result),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::{Context, ErrorKind, Function, handler_fn};

    fn flaky(fail_until: u32) -> (impl Function + Clone, Arc<AtomicU32>) {
        let calls = Arc::new(AtomicU32::new(0));
        let seen = Arc::clone(&calls);
        let f = handler_fn(move |ctx: Context| {
            let seen = Arc::clone(&seen);
            async move {
                let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
                assert_eq!(ctx.attempt(), n);
                if n < fail_until {
                    Err(FunctionError::internal(format!("attempt {n} failed")))
                } else {
                    Ok(format!("attempt {n}"))
                }
            }
        });
        (f, calls)
    }

    #[tokio::test(start_paused = true)]
    async fn reaches_success() {
        let (f, calls) = flaky(3);
        let retry = RetryLayer::new(RetryPolicy::new(5)).layer(f.into_service());
        let outcome = retry.call_with_outcome(Invocation::new("")).await;
        assert_eq!(outcome.attempts, 3);
        assert_eq!(outcome.result.unwrap().body(), "attempt 3");
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_max_attempts() {
        let (f, calls) = flaky(u32::MAX);
        let mut retry = RetryLayer::new(RetryPolicy::new(4)).layer(f.into_service());
        let err = retry.call(Invocation::new("")).await.unwrap_err();
        assert_eq!(err.message(), "attempt 4 failed");
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn does_not_retry_bad_input() {
        let calls = Arc::new(AtomicU32::new(0));
        let seen = Arc::clone(&calls);
        let f = handler_fn(move || {
            seen.fetch_add(1, Ordering::SeqCst);
            async { Err::<(), _>(FunctionError::bad_input("no")) }
        });
        let outcome = RetryLayer::new(RetryPolicy::new(5))
            .layer(f.into_service())
            .call_with_outcome(Invocation::new(""))
            .await;
        assert_eq!(outcome.attempts, 1);
        assert_eq!(outcome.result.unwrap_err().kind(), ErrorKind::BadInput);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn cancellation_stops_retrying() {
        let (f, calls) = flaky(u32::MAX);
        let token = CancellationToken::new();
        let policy = RetryPolicy::new(10)
            .with_initial_backoff(Duration::from_secs(60))
            .with_jitter(0.0);
        let retry = RetryLayer::new(policy).layer(f.into_service());
        let invocation =
            Invocation::new("").with_context(Context::new("f").with_cancellation(token.clone()));
        let running = tokio::spawn(retry.call_with_outcome(invocation));
        while calls.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        token.cancel();
        let outcome = running.await.unwrap();
        assert!(outcome.cancelled);
        assert_eq!(outcome.attempts, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn deadline_stops_retrying() {
        let (f, calls) = flaky(u32::MAX);
        let policy = RetryPolicy::new(10)
            .with_initial_backoff(Duration::from_secs(5))
            .with_jitter(0.0);
        let invocation = Invocation::new("")
            .with_context(Context::new("f").with_timeout(Duration::from_secs(12)));
        let outcome = RetryLayer::new(policy)
            .layer(f.into_service())
            .call_with_outcome(invocation)
            .await;
        // Attempts at t=0 and t=5; the next backoff (10 s) would pass the deadline.
        assert_eq!(outcome.attempts, 2);
        assert!(!outcome.cancelled);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}
