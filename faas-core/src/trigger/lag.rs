//! [`Lag`] and [`LagSource`]: how much work an event source holds for a
//! function, the input an autoscaler weighs beside HTTP concurrency.

use async_trait::async_trait;

use crate::error::Error;

/// The work an event source holds for one function at one moment.
///
/// `pending` counts what is waiting to be handed to the function (messages not
/// yet delivered, rows not yet claimed, files not yet handled) plus what was
/// handed over and not yet acknowledged. `active` says whether the source has
/// any work at all: a scaler wakes a function from zero on `active` alone, so a
/// source whose count is only an estimate still reports `active` exactly.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Lag {
    /// Units of work waiting or in progress.
    pub pending: u64,
    /// Whether there is any work: wake the function from zero when true.
    pub active: bool,
}

impl Lag {
    /// Nothing pending: the source is idle.
    pub const IDLE: Lag = Lag {
        pending: 0,
        active: false,
    };

    /// `pending` units of work; active when there is at least one.
    pub fn pending(pending: u64) -> Self {
        Lag {
            pending,
            active: pending > 0,
        }
    }
}

/// A source of events that can say how much work it holds for a function.
///
/// Event triggers implement it beside [`Trigger`](super::Trigger); an
/// autoscaler polls [`lag`](Self::lag) and scales the function so that each
/// replica has about its target share of the pending work, and from zero as
/// soon as the source is [`active`](Lag::active).
///
/// ```
/// use async_trait::async_trait;
/// use faas_core::Error;
/// use faas_core::trigger::{Lag, LagSource};
/// use std::sync::atomic::{AtomicU64, Ordering};
///
/// /// A queue whose depth is kept in a counter.
/// struct CountedQueue {
///     depth: AtomicU64,
/// }
///
/// #[async_trait]
/// impl LagSource for CountedQueue {
///     fn function(&self) -> &str {
///         "resize"
///     }
///
///     async fn lag(&self) -> Result<Lag, Error> {
///         Ok(Lag::pending(self.depth.load(Ordering::Relaxed)))
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let queue = CountedQueue { depth: AtomicU64::new(3) };
/// let lag = queue.lag().await.unwrap();
/// assert!(lag.active);
/// assert_eq!(lag.pending, 3);
/// # });
/// ```
#[async_trait]
pub trait LagSource: Send + Sync {
    /// The function whose work this source holds.
    fn function(&self) -> &str;

    /// The work pending now.
    ///
    /// # Errors
    ///
    /// When the source cannot be asked (the broker or database is
    /// unreachable); a scaler keeps its last decision for that input.
    async fn lag(&self) -> Result<Lag, Error>;
}
