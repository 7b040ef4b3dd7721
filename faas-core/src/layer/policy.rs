//! [`InvocationPolicyLayer`]: the per-call part of an
//! [`InvocationPolicy`] as one layer, the one the dispatcher stacks.

use std::sync::Arc;

use tower::Layer;

use super::{
    CatchPanic, CatchPanicLayer, InFlightLimit, RefuseOverLimit, RefuseOverLimitLayer, Timeout,
    TimeoutLayer,
};
use crate::policy::InvocationPolicy;

/// The service of [`InvocationPolicyLayer`] around `S`.
pub type InvocationPolicyService<S, L = Arc<InFlightLimit>> =
    RefuseOverLimit<Timeout<CatchPanic<S>>, L>;

/// What an [`InvocationPolicy`] asks of every call, as one layer: outermost
/// first, [`RefuseOverLimitLayer`] (its
/// [`max_in_flight`](InvocationPolicy::max_in_flight)),
/// [`TimeoutLayer`] (its [`timeout`](InvocationPolicy::timeout)) and
/// [`CatchPanicLayer`].
///
/// The [`Dispatcher`](crate::Dispatcher) runs every attempt of every
/// function through it. Retries belong to deliveries: put a
/// [`RetryLayer`](super::RetryLayer) outside it (the dispatcher does for
/// [`Dispatcher::deliver`](crate::Dispatcher::deliver)), or let the source
/// redeliver ([`deliver_once`](crate::trigger::deliver_once)). The body limit
/// is checked before a call is admitted, and the dead letter is written after
/// the last attempt; neither is a step of one call.
///
/// Clones of the layer, and the services it makes, share one in-flight limit.
///
/// ```
/// use std::time::Duration;
/// use faas_core::layer::InvocationPolicyLayer;
/// use faas_core::{handler_fn, ErrorKind, Function, Invocation, InvocationPolicy};
/// use tower::{Layer, ServiceExt};
///
/// let policy = InvocationPolicy::default().with_timeout(Duration::from_millis(10));
/// let slow = handler_fn(|| async { tokio::time::sleep(Duration::from_secs(5)).await });
/// let service = InvocationPolicyLayer::new(&policy).layer(slow.into_service());
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let error = service.oneshot(Invocation::new("")).await.unwrap_err();
/// assert_eq!(error.kind(), ErrorKind::Timeout);
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct InvocationPolicyLayer {
    limit: RefuseOverLimitLayer,
    timeout: TimeoutLayer,
}

impl InvocationPolicyLayer {
    /// The layer of `policy`, with an in-flight limit of its own.
    pub fn new(policy: &InvocationPolicy) -> Self {
        let limit = policy
            .max_in_flight()
            .map_or_else(InFlightLimit::unlimited, InFlightLimit::new);
        InvocationPolicyLayer::with_limiter(policy, Arc::new(limit))
    }

    /// The layer of `policy`, counting calls in flight in `limiter` (e.g. a
    /// [`RegisteredFunction::limiter`](crate::RegisteredFunction::limiter), so
    /// that every host calling the function shares its limit); the limit is
    /// `limiter`'s, not the policy's.
    pub fn with_limiter(policy: &InvocationPolicy, limiter: Arc<InFlightLimit>) -> Self {
        InvocationPolicyLayer {
            limit: RefuseOverLimitLayer::with_limit(limiter),
            timeout: TimeoutLayer::new(policy.timeout()),
        }
    }
}

impl InvocationPolicyLayer {
    /// The policy's stack around `inner`, counting its calls in this layer's
    /// limit borrowed rather than shared: for one call of a function whose
    /// layer outlives the call, which saves the reference counts of an `Arc`.
    pub fn layer_borrowing<S>(&self, inner: S) -> InvocationPolicyService<S, &InFlightLimit> {
        RefuseOverLimitLayer::borrowing(self.limit.limit())
            .layer(self.timeout.layer(CatchPanicLayer::new().layer(inner)))
    }
}

impl<S> Layer<S> for InvocationPolicyLayer {
    type Service = InvocationPolicyService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        self.limit
            .layer(self.timeout.layer(CatchPanicLayer::new().layer(inner)))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use tower::{Service, ServiceExt};

    use super::*;
    use crate::{Context, ErrorKind, Function, Invocation, handler_fn};

    #[tokio::test]
    async fn a_panic_inside_is_caught_and_frees_its_slot() {
        let policy = InvocationPolicy::default().with_max_in_flight(1);
        let limiter = Arc::new(InFlightLimit::new(1));
        let layer = InvocationPolicyLayer::with_limiter(&policy, Arc::clone(&limiter));
        let fragile = handler_fn(|body: String| async move {
            assert!(body != "boom", "boom");
            body
        });
        let service = layer.layer(fragile.into_service());
        let invocation = Invocation::new("boom").with_context(Context::new("fragile"));
        let error = service.clone().oneshot(invocation).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Panicked);
        assert!(error.message().contains("`fragile` panicked"), "{error}");
        assert_eq!(limiter.available(), 1);
        let answer = service.oneshot(Invocation::new("fine")).await.unwrap();
        assert_eq!(answer.body(), "fine");
    }

    #[tokio::test(start_paused = true)]
    async fn past_the_deadline_the_handler_is_dropped_and_its_slot_freed() {
        struct DroppedFlag(Arc<AtomicBool>);
        impl Drop for DroppedFlag {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&dropped);
        let policy = InvocationPolicy::default()
            .with_max_in_flight(1)
            .with_timeout(std::time::Duration::from_secs(1));
        let layer = InvocationPolicyLayer::new(&policy);
        let slow = handler_fn(move || {
            let guard = DroppedFlag(Arc::clone(&flag));
            async move {
                let _guard = guard;
                std::future::pending::<()>().await;
            }
        });
        let mut service = layer.layer(slow.into_service());
        let call = service.call(Invocation::new(""));
        let mut call = std::pin::pin!(call);
        let error = (&mut call).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Timeout);
        assert!(
            dropped.load(Ordering::SeqCst),
            "the handler is dropped at the deadline, before its future is"
        );
        let next = layer
            .layer(handler_fn(|| async { "next" }).into_service())
            .oneshot(Invocation::new(""))
            .await
            .unwrap();
        assert_eq!(next.body(), "next", "the timed-out call freed its slot");
    }
}
