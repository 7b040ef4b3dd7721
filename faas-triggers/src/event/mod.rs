//! What the event sources (NATS JetStream, Redis Streams, PostgreSQL,
//! storage, Kubernetes) share: how a received message becomes a call, is
//! settled, and how a source waits for its server.
//!
//! Every source makes one attempt per delivery with
//! [`faas_core::trigger::deliver_once`], through an
//! [`Invoker`](faas_core::trigger::Invoker) (the host's dispatcher unless
//! one was configured, such as a [`GatewayInvoker`](crate::gateway::GatewayInvoker)),
//! and applies the resulting [`Settlement`](faas_core::trigger::Settlement)
//! to the message. Each event reaches the function as a CloudEvent in binary
//! mode, whose id is stable across redeliveries and is also the call's id.

#[cfg(any(
    feature = "nats",
    feature = "redis",
    feature = "postgres",
    feature = "kube"
))]
mod backoff;
mod invocation;
#[cfg(any(feature = "nats", feature = "redis", feature = "postgres"))]
pub(crate) mod settings;
#[cfg(any(feature = "nats", feature = "redis", feature = "postgres"))]
pub(crate) mod source;

#[cfg(any(
    feature = "nats",
    feature = "redis",
    feature = "postgres",
    feature = "kube"
))]
pub(crate) use backoff::Reconnect;
pub(crate) use invocation::{event_invocation, with_payload};

use std::sync::Arc;

use faas_core::Dispatcher;
use faas_core::trigger::Invoker;
#[cfg(any(
    feature = "nats",
    feature = "redis",
    feature = "postgres",
    feature = "storage"
))]
use {
    faas_core::Invocation,
    faas_core::trigger::{DeadLetterRoute, Delivery, Settle, deliver_once, in_progress_while},
    std::time::Duration,
};

#[cfg(any(
    feature = "nats",
    feature = "redis",
    feature = "postgres",
    feature = "storage"
))]
/// Waits for one free in-flight slot, then takes as many more as are free,
/// up to `batch` in all: what one read from the source may ask for.
pub(crate) async fn take_slots(
    slots: &Arc<tokio::sync::Semaphore>,
    batch: usize,
) -> tokio::sync::OwnedSemaphorePermit {
    let mut permits = Arc::clone(slots)
        .acquire_owned()
        .await
        .expect("the in-flight semaphore is never closed");
    let extra = slots.available_permits().min(batch.saturating_sub(1));
    if let Some(more) = u32::try_from(extra)
        .ok()
        .filter(|extra| *extra > 0)
        .and_then(|extra| Arc::clone(slots).try_acquire_many_owned(extra).ok())
    {
        permits.merge(more);
    }
    permits
}

/// The error of a bad setting `key` = `value`.
pub(crate) fn invalid(key: &str, value: &str, reason: impl Into<String>) -> crate::Error {
    crate::Error::InvalidConfig {
        key: key.to_owned(),
        value: value.to_owned(),
        reason: reason.into(),
    }
}

/// The invoker a source calls through: the configured one, else the host's
/// dispatcher.
pub(crate) fn invoker_or(
    configured: Option<&Arc<dyn Invoker>>,
    dispatcher: &Dispatcher,
) -> Arc<dyn Invoker> {
    configured
        .cloned()
        .unwrap_or_else(|| Arc::new(dispatcher.clone()))
}

#[cfg(any(
    feature = "nats",
    feature = "redis",
    feature = "postgres",
    feature = "storage"
))]
/// One delivery of a received message: the call (with the source told it is
/// in progress every `in_progress` while it runs), then the settlement.
///
/// A failure to settle is logged: the source redelivers the message, which
/// at-least-once allows.
pub(crate) async fn deliver<S: Settle + ?Sized>(
    invoker: &dyn Invoker,
    function: &str,
    invocation: Invocation,
    message: &S,
    in_progress: Option<Duration>,
    route: DeadLetterRoute<'_>,
) -> Delivery {
    let delivery = in_progress_while(
        deliver_once(invoker, function, invocation, route),
        in_progress,
        message,
    )
    .await;
    if let Err(error) = message.settle(delivery.settlement()).await {
        tracing::warn!(
            function,
            call_id = %delivery.call_id(),
            settlement = ?delivery.settlement(),
            %error,
            "could not settle a message; its source will deliver it again"
        );
    }
    delivery
}
