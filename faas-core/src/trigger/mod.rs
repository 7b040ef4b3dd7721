//! [`Trigger`]: a source of invocations (HTTP, a schedule, a queue, ...), driven by
//! a host, that hands each event to a [`Dispatcher`].

#[cfg(feature = "local")]
mod attempt;
mod delivery;
#[cfg(feature = "local")]
mod dispatcher;
mod invoker;
mod lag;
mod readiness;
mod settle;

#[cfg(feature = "local")]
use async_trait::async_trait;
#[cfg(feature = "local")]
use tokio_util::sync::CancellationToken;

pub use delivery::{DeadLetterRoute, Delivery, deliver_once};
#[cfg(feature = "local")]
pub use dispatcher::Dispatcher;
pub use invoker::Invoker;
pub use lag::{Lag, LagSource};
pub use readiness::Readiness;
pub use settle::{Settle, Settlement, in_progress_while};

#[cfg(feature = "local")]
use crate::error::Error;

/// A source of invocations.
///
/// A host calls [`run`](Self::run) once, on its own task, with a [`Dispatcher`]
/// and a shutdown token. The trigger turns each event into an
/// [`Invocation`](crate::Invocation) and hands it over:
///
/// - a caller that waits for the answer (HTTP) uses
///   [`Dispatcher::dispatch`]: one attempt, under the function's deadline,
///   in-flight limit and panic isolation;
/// - a source that redelivers by itself (a broker, a table, a watched
///   directory) makes one attempt per delivery with [`deliver_once`], through
///   any [`Invoker`] (the dispatcher, or the gateway of a cluster), with the
///   source's delivery count as the attempt number, and applies the
///   [`Settlement`] through its [`Settle`] handle: ack after success, nack
///   with the policy's backoff as the redelivery delay, terminate once the
///   message is safe in the dead letter. The back-off is the broker's; nothing
///   sleeps while holding a message;
/// - a source that cannot redeliver (an in-memory queue) uses
///   [`Dispatcher::deliver`], which retries in-process per the function's
///   policy and dead-letters after the last attempt. The trigger acknowledges
///   the message only when [`Delivery::should_ack`] (it succeeded, or it is
///   safe in the dead letter): never lose a message.
///
/// When `shutdown` is cancelled, the trigger stops taking new events, lets the
/// calls it started finish (the host bounds that by its grace period) and returns.
///
/// ```
/// use async_trait::async_trait;
/// use faas_core::{Dispatcher, Error, Invocation, Trigger};
/// use tokio::sync::mpsc;
/// use tokio_util::sync::CancellationToken;
///
/// /// Delivers each message of a channel to one function.
/// struct ChannelTrigger {
///     function: String,
///     messages: mpsc::Receiver<String>,
///     nacked: mpsc::Sender<String>,
/// }
///
/// #[async_trait]
/// impl Trigger for ChannelTrigger {
///     fn name(&self) -> &str {
///         "channel"
///     }
///
///     async fn run(mut self: Box<Self>, dispatcher: Dispatcher, shutdown: CancellationToken) -> Result<(), Error> {
///         loop {
///             let message = tokio::select! {
///                 () = shutdown.cancelled() => return Ok(()),
///                 message = self.messages.recv() => match message {
///                     Some(message) => message,
///                     None => return Ok(()),
///                 },
///             };
///             let delivery = dispatcher.deliver(&self.function, Invocation::new(message.clone())).await;
///             if !delivery.should_ack() {
///                 // Hand it back to the source for a later redelivery.
///                 self.nacked.send(message).await.map_err(|e| Error::trigger("channel", e))?;
///             }
///         }
///     }
/// }
/// ```
#[cfg(feature = "local")]
#[async_trait]
pub trait Trigger: Send + 'static {
    /// The trigger's name, for logs and errors.
    fn name(&self) -> &str;

    /// Runs until `shutdown` is cancelled or the source ends.
    ///
    /// # Errors
    ///
    /// When the source fails in a way the trigger cannot recover from
    /// (use [`Error::trigger`]).
    async fn run(
        self: Box<Self>,
        dispatcher: Dispatcher,
        shutdown: CancellationToken,
    ) -> Result<(), Error>;
}
