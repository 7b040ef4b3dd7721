//! Where the cron trigger reads the wall-clock time.

use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};

/// A source of wall-clock time for schedules.
///
/// The trigger sleeps on tokio's monotonic clock and re-reads the wall clock
/// after every sleep (sleeping at most [`MAX_SLEEP`](crate::cron::MAX_SLEEP) at
/// a time), so a wall clock that jumps is noticed within that bound.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

/// The operating system's wall clock (the default).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A wall clock that starts at a given time and advances with tokio's clock.
///
/// Under `tokio::time::pause()` the time only moves when the runtime advances
/// it, so a schedule can be driven through simulated days deterministically
/// (tests, replays of a past period).
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use faas_triggers::cron::{Clock, TokioClock};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let start = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
/// let clock = TokioClock::starting_at(start);
/// tokio::time::sleep(std::time::Duration::from_secs(90)).await;
/// assert_eq!(clock.now(), start + chrono::TimeDelta::seconds(90));
/// # }
/// ```
#[derive(Clone, Copy)]
pub struct TokioClock {
    wall: DateTime<Utc>,
    origin: tokio::time::Instant,
}

impl TokioClock {
    /// A clock that reads `wall` now and advances with `tokio::time::Instant`.
    ///
    /// Must be called within a tokio runtime when its time is paused (as any
    /// `tokio::time::Instant::now()`).
    pub fn starting_at(wall: DateTime<Utc>) -> Self {
        Self {
            wall,
            origin: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = self.origin.elapsed();
        TimeDelta::from_std(elapsed)
            .ok()
            .and_then(|d| self.wall.checked_add_signed(d))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

impl fmt::Debug for TokioClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokioClock")
            .field("now", &self.now())
            .finish()
    }
}
