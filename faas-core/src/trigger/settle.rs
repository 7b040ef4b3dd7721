//! [`Settlement`] and [`Settle`]: how a message that a broker can redeliver
//! ends, in the terms brokers understand.

use std::future::Future;
use std::pin::pin;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::Error;

/// What a trigger tells its source about one message once its call ended.
///
/// | settlement | when | NATS JetStream | Redis Streams | outbox table |
/// |---|---|---|---|---|
/// | [`Ack`](Self::Ack) | the call succeeded | `+ACK` | `XACK` | row removed |
/// | [`Nack`](Self::Nack) | it failed and may succeed later, or its dead letter could not be written | `-NAK` with the delay | left pending, reclaimed after the delay | claim released, retried after the delay |
/// | [`Terminate`](Self::Terminate) | it failed for good and is safe in the dead letter | `+TERM` | `XACK` | row removed |
///
/// The back-off between attempts is the `Nack`'s delay, kept by the broker:
/// a trigger never sleeps while it holds a message. While a long call runs,
/// the trigger tells the source it is still at work with
/// [`Settle::in_progress`] (see [`in_progress_while`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Settlement {
    /// Done: remove the message.
    Ack,
    /// Not done: deliver it again after `delay`.
    Nack {
        /// How long the source waits before it delivers the message again.
        delay: Duration,
    },
    /// Never deliver it again (it is in the dead letter).
    Terminate,
}

impl Settlement {
    /// Whether the source may forget the message (an ack or a terminate).
    pub fn removes_message(self) -> bool {
        matches!(self, Settlement::Ack | Settlement::Terminate)
    }
}

/// The handle a trigger settles one received message through: the
/// broker-specific side of [`Settlement`].
///
/// ```
/// use std::sync::Mutex;
/// use std::time::Duration;
/// use async_trait::async_trait;
/// use faas_core::Error;
/// use faas_core::trigger::{Settle, Settlement};
///
/// /// Records what happened to a message.
/// #[derive(Default)]
/// struct Recorded(Mutex<Vec<String>>);
///
/// #[async_trait]
/// impl Settle for Recorded {
///     async fn ack(&self) -> Result<(), Error> {
///         self.0.lock().unwrap().push("ack".into());
///         Ok(())
///     }
///     async fn nack(&self, delay: Duration) -> Result<(), Error> {
///         self.0.lock().unwrap().push(format!("nack {delay:?}"));
///         Ok(())
///     }
///     async fn terminate(&self) -> Result<(), Error> {
///         self.0.lock().unwrap().push("term".into());
///         Ok(())
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let message = Recorded::default();
/// message.settle(Settlement::Nack { delay: Duration::from_secs(1) }).await.unwrap();
/// assert_eq!(message.0.lock().unwrap().as_slice(), ["nack 1s"]);
/// # });
/// ```
#[async_trait]
pub trait Settle: Send + Sync {
    /// Acknowledges the message: the source removes it.
    ///
    /// # Errors
    ///
    /// When the source could not be told; it then redelivers the message
    /// (at-least-once).
    async fn ack(&self) -> Result<(), Error>;

    /// Hands the message back, to be delivered again after `delay`.
    ///
    /// # Errors
    ///
    /// When the source could not be told; it redelivers the message once its
    /// own deadline passes.
    async fn nack(&self, delay: Duration) -> Result<(), Error>;

    /// Stops the message's deliveries for good.
    ///
    /// # Errors
    ///
    /// When the source could not be told.
    async fn terminate(&self) -> Result<(), Error>;

    /// Tells the source the call still runs, so it does not redeliver the
    /// message meanwhile. The default does nothing (for sources without a
    /// delivery deadline).
    ///
    /// # Errors
    ///
    /// When the source could not be told.
    async fn in_progress(&self) -> Result<(), Error> {
        Ok(())
    }

    /// Applies `settlement`.
    ///
    /// # Errors
    ///
    /// As the method it calls.
    async fn settle(&self, settlement: Settlement) -> Result<(), Error> {
        match settlement {
            Settlement::Ack => self.ack().await,
            Settlement::Nack { delay } => self.nack(delay).await,
            Settlement::Terminate => self.terminate().await,
        }
    }
}

/// Runs `work` and, every `every` until it finishes, tells `message`'s source
/// that it is still in progress. A failed in-progress signal is logged, not
/// fatal: the worst outcome is a redelivery, which at-least-once allows.
///
/// `None` runs `work` alone.
pub async fn in_progress_while<F, S>(work: F, every: Option<Duration>, message: &S) -> F::Output
where
    F: Future,
    S: Settle + ?Sized,
{
    let Some(every) = every.filter(|every| !every.is_zero()) else {
        return work.await;
    };
    let mut work = pin!(work);
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            output = &mut work => return output,
            _ = ticks.tick() => {
                if let Err(error) = message.in_progress().await {
                    tracing::warn!(%error, "could not extend a message's delivery deadline");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[derive(Default)]
    struct Recorded(Mutex<Vec<String>>);

    #[async_trait]
    impl Settle for Recorded {
        async fn ack(&self) -> Result<(), Error> {
            self.0.lock().unwrap().push("ack".into());
            Ok(())
        }
        async fn nack(&self, delay: Duration) -> Result<(), Error> {
            self.0.lock().unwrap().push(format!("nack {delay:?}"));
            Ok(())
        }
        async fn terminate(&self) -> Result<(), Error> {
            self.0.lock().unwrap().push("term".into());
            Ok(())
        }
        async fn in_progress(&self) -> Result<(), Error> {
            self.0.lock().unwrap().push("wip".into());
            Ok(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn long_work_is_reported_in_progress() {
        let message = Recorded::default();
        let out = in_progress_while(
            async {
                tokio::time::sleep(Duration::from_secs(35)).await;
                7
            },
            Some(Duration::from_secs(10)),
            &message,
        )
        .await;
        assert_eq!(out, 7);
        assert_eq!(message.0.lock().unwrap().as_slice(), ["wip", "wip", "wip"]);
    }

    #[tokio::test(start_paused = true)]
    async fn quick_work_and_no_interval_send_nothing() {
        let message = Recorded::default();
        in_progress_while(async {}, Some(Duration::from_secs(1)), &message).await;
        in_progress_while(tokio::time::sleep(Duration::from_secs(5)), None, &message).await;
        assert!(message.0.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn settle_maps_each_outcome() {
        let message = Recorded::default();
        message.settle(Settlement::Ack).await.unwrap();
        message.settle(Settlement::Terminate).await.unwrap();
        message
            .settle(Settlement::Nack {
                delay: Duration::from_millis(5),
            })
            .await
            .unwrap();
        assert_eq!(
            message.0.lock().unwrap().as_slice(),
            ["ack", "term", "nack 5ms"]
        );
        assert!(Settlement::Ack.removes_message());
        assert!(Settlement::Terminate.removes_message());
        assert!(
            !Settlement::Nack {
                delay: Duration::ZERO
            }
            .removes_message()
        );
    }
}
