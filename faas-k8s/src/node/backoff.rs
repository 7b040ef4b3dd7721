//! The restart back-off of crashing containers, as a kubelet paces it.
//!
//! The first restart after a crash is immediate; each later one waits twice as long as the one
//! before, starting at the base (10 s on a kubelet) and capped at the maximum (5 min). A container
//! that has not needed a restart for twice the maximum starts over from nothing.

use std::time::Duration;

use tokio::time::Instant;

/// The back-off state of one container.
#[derive(Clone, Debug)]
pub(crate) struct RestartBackoff {
    base: Duration,
    max: Duration,
    /// The current delay, `None` before the first crash (or after a reset).
    current: Option<Duration>,
    /// When the delay was last raised.
    last_update: Option<Instant>,
}

impl RestartBackoff {
    pub(crate) fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max,
            current: None,
            last_update: None,
        }
    }

    /// How long to wait before restarting a container that crashed at `now`; records the crash.
    pub(crate) fn next_delay(&mut self, now: Instant) -> Duration {
        if let Some(last) = self.last_update
            && now.saturating_duration_since(last) > self.max * 2
        {
            self.current = None;
        }
        let delay = self.current.unwrap_or(Duration::ZERO);
        self.current = Some(match self.current {
            None => self.base,
            Some(d) => (d * 2).min(self.max),
        });
        self.last_update = Some(now);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn immediate_then_doubling_up_to_the_cap() {
        let start = Instant::now();
        let mut b = RestartBackoff::new(Duration::from_secs(10), Duration::from_secs(300));
        let delays: Vec<u64> = (0..8)
            .map(|i| b.next_delay(start + Duration::from_secs(i)).as_secs())
            .collect();
        assert_eq!(delays, [0, 10, 20, 40, 80, 160, 300, 300]);
    }

    #[test]
    fn a_long_quiet_period_resets_it() {
        let start = Instant::now();
        let mut b = RestartBackoff::new(Duration::from_millis(100), Duration::from_secs(1));
        b.next_delay(start);
        assert_eq!(b.next_delay(start), Duration::from_millis(100));
        assert_eq!(b.next_delay(start), Duration::from_millis(200));
        let later = start + Duration::from_secs(3);
        assert_eq!(b.next_delay(later), Duration::ZERO);
        assert_eq!(b.next_delay(later), Duration::from_millis(100));
    }
}
