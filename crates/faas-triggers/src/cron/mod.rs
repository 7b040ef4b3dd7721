//! The cron trigger: run functions on a schedule.
//!
//! See [`CronTrigger`] for the scheduling policy (overlap, missed ticks) and
//! the events it delivers.

mod clock;
mod schedule;

pub use clock::{Clock, SystemClock, TokioClock};
pub use schedule::{Schedule, parse_timezone};
