//! [`Trigger`]: a source of invocations (HTTP, a schedule, a queue, ...), driven by
//! a host, that hands each event to a [`Dispatcher`].

#[cfg(feature = "local")]
mod attempt;
mod delivery;
#[cfg(feature = "local")]
mod dispatcher;
mod lag;

#[cfg(feature = "local")]
use async_trait::async_trait;
#[cfg(feature = "local")]
use tokio_util::sync::CancellationToken;

pub use delivery::Delivery;
#[cfg(feature = "local")]
pub use dispatcher::Dispatcher;
pub use lag::{Lag, LagSource};

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
/// - a source that can redeliver (a queue, a database, storage notifications)
///   uses [`Dispatcher::deliver`], which retries per the function's policy and
///   dead-letters after the last attempt. The trigger acknowledges the message
///   only when [`Delivery::should_ack`] (it succeeded, or it is safe in the dead
///   letter) and negatively acknowledges it otherwise, so the source redelivers it:
///   never lose a message.
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
