//! [`InvocationPolicy`]: how a function is called, the same for every trigger:
//! deadline, in-flight limit, body limit, retries and dead letter.

mod dead_letter;
mod retry;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use dead_letter::{DeadLetter, DeadLetterEntry, InMemoryDeadLetter};
pub use retry::RetryPolicy;

/// The default deadline of a call (30 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The default limit of in-flight calls per function (1000).
pub const DEFAULT_MAX_IN_FLIGHT: usize = 1000;

/// The default largest request body (16 MiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// How a function is called: the same policy applies to every trigger.
///
/// | setting | default | effect |
/// |---|---|---|
/// | [`timeout`](Self::timeout) | 30 s | past it the call is cancelled: [`Timeout`](crate::ErrorKind::Timeout) (504) |
/// | [`max_in_flight`](Self::max_in_flight) | 1000 | one more call is refused at once: [`Overloaded`](crate::ErrorKind::Overloaded) (429); nothing queues |
/// | [`max_body_bytes`](Self::max_body_bytes) | 16 MiB | a larger body is refused: [`PayloadTooLarge`](crate::ErrorKind::PayloadTooLarge) (413) |
/// | [`retry`](Self::retry) | 3 attempts, 100 ms .. 10 s | applies to event deliveries ([`Dispatcher::deliver`](crate::Dispatcher::deliver)), not to synchronous calls |
/// | [`dead_letter`](Self::dead_letter) | none | receives a delivery that failed its last attempt |
///
/// The limit of 1000 in-flight calls rather than none keeps a flood from
/// exhausting memory; raise it with [`with_max_in_flight`](Self::with_max_in_flight)
/// or remove it with [`without_max_in_flight`](Self::without_max_in_flight).
///
/// ```
/// use std::{sync::Arc, time::Duration};
/// use faas_core::{InMemoryDeadLetter, InvocationPolicy, RetryPolicy};
///
/// let policy = InvocationPolicy::default()
///     .with_timeout(Duration::from_secs(5))
///     .with_max_in_flight(10)
///     .with_retry(RetryPolicy::default().with_max_attempts(5))
///     .with_dead_letter(Arc::new(InMemoryDeadLetter::new()));
/// assert_eq!(policy.timeout(), Some(Duration::from_secs(5)));
/// assert_eq!(policy.max_in_flight(), Some(10));
/// assert_eq!(policy.retry().max_attempts, 5);
/// assert!(policy.dead_letter().is_some());
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct InvocationPolicy {
    timeout: Option<Duration>,
    max_in_flight: Option<usize>,
    max_body_bytes: Option<usize>,
    retry: RetryPolicy,
    dead_letter: Option<Arc<dyn DeadLetter>>,
}

impl Default for InvocationPolicy {
    fn default() -> Self {
        InvocationPolicy {
            timeout: Some(DEFAULT_TIMEOUT),
            max_in_flight: Some(DEFAULT_MAX_IN_FLIGHT),
            max_body_bytes: Some(DEFAULT_MAX_BODY_BYTES),
            retry: RetryPolicy::default(),
            dead_letter: None,
        }
    }
}

impl fmt::Debug for InvocationPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InvocationPolicy")
            .field("timeout", &self.timeout)
            .field("max_in_flight", &self.max_in_flight)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("retry", &self.retry)
            .field(
                "dead_letter",
                &self.dead_letter.as_ref().map(|_| "DeadLetter"),
            )
            .finish()
    }
}

impl InvocationPolicy {
    /// The deadline of one attempt, from its start.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The limit of calls running at once.
    pub fn max_in_flight(&self) -> Option<usize> {
        self.max_in_flight
    }

    /// The largest request body accepted, in bytes.
    pub fn max_body_bytes(&self) -> Option<usize> {
        self.max_body_bytes
    }

    /// How event deliveries are retried.
    pub fn retry(&self) -> &RetryPolicy {
        &self.retry
    }

    /// Where a delivery goes after its last failed attempt.
    pub fn dead_letter(&self) -> Option<&Arc<dyn DeadLetter>> {
        self.dead_letter.as_ref()
    }

    /// Sets the deadline of one attempt.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Removes the deadline (calls may run forever unless their context has one).
    #[must_use]
    pub fn without_timeout(mut self) -> Self {
        self.timeout = None;
        self
    }

    /// Sets the limit of calls running at once.
    #[must_use]
    pub fn with_max_in_flight(mut self, max_in_flight: usize) -> Self {
        self.max_in_flight = Some(max_in_flight);
        self
    }

    /// Removes the limit of calls running at once.
    #[must_use]
    pub fn without_max_in_flight(mut self) -> Self {
        self.max_in_flight = None;
        self
    }

    /// Sets the largest request body accepted.
    #[must_use]
    pub fn with_max_body_bytes(mut self, max_body_bytes: usize) -> Self {
        self.max_body_bytes = Some(max_body_bytes);
        self
    }

    /// Removes the limit on the request body.
    #[must_use]
    pub fn without_max_body_bytes(mut self) -> Self {
        self.max_body_bytes = None;
        self
    }

    /// Sets how event deliveries are retried.
    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets where failed deliveries go.
    #[must_use]
    pub fn with_dead_letter(mut self, dead_letter: Arc<dyn DeadLetter>) -> Self {
        self.dead_letter = Some(dead_letter);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let policy = InvocationPolicy::default();
        assert_eq!(policy.timeout(), Some(Duration::from_secs(30)));
        assert_eq!(policy.max_in_flight(), Some(1000));
        assert_eq!(policy.max_body_bytes(), Some(16 * 1024 * 1024));
        assert_eq!(policy.retry().max_attempts, 3);
        assert!(policy.dead_letter().is_none());
        let open = policy
            .without_timeout()
            .without_max_in_flight()
            .without_max_body_bytes();
        assert_eq!(open.timeout(), None);
        assert_eq!(open.max_in_flight(), None);
        assert_eq!(open.max_body_bytes(), None);
        assert!(format!("{open:?}").contains("InvocationPolicy"));
    }
}
