//! The cron trigger: run functions on a schedule.
//!
//! [`CronTrigger`] fires [`CronJob`]s, each a function on a [`Schedule`]
//! (cron with seconds, in an IANA time zone). See [`CronTrigger`] for the
//! scheduling policy (overlap, missed ticks, clock jumps) and the events it
//! delivers.

mod clock;
mod job;
mod schedule;
mod stats;
mod trigger;

pub use clock::{Clock, SystemClock, TokioClock};
pub use job::{CronJob, MAX_SLEEP, MissedTicks, TICK_EVENT_TYPE};
pub use schedule::{Schedule, parse_timezone};
pub use stats::CronStats;
pub use trigger::CronTrigger;
