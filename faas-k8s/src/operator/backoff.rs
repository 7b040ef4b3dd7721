//! [`RetryBackoff`]: the per-Function back-off after a failed reconcile.
//!
//! A failed reconcile is retried after a delay that doubles per consecutive failure of the same
//! Function ([`OperatorConfig::retry_delay`]). A Function keeps receiving events while it backs
//! off (its pods, its Deployment's status, the other object of the pair), and each would start a
//! reconcile that repeats the failing request at once: a storm of requests at an API server that
//! is already refusing them, and a failure count that climbs to the longest delay within
//! seconds, so that the Function then waits minutes after the cause is gone. So a reconcile
//! woken during the back-off waits for it instead, unless the Function's spec changed (a new
//! generation is a new attempt).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use kube::runtime::reflector::ObjectRef;
use tokio::time::Instant;

use super::config::OperatorConfig;
use crate::function::Function;

/// One failing Function: how many times in a row, for which generation, and when to retry.
struct Failing {
    failures: u32,
    generation: i64,
    retry_at: Instant,
}

/// The failing Functions and when each may be tried again.
#[derive(Default)]
pub(crate) struct RetryBackoff {
    failing: Mutex<HashMap<ObjectRef<Function>, Failing>>,
}

impl RetryBackoff {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectRef<Function>, Failing>> {
        self.failing.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How long a reconcile of `function` must still wait, when it is backing off from a failure
    /// of the same generation.
    pub(crate) fn remaining(&self, function: &Function) -> Option<Duration> {
        let generation = function.metadata.generation.unwrap_or(0);
        let failing = self.lock();
        let failing = failing.get(&ObjectRef::from_obj(function))?;
        if failing.generation != generation {
            return None;
        }
        let left = failing.retry_at.saturating_duration_since(Instant::now());
        (!left.is_zero()).then_some(left)
    }

    /// Records a failed reconcile of `function`: the consecutive failures so far and the delay
    /// before the next attempt.
    pub(crate) fn failed(&self, function: &Function, config: &OperatorConfig) -> (u32, Duration) {
        let generation = function.metadata.generation.unwrap_or(0);
        let mut failing = self.lock();
        let entry = failing
            .entry(ObjectRef::from_obj(function))
            .or_insert(Failing {
                failures: 0,
                generation,
                retry_at: Instant::now(),
            });
        entry.failures = entry.failures.saturating_add(1);
        entry.generation = generation;
        let delay = config.retry_delay(entry.failures);
        entry.retry_at = Instant::now() + delay;
        (entry.failures, delay)
    }

    /// Forgets `function`'s failures: it reconciled, or it is gone.
    pub(crate) fn succeeded(&self, function: &Function) {
        self.lock().remove(&ObjectRef::from_obj(function));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::function::FunctionSpec;

    fn function(generation: i64) -> Function {
        let mut function = Function::new("f", FunctionSpec::new("img"));
        function.metadata.namespace = Some("ns".into());
        function.metadata.generation = Some(generation);
        function
    }

    #[tokio::test(start_paused = true)]
    async fn events_during_the_back_off_wait_for_it() {
        let config =
            OperatorConfig::default().with_retry(Duration::from_secs(1), Duration::from_secs(60));
        let backoff = RetryBackoff::default();
        let f = function(1);
        assert_eq!(backoff.remaining(&f), None, "never failed");
        assert_eq!(backoff.failed(&f, &config), (1, Duration::from_secs(1)));
        tokio::time::advance(Duration::from_millis(400)).await;
        assert_eq!(backoff.remaining(&f), Some(Duration::from_millis(600)));
        tokio::time::advance(Duration::from_millis(600)).await;
        assert_eq!(backoff.remaining(&f), None, "the retry is due");
        assert_eq!(backoff.failed(&f, &config), (2, Duration::from_secs(2)));

        // A new spec is tried at once, and keeps counting.
        assert_eq!(backoff.remaining(&function(2)), None);
        assert_eq!(backoff.failed(&function(2), &config).0, 3);

        backoff.succeeded(&f);
        assert_eq!(backoff.remaining(&function(2)), None);
        assert_eq!(backoff.failed(&f, &config).0, 1, "a success starts over");
    }
}
