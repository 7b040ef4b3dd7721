//! [`AsyncCallPolicy`]: how one function's asynchronous calls are retried and
//! where they go after their last attempt, read from the Function's
//! `spec.policy` ([`FunctionPolicy`]) over the gateway's defaults.

use std::str::FromStr;
use std::time::Duration;

use faas_core::RetryPolicy;
use http::Uri;

use crate::error::{Error, Result};
use crate::function::FunctionPolicy;

/// Where an asynchronous call that failed its last attempt goes.
///
/// Parsed from a Function's `spec.policy.deadLetter`: an absolute `http://`
/// URL gets the call POSTed to it (the original body, with `Faas-Function`,
/// `Faas-Call-Id`, `Faas-Error`, `Faas-Error-Kind`, `Faas-Attempts` and
/// `Faas-Failed-At` headers); anything else is a NATS subject, published
/// through JetStream when the gateway keeps its calls there (a stream must
/// capture the subject).
///
/// ```
/// use faas_k8s::gateway::DeadLetterTarget;
///
/// let url: DeadLetterTarget = "http://dead.example:8080/letters".parse().unwrap();
/// assert!(matches!(url, DeadLetterTarget::Url(_)));
/// let subject: DeadLetterTarget = "faas.dead.orders".parse().unwrap();
/// assert_eq!(subject, DeadLetterTarget::Subject("faas.dead.orders".to_owned()));
/// assert!("faas.dead.>".parse::<DeadLetterTarget>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeadLetterTarget {
    /// POSTed to this `http://` URL.
    Url(Uri),
    /// Published to this NATS subject through JetStream.
    Subject(String),
}

impl FromStr for DeadLetterTarget {
    type Err = Error;

    fn from_str(target: &str) -> Result<Self> {
        let target = target.trim();
        if target.contains("://") {
            let uri: Uri = target.parse().map_err(|e| {
                Error::InvalidConfig(format!("dead letter {target:?} is not a URL: {e}"))
            })?;
            if uri.scheme_str() != Some("http") || uri.host().is_none() {
                return Err(Error::InvalidConfig(format!(
                    "dead letter {target:?} must be an absolute http:// URL or a NATS subject"
                )));
            }
            return Ok(DeadLetterTarget::Url(uri));
        }
        let valid = !target.is_empty()
            && target.split('.').all(|token| {
                !token.is_empty()
                    && token
                        .chars()
                        .all(|c| !c.is_whitespace() && c != '*' && c != '>')
            });
        if !valid {
            return Err(Error::InvalidConfig(format!(
                "dead letter {target:?} must be an absolute http:// URL or a NATS subject \
                 without wildcards (such as faas.dead.orders)"
            )));
        }
        Ok(DeadLetterTarget::Subject(target.to_owned()))
    }
}

impl std::fmt::Display for DeadLetterTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeadLetterTarget::Url(uri) => write!(f, "{uri}"),
            DeadLetterTarget::Subject(subject) => f.write_str(subject),
        }
    }
}

/// How a function's asynchronous calls are retried, how long one attempt may
/// take, and where one goes after its last failed attempt (the gateway's own
/// dead letter when unset).
///
/// The gateway reads it from each Function's `spec.policy` (`deadline`,
/// `maxAttempts`, `backoff`, `deadLetter`) through
/// [`from_function_policy`](Self::from_function_policy); a function that sets
/// nothing gets the gateway's default policy
/// ([`GatewayBuilder::async_retry`](super::GatewayBuilder::async_retry)).
///
/// ```
/// use std::time::Duration;
/// use faas_core::RetryPolicy;
/// use faas_k8s::function::FunctionPolicy;
/// use faas_k8s::gateway::AsyncCallPolicy;
///
/// let spec = FunctionPolicy::default()
///     .with_deadline(Duration::from_secs(2))
///     .with_max_attempts(5)
///     .with_backoff(Duration::from_millis(250))
///     .with_dead_letter("faas.dead.orders");
/// let policy = AsyncCallPolicy::from_function_policy(Some(&spec), &RetryPolicy::default()).unwrap();
/// assert_eq!(policy.deadline(), Some(Duration::from_secs(2)));
/// assert_eq!(policy.retry().max_attempts, 5);
/// assert_eq!(policy.retry().initial_backoff, Duration::from_millis(250));
/// assert_eq!(policy.dead_letter().unwrap().to_string(), "faas.dead.orders");
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct AsyncCallPolicy {
    retry: RetryPolicy,
    deadline: Option<Duration>,
    dead_letter: Option<DeadLetterTarget>,
}

impl AsyncCallPolicy {
    /// Retries by `retry`, failed calls to the gateway's dead letter.
    pub fn new(retry: RetryPolicy) -> Self {
        AsyncCallPolicy {
            retry,
            deadline: None,
            dead_letter: None,
        }
    }

    /// Bounds each attempt by `deadline` (below the call's own `x-timeout` or the gateway's
    /// default when those are longer): an attempt still running then fails with a timeout
    /// and is retried like any other failed attempt.
    #[must_use]
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// How long one attempt may take, when the function bounds it.
    pub fn deadline(&self) -> Option<Duration> {
        self.deadline
    }

    /// Sends calls that failed their last attempt to `target`.
    #[must_use]
    pub fn with_dead_letter(mut self, target: DeadLetterTarget) -> Self {
        self.dead_letter = Some(target);
        self
    }

    /// The attempts and the back-off between them.
    pub fn retry(&self) -> &RetryPolicy {
        &self.retry
    }

    /// Where failed calls go, when not to the gateway's dead letter.
    pub fn dead_letter(&self) -> Option<&DeadLetterTarget> {
        self.dead_letter.as_ref()
    }

    /// The policy a Function's `spec.policy` asks for, over `defaults`: each attempt within
    /// `deadline`, `maxAttempts` attempts in all, `backoff` after the first failure (doubling,
    /// capped at the larger of the default cap and `backoff`), failed calls to `deadLetter`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] when `deadline` is not above zero, `maxAttempts` is below 1 or
    /// `deadLetter` is neither an `http://` URL nor a NATS subject.
    pub fn from_function_policy(
        policy: Option<&FunctionPolicy>,
        defaults: &RetryPolicy,
    ) -> Result<Self> {
        let mut retry = defaults.clone();
        let Some(policy) = policy else {
            return Ok(AsyncCallPolicy::new(retry));
        };
        if let Some(attempts) = policy.max_attempts {
            let attempts = u32::try_from(attempts)
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| {
                    Error::InvalidConfig(format!(
                        "spec.policy.maxAttempts must be at least 1, not {attempts}"
                    ))
                })?;
            retry = retry.with_max_attempts(attempts);
        }
        if let Some(backoff) = policy.backoff {
            let backoff: Duration = backoff.into();
            let cap = retry.max_backoff.max(backoff);
            retry = retry.with_initial_backoff(backoff).with_max_backoff(cap);
        }
        let mut async_policy = AsyncCallPolicy::new(retry);
        if let Some(deadline) = policy.deadline {
            let bound: Duration = deadline.into();
            if deadline.is_negative() || bound.is_zero() {
                return Err(Error::InvalidConfig(format!(
                    "spec.policy.deadline must be above zero, not {deadline}"
                )));
            }
            async_policy = async_policy.with_deadline(bound);
        }
        if let Some(target) = &policy.dead_letter {
            async_policy = async_policy.with_dead_letter(target.parse().map_err(|e| match e {
                Error::InvalidConfig(message) => {
                    Error::InvalidConfig(format!("spec.policy.deadLetter: {message}"))
                }
                other => other,
            })?);
        }
        Ok(async_policy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_function_without_a_policy_gets_the_defaults() {
        let defaults = RetryPolicy::new(4);
        let policy = AsyncCallPolicy::from_function_policy(None, &defaults).unwrap();
        assert_eq!(policy.retry(), &defaults);
        assert_eq!(policy.deadline(), None);
        assert_eq!(policy.dead_letter(), None);
        let empty = FunctionPolicy::default();
        let policy = AsyncCallPolicy::from_function_policy(Some(&empty), &defaults).unwrap();
        assert_eq!(policy.retry(), &defaults);
    }

    #[test]
    fn the_function_overrides_attempts_back_off_and_dead_letter() {
        let spec = FunctionPolicy::default()
            .with_deadline(Duration::from_millis(1500))
            .with_max_attempts(1)
            .with_backoff(Duration::from_secs(30))
            .with_dead_letter("http://127.0.0.1:9/dead");
        let policy =
            AsyncCallPolicy::from_function_policy(Some(&spec), &RetryPolicy::default()).unwrap();
        assert_eq!(policy.deadline(), Some(Duration::from_millis(1500)));
        assert_eq!(policy.retry().max_attempts, 1);
        assert_eq!(policy.retry().initial_backoff, Duration::from_secs(30));
        assert_eq!(policy.retry().max_backoff, Duration::from_secs(30));
        assert_eq!(
            policy.dead_letter(),
            Some(&DeadLetterTarget::Url(
                "http://127.0.0.1:9/dead".parse().unwrap()
            ))
        );
    }

    #[test]
    fn bad_policies_are_refused_with_the_field_named() {
        let zero = FunctionPolicy::default().with_max_attempts(0);
        let error = AsyncCallPolicy::from_function_policy(Some(&zero), &RetryPolicy::default())
            .unwrap_err();
        assert!(error.to_string().contains("maxAttempts"), "{error}");
        let zero = FunctionPolicy::default().with_deadline(Duration::ZERO);
        let error = AsyncCallPolicy::from_function_policy(Some(&zero), &RetryPolicy::default())
            .unwrap_err();
        assert!(error.to_string().contains("deadline"), "{error}");
        for target in [
            "ftp://host/x",
            "http:///nohost",
            "a..b",
            "with space",
            "a.*",
            "",
        ] {
            let spec = FunctionPolicy::default().with_dead_letter(target);
            let error = AsyncCallPolicy::from_function_policy(Some(&spec), &RetryPolicy::default())
                .unwrap_err();
            assert!(
                error.to_string().contains("deadLetter"),
                "{target}: {error}"
            );
        }
    }
}
