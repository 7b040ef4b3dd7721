//! [`WallClock`]: wall-clock times of the monotonic instants a host already
//! reads to time its calls, so that dating a call (its id, its log line) reads
//! no clock of its own. Reading the system clock costs tens of nanoseconds, a
//! good share of a warm call.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

/// How often a [`WallClock`] goes back to the system clock.
const REFRESH: Duration = Duration::from_secs(1);

/// The system clock read at most once a second, plus the monotonic time since:
/// a time it gives is off by no more than the system clock moves against the
/// monotonic one in a second.
#[derive(Debug, Default)]
pub(crate) struct WallClock {
    anchor: Mutex<Option<(Instant, SystemTime)>>,
}

impl WallClock {
    /// The wall-clock time of `at`.
    pub(crate) fn time_of(&self, at: Instant) -> SystemTime {
        let mut anchor = self.anchor.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((then, wall)) = *anchor {
            if let Some(after) = at.checked_duration_since(then) {
                if after < REFRESH {
                    return wall + after;
                }
            } else if let Some(before) = then.checked_duration_since(at)
                && before < REFRESH
            {
                return wall - before;
            }
        }
        let wall = SystemTime::now();
        *anchor = Some((at, wall));
        wall
    }

    #[cfg(test)]
    fn anchored_at(&self) -> Option<Instant> {
        self.anchor
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .map(|(at, _)| at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_system_clock_once_a_second() {
        let clock = WallClock::default();
        let start = Instant::now() + Duration::from_secs(10);
        let first = clock.time_of(start);
        let ms = Duration::from_millis;
        assert_eq!(clock.time_of(start + ms(300)), first + ms(300));
        assert_eq!(clock.time_of(start - ms(200)), first - ms(200));
        assert_eq!(clock.anchored_at(), Some(start));
        clock.time_of(start + Duration::from_secs(5));
        assert_eq!(clock.anchored_at(), Some(start + Duration::from_secs(5)));
        clock.time_of(start - Duration::from_secs(3));
        assert_eq!(clock.anchored_at(), Some(start - Duration::from_secs(3)));
    }
}
