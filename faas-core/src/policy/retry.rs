//! [`RetryPolicy`]: how many attempts, how long between them, which errors.

use std::time::Duration;

use crate::error::{ErrorKind, FunctionError};

/// How an event delivery is retried: exponential backoff with jitter, up to
/// `max_attempts` attempts in all, for the error kinds in `retryable`.
///
/// The delay after failed attempt `n` (1-based) is
/// `initial_backoff * multiplier^(n-1)`, capped at `max_backoff`, then moved by a
/// random factor in `[1 - jitter, 1 + jitter]` and capped at `max_backoff` again.
///
/// ```
/// use std::time::Duration;
/// use faas_core::{FunctionError, RetryPolicy};
///
/// let retry = RetryPolicy::default()
///     .with_max_attempts(4)
///     .with_initial_backoff(Duration::from_millis(200))
///     .with_jitter(0.0);
/// assert_eq!(retry.backoff(1), Duration::from_millis(200));
/// assert_eq!(retry.backoff(3), Duration::from_millis(800));
/// assert!(retry.should_retry(&FunctionError::timeout("slow"), 3));
/// assert!(!retry.should_retry(&FunctionError::timeout("slow"), 4));
/// assert!(!retry.should_retry(&FunctionError::bad_input("no"), 1));
/// ```
///
/// `#[non_exhaustive]`: build it from [`RetryPolicy::default`] or
/// [`RetryPolicy::new`] with the `with_*` methods, so a setting added later
/// breaks no caller.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = no retry). Default 3.
    pub max_attempts: u32,
    /// The delay after the first failed attempt. Default 100 ms.
    pub initial_backoff: Duration,
    /// The longest delay. Default 10 s.
    pub max_backoff: Duration,
    /// The factor between consecutive delays. Default 2.0.
    pub multiplier: f64,
    /// The random spread of a delay, a fraction in `[0, 1]`. Default 0.2.
    pub jitter: f64,
    /// The error kinds worth another attempt.
    /// Default: those with [`ErrorKind::is_retryable_by_default`].
    pub retryable: Vec<ErrorKind>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            multiplier: 2.0,
            jitter: 0.2,
            retryable: ErrorKind::ALL
                .into_iter()
                .filter(|kind| kind.is_retryable_by_default())
                .collect(),
        }
    }
}

impl RetryPolicy {
    /// A policy of `max_attempts` attempts in all, otherwise the defaults.
    pub fn new(max_attempts: u32) -> Self {
        RetryPolicy::default().with_max_attempts(max_attempts)
    }

    /// A single attempt, no retry.
    pub fn never() -> Self {
        RetryPolicy::new(1)
    }

    /// Sets the number of attempts in all (at least 1).
    #[must_use]
    pub fn with_max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = max_attempts.max(1);
        self
    }

    /// Sets the delay after the first failed attempt.
    #[must_use]
    pub fn with_initial_backoff(mut self, initial_backoff: Duration) -> Self {
        self.initial_backoff = initial_backoff;
        self
    }

    /// Sets the longest delay.
    #[must_use]
    pub fn with_max_backoff(mut self, max_backoff: Duration) -> Self {
        self.max_backoff = max_backoff;
        self
    }

    /// Sets the factor between delays (at least 1.0).
    #[must_use]
    pub fn with_multiplier(mut self, multiplier: f64) -> Self {
        self.multiplier = if multiplier.is_finite() {
            multiplier.max(1.0)
        } else {
            1.0
        };
        self
    }

    /// Sets the random spread, clamped to `[0, 1]`.
    #[must_use]
    pub fn with_jitter(mut self, jitter: f64) -> Self {
        self.jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self
    }

    /// Sets the error kinds worth another attempt.
    #[must_use]
    pub fn with_retryable(mut self, retryable: Vec<ErrorKind>) -> Self {
        self.retryable = retryable;
        self
    }

    /// The delay before the attempt after failed attempt `attempt` (1-based).
    ///
    /// A formula of the attempt number rather than `backon`'s stateful
    /// iterator: a source that redelivers (a queue, a database) knows only
    /// the delivery count the broker gives it, not the delays before, and
    /// must compute the delay of that one redelivery.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let max = self.max_backoff.as_secs_f64();
        let exponent = attempt.saturating_sub(1).min(1024) as i32;
        let multiplier = if self.multiplier.is_finite() {
            self.multiplier.max(1.0)
        } else {
            1.0
        };
        let base = (self.initial_backoff.as_secs_f64() * multiplier.powi(exponent)).min(max);
        let jitter = if self.jitter.is_finite() {
            self.jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let factor = 1.0 - jitter + 2.0 * jitter * fastrand::f64();
        let delay = (base * factor).clamp(0.0, max);
        Duration::try_from_secs_f64(delay).unwrap_or(self.max_backoff)
    }

    /// Whether `error` after attempt `attempt` (1-based) deserves another attempt.
    ///
    /// No when the attempts are spent or the kind is not in `retryable`. A
    /// [`User`](ErrorKind::User) error whose status is a 4xx other than 408 and 429
    /// is not retried either: the function said the input is at fault.
    pub fn should_retry(&self, error: &FunctionError, attempt: u32) -> bool {
        if attempt >= self.max_attempts || !self.retryable.contains(&error.kind()) {
            return false;
        }
        let status = error.status();
        !(error.kind() == ErrorKind::User
            && status.is_client_error()
            && status != http::StatusCode::REQUEST_TIMEOUT
            && status != http::StatusCode::TOO_MANY_REQUESTS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    #[test]
    fn backoff_grows_and_is_capped() {
        let retry = RetryPolicy::default().with_jitter(0.0);
        assert_eq!(retry.backoff(1), Duration::from_millis(100));
        assert_eq!(retry.backoff(2), Duration::from_millis(200));
        assert_eq!(retry.backoff(4), Duration::from_millis(800));
        assert_eq!(retry.backoff(30), Duration::from_secs(10));
        assert_eq!(retry.backoff(u32::MAX), Duration::from_secs(10));
    }

    #[test]
    fn jitter_stays_in_bounds() {
        let retry = RetryPolicy::default();
        for attempt in 1..12 {
            let base = (0.1 * 2f64.powi(attempt as i32 - 1)).min(10.0);
            let low = Duration::from_secs_f64(base * 0.8 - 1e-9);
            let high = Duration::from_secs_f64((base * 1.2).min(10.0) + 1e-9);
            for _ in 0..200 {
                let delay = retry.backoff(attempt);
                assert!(
                    delay >= low && delay <= high,
                    "attempt {attempt}: {delay:?} not in {low:?}..={high:?}"
                );
            }
        }
    }

    #[test]
    fn jitter_spreads() {
        let retry = RetryPolicy::default().with_jitter(1.0);
        let delays: std::collections::BTreeSet<_> = (0..50).map(|_| retry.backoff(1)).collect();
        assert!(delays.len() > 1);
    }

    #[test]
    fn odd_settings_are_tamed() {
        let retry = RetryPolicy::default()
            .with_multiplier(f64::NAN)
            .with_jitter(7.0)
            .with_max_attempts(0);
        assert_eq!(retry.max_attempts, 1);
        assert_eq!(retry.jitter, 1.0);
        assert!(retry.backoff(5) <= Duration::from_millis(200));
    }

    #[test]
    fn retry_decisions() {
        let retry = RetryPolicy::default();
        assert!(retry.should_retry(&FunctionError::overloaded("x"), 1));
        assert!(retry.should_retry(&FunctionError::user("db down"), 2));
        assert!(!retry.should_retry(&FunctionError::user("db down"), 3));
        assert!(!retry.should_retry(&FunctionError::panicked("bug"), 1));
        assert!(!retry.should_retry(&FunctionError::bad_input("x"), 1));
        assert!(!retry.should_retry(
            &FunctionError::user_with_status(StatusCode::CONFLICT, "x"),
            1
        ));
        assert!(retry.should_retry(
            &FunctionError::user_with_status(StatusCode::TOO_MANY_REQUESTS, "x"),
            1
        ));
        let only_panics = RetryPolicy::default().with_retryable(vec![ErrorKind::Panicked]);
        assert!(only_panics.should_retry(&FunctionError::panicked("x"), 1));
        assert!(!only_panics.should_retry(&FunctionError::timeout("x"), 1));
        assert!(!RetryPolicy::never().should_retry(&FunctionError::timeout("x"), 1));
    }
}
