//! [`wall_time`]: the wall-clock time of an instant a host already read to
//! time a call, so that dating the call (its id, its log line) reads no clock
//! of its own. Reading the system clock costs tens of nanoseconds, a good
//! share of a warm call.

use std::cell::Cell;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

/// How often each thread goes back to the system clock.
const REFRESH: Duration = Duration::from_secs(1);

thread_local! {
    /// An instant and the system clock read with it, on this thread.
    static ANCHOR: Cell<Option<(Instant, SystemTime)>> = const { Cell::new(None) };
}

/// The wall-clock time of `at`: the system clock read at most a second from
/// it (on this thread), moved by the monotonic time in between. It is off by
/// no more than the system clock moves against the monotonic one in a second.
pub(crate) fn wall_time(at: Instant) -> SystemTime {
    ANCHOR.with(|anchor| {
        if let Some(wall) = anchor.get().and_then(|anchor| from_anchor(anchor, at)) {
            return wall;
        }
        let wall = SystemTime::now();
        anchor.set(Some((at, wall)));
        wall
    })
}

fn from_anchor((then, wall): (Instant, SystemTime), at: Instant) -> Option<SystemTime> {
    match at.checked_duration_since(then) {
        Some(after) => (after < REFRESH).then(|| wall + after),
        None => {
            let before = then.duration_since(at);
            (before < REFRESH).then(|| wall - before)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anchored_at() -> Option<Instant> {
        ANCHOR.with(|anchor| anchor.get().map(|(at, _)| at))
    }

    #[test]
    fn reads_the_system_clock_once_a_second() {
        let start = Instant::now() + Duration::from_secs(10);
        let first = wall_time(start);
        let ms = Duration::from_millis;
        assert_eq!(wall_time(start + ms(300)), first + ms(300));
        assert_eq!(wall_time(start - ms(200)), first - ms(200));
        assert_eq!(anchored_at(), Some(start));
        wall_time(start + Duration::from_secs(5));
        assert_eq!(anchored_at(), Some(start + Duration::from_secs(5)));
        wall_time(start - Duration::from_secs(3));
        assert_eq!(anchored_at(), Some(start - Duration::from_secs(3)));
    }
}
